"""The per-request session check in one driver round trip, outside the ORM.

Every authenticated request loads its session and user from the database, so a revoked
token fails at once on every instance. Through SQLAlchemy's async ORM that lookup costs
~0.5 ms of CPU on the benchmark machine (pool checkout, greenlet switches, four aiosqlite
thread hops per statement, ORM loading, commit); the driver's own single call costs
~0.05 ms. This is the hottest path of the service, so it talks to the driver directly —
with SQL compiled by SQLAlchemy from the models, and values converted by the models'
own column types. The user it returns is built as the ORM's loader builds one (every
column loaded, clean) and is detached: a route that only reads it needs no ORM session,
and a route that changes it attaches it with merge(load=False) (app.auth.deps.UserInSession),
which neither reads nor writes.

Drivers: SQLite (see below) and asyncpg (a small pool), with the engine's timeouts
(app.core.db.DatabaseTimeouts): an unreachable or locked database fails the request (503)
within them instead of hanging it.

SQLite reads in the event loop, through the standard library's sqlite3 on a read-only
connection that never waits for a lock (busy timeout 0). In WAL mode (app.core.db sets
it) a reader takes no lock a writer holds, so the read is two indexed page lookups.
Measured on the bench machine (2026-11-27): the whole fetch (read, conversion, the User)
costs ~34 µs of CPU in the loop against ~96 µs through aiosqlite's thread (the hop and
its wake-ups), which took `/users/me` in-process from ~380 to ~285 µs; with a writer
committing 27 000 rows a second into the same file meanwhile, 32 000 in-loop reads took
p50 21 µs, p99 162 µs, p99.9 242 µs, at most 874 µs, and none found the database busy.
Whenever SQLite answers busy or locked instead (a connection holding the database in
exclusive locking mode, WAL recovery), the read is made again through aiosqlite's
thread, which waits up to the busy timeout there, never in the event loop. PostgreSQL
needs none of this: asyncpg's I/O is asynchronous.

Relationships added to User later must not be eagerly loaded (leave them lazy="raise" or
load them explicitly): a user attached with merge(load=False) loads nothing more.
"""

import asyncio
import contextlib
import functools
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import aiosqlite
import asyncpg
from sqlalchemy import bindparam, inspect, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import make_transient_to_detached

from app.auth.models import AuthSession
from app.core.db import DatabaseTimeouts, engine_timeouts
from app.users.models import User

SESSION_COLUMNS = (AuthSession.created_at, AuthSession.last_seen_at, AuthSession.revoked_at)
# (attribute name, column) for every column the User mapper loads.
USER_ATTRIBUTES = tuple(
    (attribute.key, attribute.columns[0]) for attribute in inspect(User).column_attrs
)
USER_COLUMNS = tuple(column for _, column in USER_ATTRIBUTES)
USER_KEYS = tuple(key for key, _ in USER_ATTRIBUTES)
_USER_MANAGER = inspect(User).class_manager


@dataclass(frozen=True, slots=True)
class SessionState:
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None


class _Driver(Protocol):
    @staticmethod
    def check(url: URL) -> None: ...
    @classmethod
    async def open(cls, url: URL, timeouts: DatabaseTimeouts) -> "_Driver": ...
    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]: ...
    async def close(self) -> None: ...


class _SqliteDriver:
    def __init__(self, connection: aiosqlite.Connection, direct: sqlite3.Connection):
        self._connection = connection  # waits for locks, in its own thread
        self._direct = direct  # never waits, in the event loop

    @staticmethod
    def check(url: URL) -> None:
        if not url.database or url.database == ":memory:" or "mode=memory" in str(url):
            raise ValueError("the session lookup needs a SQLite file, not an in-memory database")

    @classmethod
    async def open(cls, url: URL, timeouts: DatabaseTimeouts) -> "_SqliteDriver":
        busy = timeouts.sqlite_busy_seconds
        connection = await aiosqlite.connect(str(url.database), timeout=busy)
        try:
            await connection.execute(f"PRAGMA busy_timeout={round(busy * 1000)}")
            direct = await asyncio.to_thread(_open_direct, str(url.database))
        except BaseException:
            await connection.close()
            raise
        return cls(connection, direct)

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        try:
            return self._direct.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
        return list(await self._connection.execute_fetchall(sql, params))

    async def close(self) -> None:
        self._direct.close()
        await self._connection.close()


def _open_direct(path: str) -> sqlite3.Connection:
    """A read-only connection that answers busy at once rather than wait for a lock,
    usable from the event loop's thread (it is opened in a worker thread)."""
    direct = sqlite3.connect(path, timeout=0, check_same_thread=False)
    try:
        direct.execute("PRAGMA query_only=ON")
    except BaseException:
        direct.close()
        raise
    return direct


class _AsyncpgDriver:
    """Lookups run on connections of their own, held open between requests, rather than
    through asyncpg's pool: its acquire and release cost more CPU than the query itself.
    Measured on the bench machine (2026-11-28, Intel Xeon, uvloop, 6 interleaved rounds
    of 2 000 lookups, medians of the process's CPU per lookup): pool acquire + fetch +
    release 82 µs (78 µs without the acquire's timeout), a held connection's fetch 35 µs
    (its release takes a shielded task and a timeout scope; the acquire, a queue and
    another timeout scope). Up to OWN_CONNECTIONS are held, LIFO; a lookup that finds
    them all busy awaiting their answers takes one from asyncpg's pool, which waits for
    a free connection within the connect timeout. A held connection that fails in any
    way (dropped, timed out, its request cancelled) is closed and forgotten: its state is
    unknown, and the next lookup opens a new one.
    """

    OWN_CONNECTIONS = 2

    def __init__(
        self,
        pool: asyncpg.Pool,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        acquire_timeout: float,
    ):
        self._pool = pool
        self._connect = connect
        self._acquire_timeout = acquire_timeout
        self._idle: list[asyncpg.Connection] = []  # held connections not in use, newest last
        self._held = 0  # held connections open or opening, idle or in use
        self._closed = False

    @staticmethod
    def check(url: URL) -> None:
        pass

    @classmethod
    async def open(cls, url: URL, timeouts: DatabaseTimeouts) -> "_AsyncpgDriver":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        args = timeouts.asyncpg_args()
        pool = await asyncpg.create_pool(dsn, min_size=0, max_size=4, reset=_keep_session, **args)
        driver = cls(pool, functools.partial(asyncpg.connect, dsn, **args), timeouts.connect)
        try:
            driver._idle.append(await driver._open_held())
        except BaseException:
            await pool.close()
            raise
        return driver

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        try:
            return await self._fetch(sql, params)
        except TimeoutError:
            raise  # no answer in time: asking again would only double the wait
        except (
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
            OSError,
        ):
            # A connection the server dropped (restart, idle timeout, terminated): try
            # once more on another one. A connection whose termination notice arrives
            # while the query starts fails with asyncpg's InternalClientError ("cannot
            # switch to state 12") rather than a connection error: seen in about one run
            # in three of the drop test.
            return await self._fetch(sql, params)

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        connection = self._take_idle()
        if connection is None:
            if self._held >= self.OWN_CONNECTIONS:
                async with self._pool.acquire(timeout=self._acquire_timeout) as pooled:
                    return await pooled.fetch(sql, *params)
            connection = await self._open_held()
        try:
            rows = await connection.fetch(sql, *params)
        except BaseException:
            self._forget(connection)
            raise
        if self._closed:
            self._forget(connection)
        else:
            self._idle.append(connection)
        return rows

    async def _open_held(self) -> asyncpg.Connection:
        self._held += 1
        try:
            return await self._connect()
        except BaseException:
            self._held -= 1
            raise

    def _take_idle(self) -> asyncpg.Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
            self._forget(connection)  # the server closed it while it was idle
        return None

    def _forget(self, connection: asyncpg.Connection) -> None:
        connection.terminate()
        self._held -= 1

    async def close(self) -> None:
        self._closed = True  # a lookup still in flight closes its connection itself
        idle, self._idle = self._idle, []
        for connection in idle:
            self._held -= 1
            # On failure, asyncpg's close() drops the socket itself.
            with contextlib.suppress(OSError, TimeoutError, asyncpg.PostgresError):
                await connection.close(timeout=self._acquire_timeout)
        await self._pool.close()


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset on release, in place of asyncpg's default. That default sends a
    second statement after every lookup (advisory unlock, CLOSE ALL, UNLISTEN, RESET
    ALL): a second round trip per authenticated request, and more PostgreSQL CPU on the
    same cores. These connections only ever run the lookup's one SELECT, outside any
    transaction: they take no lock, open no cursor, listen to nothing and set nothing, so
    there is nothing to reset. asyncpg still rolls back an open transaction before
    calling this. Measured in-process (2026-11-27, GET /users/me through httpx's ASGI
    transport, 6 interleaved rounds of 1 500, a mutation run busy beside it): the app's
    CPU per request 1 213 -> 1 066 µs, PostgreSQL's 137 -> 80 µs, wall time 1 400 ->
    1 188 µs."""


_DRIVERS = {"aiosqlite": _SqliteDriver, "asyncpg": _AsyncpgDriver}


class SessionLookup:
    def __init__(self, engine: AsyncEngine, *, timeouts: DatabaseTimeouts | None = None):
        """`timeouts`: by default those the engine was created with."""
        dialect = engine.dialect
        if dialect.driver not in _DRIVERS:
            raise ValueError(f"no session lookup for the {dialect.driver} driver")
        self._url = engine.url
        self._timeouts = timeouts or engine_timeouts(engine)
        self._opener: type[_Driver] = _DRIVERS[dialect.driver]
        self._opener.check(engine.url)  # refuse at start-up, not on the first request
        statement = (
            select(*SESSION_COLUMNS, *USER_COLUMNS)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == bindparam("sid"), AuthSession.user_id == bindparam("uid"))
        )
        # The one statement a lookup sends, in the database's dialect.
        self.sql: str = statement.compile(dialect=dialect).string
        id_type = AuthSession.id.type.dialect_impl(dialect)
        self._bind_id: Callable[[uuid.UUID], Any] = id_type.bind_processor(dialect) or _same
        self._converters = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) or _same
            for column in (*_columns(SESSION_COLUMNS), *USER_COLUMNS)
        ]
        self._driver: _Driver | None = None
        self._opening: asyncio.Future[_Driver] | None = None

    async def fetch(
        self, session_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[SessionState, User] | None:
        """The session's state and its user (detached: attach it to a session to use it)."""
        driver = self._driver or await self._open()
        rows = await driver.fetch(self.sql, (self._bind_id(session_id), self._bind_id(user_id)))
        if not rows:
            return None
        values = [convert(value) for convert, value in zip(self._converters, rows[0], strict=True)]
        state = SessionState(*values[: len(SESSION_COLUMNS)])
        # Built the way the ORM's loader builds a row's object (a new instance, then its
        # attribute dict), not through User(**values), whose per-attribute change events
        # cost 27 µs here against 8. make_transient_to_detached then marks every value
        # as loaded and gives the instance its identity: clean, as if loaded.
        user = _USER_MANAGER.new_instance()
        user.__dict__.update(zip(USER_KEYS, values[len(SESSION_COLUMNS) :], strict=True))
        make_transient_to_detached(user)
        return state, user

    async def _open(self) -> _Driver:
        """Open the driver once. Requests arriving while it opens share that one attempt
        (bounded by the connect timeout) rather than queueing for one attempt each; a
        failed attempt is forgotten, so the next request tries again."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._opener.open(self._url, self._timeouts))
        opening = self._opening
        try:
            driver = await asyncio.shield(opening)
        except BaseException:
            if opening.done() and self._opening is opening:
                self._opening = None
            raise
        self._driver = driver
        return driver

    async def close(self) -> None:
        opening, self._opening, self._driver = self._opening, None, None
        if opening is None:
            return
        if not opening.done():
            opening.cancel()
        try:
            driver = await opening
        except (asyncio.CancelledError, Exception):
            return  # never opened: nothing to close
        await driver.close()


def _columns(attributes: Sequence[Any]) -> list[Any]:
    """The mapped columns behind ORM attributes (for their types)."""
    return [attribute.expression for attribute in attributes]


def _same(value: Any) -> Any:
    return value
