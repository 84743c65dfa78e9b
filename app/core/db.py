"""Engine, the request's session dependency, and the declarative base."""

import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, String, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import QueuePool
from sqlalchemy.types import TypeDecorator

from app.core.config import DatabaseSettings

E = TypeVar("E", bound=StrEnum)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite returns naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class StrEnumType(TypeDecorator[E]):
    """A string enum stored as plain VARCHAR (no database enum type): a new member is
    one line of code, not a schema change."""

    impl = String(32)
    cache_ok = True

    def __init__(self, enum_class: type[E]):
        super().__init__()
        self.enum_class = enum_class

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_class(value)


def _setting_default(name: str) -> float:
    default = DatabaseSettings.model_fields[name].default
    assert isinstance(default, int | float)
    return float(default)


DEFAULT_CONNECT_TIMEOUT = _setting_default("DB_CONNECT_TIMEOUT_SECONDS")
DEFAULT_STATEMENT_TIMEOUT = _setting_default("DB_STATEMENT_TIMEOUT_SECONDS")
# asyncpg's own client-side limit on a statement comes this much after the server's
# statement_timeout, so the server cancels first (a clean error, the connection stays
# usable); the client-side limit is for a server that stopped answering altogether.
CLIENT_TIMEOUT_MARGIN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class DatabaseTimeouts:
    """How long a database may take before the request fails (503) instead of hanging.

    `connect`: opening a connection (TCP, TLS, start-up) and waiting for a pooled one.
    `statement`: one statement, lock waits included (PostgreSQL statement_timeout; the
    SQLite busy timeout). None: no limit (e.g. for migrations).
    """

    connect: float = DEFAULT_CONNECT_TIMEOUT
    statement: float | None = DEFAULT_STATEMENT_TIMEOUT

    @classmethod
    def from_settings(cls, settings: DatabaseSettings) -> "DatabaseTimeouts":
        return cls(settings.DB_CONNECT_TIMEOUT_SECONDS, settings.DB_STATEMENT_TIMEOUT_SECONDS)

    @property
    def statement_ms(self) -> int | None:
        return None if self.statement is None else max(1, round(self.statement * 1000))

    def asyncpg_args(self) -> dict[str, Any]:
        """Keyword arguments for asyncpg.connect / asyncpg.create_pool."""
        args: dict[str, Any] = {"timeout": self.connect}
        if self.statement is not None:
            args["command_timeout"] = self.statement + CLIENT_TIMEOUT_MARGIN_SECONDS
            args["server_settings"] = {"statement_timeout": str(self.statement_ms)}
        return args

    @property
    def sqlite_busy_seconds(self) -> float:
        # SQLite has no statement timeout; a lock wait is what can hang, so bound that.
        # "No limit" would mean waiting forever: keep SQLite's own default of 5 s then.
        return 5.0 if self.statement is None else self.statement


# The timeouts each engine was created with, for the raw session lookup to match.
_ENGINE_TIMEOUTS: "weakref.WeakKeyDictionary[Engine, DatabaseTimeouts]" = (
    weakref.WeakKeyDictionary()
)


def engine_timeouts(engine: AsyncEngine) -> DatabaseTimeouts:
    """The timeouts `engine` was created with (the defaults for a foreign engine)."""
    return _ENGINE_TIMEOUTS.get(engine.sync_engine, DatabaseTimeouts())


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _sqlite_pragmas(busy_timeout_ms: int, dbapi_connection: Any, _record: Any) -> None:
    # SQLite's own lower() folds ASCII only: "Петров" would never match "петров".
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


def create_engine(
    url: str,
    *,
    echo: bool = False,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    statement_timeout: float | None = DEFAULT_STATEMENT_TIMEOUT,
) -> AsyncEngine:
    """The app's engine. Pass the settings' DB_CONNECT_TIMEOUT_SECONDS and
    DB_STATEMENT_TIMEOUT_SECONDS; the defaults are those settings' defaults.

    SQL parameters (session and user ids, emails) never appear in logs or error
    messages: `hide_parameters=True`.
    """
    timeouts = DatabaseTimeouts(connect_timeout, statement_timeout)
    parsed = make_url(url)
    options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
    pool_class = parsed.get_dialect().get_pool_class(parsed)  # type: ignore[attr-defined]
    if issubclass(pool_class, QueuePool):  # not StaticPool (in-memory SQLite)
        options["pool_timeout"] = timeouts.connect  # waiting for a pooled connection
    if parsed.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": timeouts.sqlite_busy_seconds}
    else:
        options["connect_args"] = timeouts.asyncpg_args()
        options["pool_pre_ping"] = True
    engine = create_async_engine(parsed, **options)
    if engine.dialect.name == "sqlite":
        busy_ms = round(timeouts.sqlite_busy_seconds * 1000)
        event.listen(engine.sync_engine, "connect", partial(_sqlite_pragmas, busy_ms))
    _ENGINE_TIMEOUTS[engine.sync_engine] = timeouts
    return engine


def upsert_insert(db: AsyncSession, table: Any) -> Any:
    """`INSERT` for `table` with the dialect's ON CONFLICT clauses (`on_conflict_do_nothing`,
    `on_conflict_do_update`, `excluded`): PostgreSQL's or SQLite's, by the session's bind."""
    if db.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


_AFTER_COMMIT = "after_commit"


def call_after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the request's transaction has committed (never on a rollback):
    e.g. wake the email dispatcher for a row this transaction queued. Only the request's
    session (get_session) runs them; elsewhere they are dropped."""
    callbacks = session.info.setdefault(_AFTER_COMMIT, [])
    if callback not in callbacks:
        callbacks.append(callback)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; committed once when the endpoint returns, rolled back on error.

    Declared with scope="function" (see SessionDep) so the commit happens before the
    response is sent: a failed commit becomes an error response, never a false success.
    """
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
            for callback in session.info.pop(_AFTER_COMMIT, ()):
                callback()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
