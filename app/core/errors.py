"""Domain errors and the one place that maps every error to JSON with a stable `code`.

Every error body is `{"code": "STABLE_CODE", "detail": ...}`. `detail` keeps what
fastapi-users clients expect (a code string, or `{code, reason}`), validation errors keep
FastAPI's list with `loc` naming the field.

A database or Redis that cannot answer (refused, timed out, locked, pool exhausted) is a
503 SERVICE_UNAVAILABLE with Retry-After, decided in one place: `unavailable_service`.
"""

import logging
import sqlite3
import traceback
from collections.abc import Iterator
from typing import Any

import asyncpg
import coredis.exceptions
import limits.errors
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
DATABASE = "database"
REDIS = "redis"

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
    503: "SERVICE_UNAVAILABLE",
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


class ServiceUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "SERVICE_UNAVAILABLE"
    message = "Service temporarily unavailable, try again later"

    def __init__(self, message: str | None = None):
        super().__init__(message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


# PostgreSQL SQLSTATEs meaning "the server can't serve this now", not "the query is wrong":
# class 08 (connection exception) by prefix, and these.
_PG_UNAVAILABLE_STATES = frozenset({
    "57014",  # query_canceled: statement_timeout (a lock held too long, an overloaded server)
    "55P03",  # lock_not_available: lock_timeout
    "57P01",  # admin_shutdown
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now: starting up, shutting down, in recovery
    "53300",  # too_many_connections
})
# SQLite primary result codes: SQLITE_BUSY (locked past the busy timeout), SQLITE_LOCKED,
# SQLITE_CANTOPEN (the file or its directory is missing or unreadable).
_SQLITE_UNAVAILABLE_CODES = frozenset({5, 6, 14})
# Where a bare OSError (refused, reset, timed out, DNS) came from: the innermost frame of
# one of these packages names the service.
_ORIGINS = (
    (DATABASE, ("asyncpg", "aiosqlite", "sqlite3", "sqlalchemy")),
    (REDIS, ("coredis", "limits", "redis")),
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, then its causes and contexts (e.g. the driver's error under
    SQLAlchemy's, the timeout under a failed rollback)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _origin(exc: BaseException) -> str | None:
    service = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        module = frame.f_globals.get("__name__", "")
        for name, packages in _ORIGINS:
            if module.split(".", 1)[0] in packages:
                service = name  # keep going: the innermost one decides
    return service


def _unavailable(exc: BaseException) -> str | None:
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection free in pool_timeout
        return DATABASE
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return DATABASE
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        return DATABASE if state.startswith("08") or state in _PG_UNAVAILABLE_STATES else None
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return DATABASE if code is not None and code & 0xFF in _SQLITE_UNAVAILABLE_CODES else None
    if isinstance(exc, coredis.exceptions.ConnectionError | coredis.exceptions.TimeoutError):
        return REDIS
    if isinstance(exc, limits.errors.StorageError):
        return _unavailable(exc.storage_error)
    if isinstance(exc, OSError):  # ConnectionRefusedError, TimeoutError, socket.gaierror…
        return _origin(exc)
    return None


def _unavailable_link(exc: BaseException) -> tuple[str, BaseException] | None:
    for link in _chain(exc):
        service = _unavailable(link)
        if service is not None:
            return service, link
    return None


def unavailable_service(exc: BaseException) -> str | None:
    """The service (DATABASE or REDIS) `exc` says can't answer now; None for anything
    else — a bad query ("no such table", a constraint) stays a 500."""
    found = _unavailable_link(exc)
    return found[0] if found else None


def _hide_parameters(exc: BaseException) -> None:
    """SQL parameters (session ids, user ids, emails) never reach the logs, whichever
    engine raised: the engine sets hide_parameters, and so does this."""
    for link in _chain(exc):
        if isinstance(link, sa_exc.StatementError):
            link.hide_parameters = True


def _summary(exc: BaseException) -> str:
    """The driver's one-line reason, without SQL or parameters."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


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
    return _domain_error_response(exc)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {k: v for k, v in err.items() if k in ("type", "loc", "msg")} for err in exc.errors()
    ]
    return JSONResponse(
        error_body("VALIDATION_ERROR", jsonable_encoder(errors)),
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def _service_unavailable(
    request: Request, exc: BaseException, service: str, reason: BaseException
) -> JSONResponse:
    _hide_parameters(exc)
    logger.warning(
        "%s unavailable on %s %s: %s", service, request.method, request.url.path, _summary(reason)
    )
    return _domain_error_response(ServiceUnavailable())


def _domain_error_response(exc: DomainError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message), status_code=exc.status_code, headers=exc.headers
    )


async def _maybe_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Registered for the exception classes a down service raises; anything else of those
    classes goes on, unchanged, to the 500 handler."""
    found = _unavailable_link(exc)
    if found is None:
        raise exc
    return _service_unavailable(request, exc, *found)


# The classes `_maybe_unavailable` looks at (Starlette finds a handler by the MRO).
UNAVAILABLE_CANDIDATES: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,  # OperationalError, InterfaceError, and asyncpg's errors wrapped
    sa_exc.TimeoutError,
    asyncpg.PostgresError,  # from the raw session lookup
    sqlite3.Error,  # from the raw session lookup
    OSError,  # TimeoutError, ConnectionRefusedError, … raised by a driver
    coredis.exceptions.RedisError,
    limits.errors.StorageError,
)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    found = _unavailable_link(exc)  # raised outside the routes (e.g. in a middleware)
    if found is not None:
        return _service_unavailable(request, exc, *found)
    _hide_parameters(exc)
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("INTERNAL_ERROR", "Internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, _domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    for exc_class in UNAVAILABLE_CANDIDATES:
        app.add_exception_handler(exc_class, _maybe_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
