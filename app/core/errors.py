"""The one error model, the catalogue of stable codes, and the handlers that map every
error to it.

Every error body is `{"code": "STABLE_CODE", "detail": ..., "message": "..."}`:
- `code` is the contract: clients branch on it; it never changes once published.
- `detail` is for developers: what fastapi-users clients expect (a code string, or
  `{code, reason}`), FastAPI's list of fields at fault for 422, or a short English reason.
- `message` is a sentence a browser app can show as it is: Russian, or English when the
  request's Accept-Language prefers it.

The catalogue (`CATALOGUE`) is built from the code: every DomainError subclass registers
its code when it is defined, other codes (HTTP statuses, fastapi-users' codes) with
`define_error` beside the code that raises them. The API description and the README's
table are generated from it (`python -m app errors`).
"""

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

from app.core import unavailable
from app.core.i18n import Language, preferred_language

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: str
    status: int
    ru: str
    en: str
    detail: Any = None  # what `detail` holds, for the docs' examples (default: `en`)

    def message(self, language: Language) -> str:
        return self.ru if language == "ru" else self.en


CATALOGUE: dict[str, ErrorSpec] = {}


def define_error(code: str, status_code: int, ru: str, en: str, *, detail: Any = None) -> ErrorSpec:
    """Register a stable code with its status and the sentence people read; `detail` is
    an example of the body's `detail` when it is not the English sentence."""
    code = str(getattr(code, "value", code))  # fastapi-users' codes are enum members
    spec = ErrorSpec(code, status_code, ru, en, detail)
    known = CATALOGUE.setdefault(code, spec)
    if known != spec:
        raise RuntimeError(f"error code {code} is defined twice, differently")
    return spec


# Codes that name only an HTTP status: what a request gets when nothing more specific applies.
_BY_STATUS = {
    spec.status: spec
    for spec in (
        define_error(
            "BAD_REQUEST",
            400,
            "Некорректный запрос.",
            "Bad request.",
            detail="There was an error parsing the body",
        ),
        define_error(
            "UNAUTHORIZED",
            401,
            "Войдите в аккаунт: сеанс не найден или закончился.",
            "Please sign in: there is no session, or it has ended.",
            detail="Unauthorized",
        ),
        define_error("FORBIDDEN", 403, "Доступ запрещён.", "Access denied."),
        define_error("NOT_FOUND", 404, "Не найдено.", "Not found."),
        define_error(
            "METHOD_NOT_ALLOWED",
            405,
            "Этот метод здесь не поддерживается.",
            "This method is not allowed here.",
        ),
        define_error(
            "CONFLICT", 409, "Конфликт с текущим состоянием.", "Conflicts with the current state."
        ),
        define_error(
            "PAYLOAD_TOO_LARGE",
            413,
            "Слишком большой запрос.",
            "The request body is too large.",
            detail="Request body is larger than 16384 bytes",
        ),
        define_error(
            "UNSUPPORTED_MEDIA_TYPE",
            415,
            "Неподдерживаемый формат данных.",
            "Unsupported media type.",
        ),
        define_error(
            "VALIDATION_ERROR",
            422,
            "Проверьте правильность заполнения полей.",
            "Please check the fields.",
            detail=[{"type": "missing", "loc": ["body", "email"], "msg": "Field required"}],
        ),
        define_error(
            "RATE_LIMITED",
            429,
            "Слишком много попыток. Повторите позже.",
            "Too many attempts. Please try again later.",
        ),
        define_error(
            "HEADERS_TOO_LARGE",
            431,
            "Слишком большие заголовки запроса.",
            "The request headers are too large.",
        ),
        define_error(
            "INTERNAL_ERROR",
            500,
            "Внутренняя ошибка сервера. Мы уже разбираемся.",
            "Internal server error. We are looking into it.",
        ),
        define_error(
            "SERVICE_UNAVAILABLE",
            503,
            "Сервис временно недоступен. Повторите через несколько секунд.",
            "The service is temporarily unavailable. Please try again in a few seconds.",
            detail="database unreachable",
        ),
    )
}


def spec_for(code: str, status_code: int) -> ErrorSpec:
    return CATALOGUE.get(code) or _BY_STATUS.get(status_code) or _BY_STATUS[400]


class ErrorBody(BaseModel):
    """Every error this API answers with."""

    model_config = ConfigDict(title="Error")

    code: str = Field(
        description="Стабильный код ошибки · Stable error code (see the error catalogue)",
        examples=["LOGIN_BAD_CREDENTIALS"],
    )
    detail: Any = Field(
        description=(
            "Для разработчиков · For developers: a code, `{code, reason}`, the fields at "
            "fault (422), or a short English reason"
        )
    )
    message: str = Field(
        description=(
            "Текст для человека · A sentence to show people: Russian, or English when "
            "Accept-Language prefers it"
        ),
        examples=["Неверный email или пароль."],
    )


def error_body(
    code: str, detail: Any, language: Language = "ru", status_code: int = 400
) -> dict[str, Any]:
    return {
        "code": code,
        "detail": detail,
        "message": spec_for(code, status_code).message(language),
    }


def error_response(
    request: Request,
    code: str,
    detail: Any,
    status_code: int,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    language = preferred_language(request.headers.get("accept-language"))
    return JSONResponse(
        error_body(code, detail, language, status_code), status_code=status_code, headers=headers
    )


async def send_error(
    scope: Scope,
    send: Send,
    code: str,
    detail: Any,
    status_code: int,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """The same error body, from a pure ASGI middleware (no Request, no exception handlers)."""
    accept_language = next(
        (value.decode("latin-1") for name, value in scope["headers"] if name == b"accept-language"),
        None,
    )
    body = json.dumps(
        error_body(code, detail, preferred_language(accept_language), status_code),
        ensure_ascii=False,
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class DomainError(Exception):
    """An expected failure of a service; carries its HTTP status and stable code.

    Subclasses name `code`, `status_code`, `message` (English, for `detail` and logs) and
    `message_ru`; defining one registers its code in the catalogue.
    """

    status_code: ClassVar[int] = status.HTTP_400_BAD_REQUEST
    code: ClassVar[str] = "BAD_REQUEST"
    message: str = "Bad request"
    message_ru: ClassVar[str] = "Некорректный запрос."

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if cls.code not in CATALOGUE or CATALOGUE[cls.code].status != cls.status_code:
            define_error(cls.code, cls.status_code, cls.message_ru, f"{cls.message}.")

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        detail: Any = None,
    ):
        self.message = message or self.message
        self.headers = headers
        # The body's `detail` when the English sentence is not enough (e.g. the statuses
        # an order may move to); JSON-serialisable.
        self.detail = detail
        super().__init__(self.message)


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "NOT_FOUND"
    message = "Not found"
    message_ru = "Не найдено."


class RateLimited(DomainError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "RATE_LIMITED"
    message = "Too many attempts. Please try again later"
    message_ru = "Слишком много попыток. Повторите позже."

    def __init__(self, retry_after: int):
        super().__init__(headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "SERVICE_UNAVAILABLE"
    message = "The service is temporarily unavailable. Please try again in a few seconds"
    message_ru = "Сервис временно недоступен. Повторите через несколько секунд."

    def __init__(self, message: str | None = None):
        super().__init__(message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _code_for(status_code: int, detail: Any) -> str:
    if isinstance(detail, str) and detail.isupper() and " " not in detail:
        return detail
    if isinstance(detail, dict) and isinstance(detail.get("code"), str):
        return detail["code"]
    return spec_for("", status_code).code


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail
    return error_response(
        request,
        _code_for(exc.status_code, detail),
        detail,
        exc.status_code,
        getattr(exc, "headers", None),
    )


async def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
    detail = exc.message if exc.detail is None else exc.detail
    return error_response(request, exc.code, detail, exc.status_code, exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in exc.errors()]
    return error_response(
        request, "VALIDATION_ERROR", jsonable_encoder(errors), status.HTTP_422_UNPROCESSABLE_CONTENT
    )


def _service_unavailable(
    request: Request, exc: BaseException, service: str, reason: BaseException
) -> JSONResponse:
    unavailable.hide_parameters(exc)
    logger.warning(
        "%s unavailable on %s %s: %s",
        service,
        request.method,
        request.url.path,
        unavailable.summary(reason),
    )
    refusal = ServiceUnavailable()
    return error_response(request, refusal.code, refusal.message, 503, refusal.headers)


async def _maybe_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Registered for the exception classes a down service raises; anything else of those
    classes goes on, unchanged, to the 500 handler."""
    found = unavailable.unavailable_link(exc)
    if found is None:
        raise exc
    return _service_unavailable(request, exc, *found)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    found = unavailable.unavailable_link(exc)  # raised outside the routes (a middleware)
    if found is not None:
        return _service_unavailable(request, exc, *found)
    unavailable.hide_parameters(exc)
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, "INTERNAL_ERROR", "Internal server error", 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    for exc_class in unavailable.CANDIDATES:
        app.add_exception_handler(exc_class, _maybe_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
