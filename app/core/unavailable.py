"""Is this error a dependency that cannot answer now (database, Redis), or a bug?

A database or Redis that is refused, timed out, locked or out of pooled connections is a
503 SERVICE_UNAVAILABLE with Retry-After (see app.core.errors); anything else of the same
exception classes — a bad query ("no such table"), a constraint — stays a 500.
"""

import sqlite3
import traceback
from collections.abc import Iterator

import asyncpg
import coredis.exceptions
import limits.errors
from sqlalchemy import exc as sa_exc

DATABASE = "database"
REDIS = "redis"

# PostgreSQL SQLSTATEs meaning "the server can't serve this now", not "the query is wrong":
# class 08 (connection exception) by prefix, and these.
_PG_UNAVAILABLE_STATES = frozenset(
    {
        "57014",  # query_canceled: statement_timeout (a lock held too long, an overloaded server)
        "55P03",  # lock_not_available: lock_timeout
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: starting up, shutting down, in recovery
        "53300",  # too_many_connections
    }
)
# SQLite primary result codes: SQLITE_BUSY (locked past the busy timeout), SQLITE_LOCKED,
# SQLITE_CANTOPEN (the file or its directory is missing or unreadable).
_SQLITE_UNAVAILABLE_CODES = frozenset({5, 6, 14})
# Where a bare OSError (refused, reset, timed out, DNS) came from: the innermost frame of
# one of these packages names the service.
_ORIGINS = (
    (DATABASE, ("asyncpg", "aiosqlite", "sqlite3", "sqlalchemy")),
    (REDIS, ("coredis", "limits", "redis")),
)


def chain(exc: BaseException) -> Iterator[BaseException]:
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


def unavailable_link(exc: BaseException) -> tuple[str, BaseException] | None:
    for link in chain(exc):
        service = _unavailable(link)
        if service is not None:
            return service, link
    return None


def unavailable_service(exc: BaseException) -> str | None:
    """The service (DATABASE or REDIS) `exc` says can't answer now; None for anything
    else — a bad query ("no such table", a constraint) stays a 500."""
    found = unavailable_link(exc)
    return found[0] if found else None


def hide_parameters(exc: BaseException) -> None:
    """SQL parameters (session ids, user ids, emails) never reach the logs, whichever
    engine raised: the engine sets hide_parameters, and so does this."""
    for link in chain(exc):
        if isinstance(link, sa_exc.StatementError):
            link.hide_parameters = True


def summary(exc: BaseException) -> str:
    """The driver's one-line reason, without SQL or parameters."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


# The classes whose instances may mean "unavailable" (Starlette finds a handler by the MRO).
CANDIDATES: tuple[type[Exception], ...] = (
    sa_exc.DBAPIError,  # OperationalError, InterfaceError, and asyncpg's errors wrapped
    sa_exc.TimeoutError,
    asyncpg.PostgresError,  # from the raw session lookup
    sqlite3.Error,  # from the raw session lookup
    OSError,  # TimeoutError, ConnectionRefusedError, … raised by a driver
    coredis.exceptions.RedisError,
    limits.errors.StorageError,
)
