"""Domain errors and the one place that maps every error to JSON with a stable `code`.

Every error body is `{"code": "STABLE_CODE", "detail": ...}`. `detail` keeps what
fastapi-users clients expect (a code string, or `{code, reason}`), validation errors keep
FastAPI's list with `loc` naming the field.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
}


class DomainError(Exception):
    """An expected failure of a service; carries its HTTP status and stable code."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "BAD_REQUEST"
    message = "Bad request"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or self.message
        self.headers = headers
        super().__init__(self.message)


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "NOT_FOUND"
    message = "Not found"


class RateLimited(DomainError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "RATE_LIMITED"
    message = "Too many requests, try again later"

    def __init__(self, retry_after: int):
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


def error_body(code: str, detail: Any) -> dict[str, Any]:
    return {"code": code, "detail": detail}


def _code_for(status_code: int, detail: Any) -> str:
    if isinstance(detail, str) and detail.isupper() and " " not in detail:
        return detail
    if isinstance(detail, dict) and isinstance(detail.get("code"), str):
        return detail["code"]
    return _STATUS_CODES.get(status_code, f"HTTP_{status_code}")


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail
    return JSONResponse(
        error_body(_code_for(exc.status_code, detail), detail),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message), status_code=exc.status_code, headers=exc.headers
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in exc.errors()
    ]
    return JSONResponse(
        error_body("VALIDATION_ERROR", jsonable_encoder(errors)),
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("INTERNAL_ERROR", "Internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)
