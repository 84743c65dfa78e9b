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

Drivers: SQLite (see below) and asyncpg (batches on held connections, see
_AsyncpgDriver), with the engine's timeouts
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
from sqlalchemy import Select, any_, bindparam, inspect, select
from sqlalchemy.dialects.postgresql import ARRAY
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
    @staticmethod
    def statement(columns: Select[Any]) -> Select[Any]:
        """The lookup's statement: `columns` (the session's id first, the user's id
        among them) filtered the way this driver sends it."""
        ...

    @classmethod
    async def open(cls, url: URL, timeouts: DatabaseTimeouts, sql: str) -> "_Driver": ...
    async def fetch(self, session_id: Any, user_id: Any) -> Sequence[Any] | None:
        """The row of session `session_id` if it is `user_id`'s (ids as bound)."""
        ...

    async def close(self) -> None: ...


class _SqliteDriver:
    def __init__(self, connection: aiosqlite.Connection, direct: sqlite3.Connection, sql: str):
        self._connection = connection  # waits for locks, in its own thread
        self._direct = direct  # never waits, in the event loop
        self._sql = sql

    @staticmethod
    def check(url: URL) -> None:
        if not url.database or url.database == ":memory:" or "mode=memory" in str(url):
            raise ValueError("the session lookup needs a SQLite file, not an in-memory database")

    @staticmethod
    def statement(columns: Select[Any]) -> Select[Any]:
        return columns.where(
            AuthSession.id == bindparam("sid"), AuthSession.user_id == bindparam("uid")
        )

    @classmethod
    async def open(cls, url: URL, timeouts: DatabaseTimeouts, sql: str) -> "_SqliteDriver":
        busy = timeouts.sqlite_busy_seconds
        connection = await aiosqlite.connect(str(url.database), timeout=busy)
        try:
            await connection.execute(f"PRAGMA busy_timeout={round(busy * 1000)}")
            direct = await asyncio.to_thread(_open_direct, str(url.database))
        except BaseException:
            await connection.close()
            raise
        return cls(connection, direct, sql)

    async def fetch(self, session_id: Any, user_id: Any) -> Sequence[Any] | None:
        params = (session_id, user_id)
        try:
            return self._direct.execute(self._sql, params).fetchone()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise
        rows = await self._connection.execute_fetchall(self._sql, params)
        return next(iter(rows), None)

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


# A lookup waiting for its batch: (session id, user id, its answer), ids as bound.
_Waiting = tuple[Any, Any, asyncio.Future[Sequence[Any] | None]]

# The errors of a connection the server dropped (restart, idle timeout, terminated). A
# connection whose termination notice arrives while the query starts fails with asyncpg's
# InternalClientError ("cannot switch to state 12") rather than a connection error: seen
# in about one run in three of the drop test.
_DROPPED = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)


class _AsyncpgDriver:
    """Lookups that arrive together are sent together: one statement for all the sessions
    asked for while the previous statement was out (`id = ANY($1)`), on one of up to
    CONNECTIONS connections held open for the lookup alone. A lookup alone is still one
    statement, sent at once.

    Why, measured on the bench machine (2026-11-28, Intel Xeon, 2 cores; wrk with 16
    connections on `/users/me`, one uvicorn worker, a mutation run busy beside it): most
    requests wait on their lookup at the same moment. With one statement per lookup,
    more than half of the lookups found two held connections busy, and 14% found eight
    busy; each statement cost the server ~80 µs of CPU under load (asyncpg's execute,
    the round trip's system calls and wake-ups), plus PostgreSQL's own CPU on the same
    cores, and through asyncpg's pool another ~45 µs for the acquire and release (a
    queue, timeout scopes, a shielded task). Batched, the server's CPU per `/users/me`
    went from 409 to 295 µs (SQLite's: 293) and its requests/s from 2 079 to 2 900.

    Still one database read per request, made after the request arrived: a lookup joins
    only a statement not yet sent, so a session revoked before the request came is seen
    as revoked. Each statement is bounded by the engine's statement timeout, so a lookup
    waits at most for the statement out before its own, then its own. A connection that
    fails in any way is closed (its state is unknown) and the next batch opens a new one.
    A batch whose connection the server dropped is sent once more on a new connection;
    any other failure is the error of every lookup in the batch. A lookup whose request
    is cancelled leaves its batch alone.
    """

    CONNECTIONS = 2

    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], sql: str):
        self._connect = connect
        self._sql = sql
        self._queue: list[_Waiting] = []
        self._idle: list[asyncpg.Connection] = []  # held connections not in use, newest last
        self._held = 0  # held connections open or opening, idle or in use
        self._senders: set[asyncio.Task[None]] = set()
        self._sender_starting = False  # a sender will take the queue as it is then
        self._closed = False

    @staticmethod
    def check(url: URL) -> None:
        pass

    @staticmethod
    def statement(columns: Select[Any]) -> Select[Any]:
        return columns.where(
            AuthSession.id == any_(bindparam("sids", type_=ARRAY(AuthSession.id.type)))
        )

    @classmethod
    async def open(cls, url: URL, timeouts: DatabaseTimeouts, sql: str) -> "_AsyncpgDriver":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        driver = cls(functools.partial(asyncpg.connect, dsn, **timeouts.asyncpg_args()), sql)
        driver._idle.append(await driver._open_held())
        return driver

    async def fetch(self, session_id: Any, user_id: Any) -> Sequence[Any] | None:
        if self._closed:
            raise asyncpg.InterfaceError("the session lookup is closed")
        waiter: asyncio.Future[Sequence[Any] | None] = asyncio.get_running_loop().create_future()
        self._queue.append((session_id, user_id, waiter))
        self._start_sender()
        return await waiter

    def _start_sender(self) -> None:
        """A sender for the queue, unless one is about to take it or every connection is
        busy (then a busy sender takes it when its statement returns)."""
        if self._sender_starting or not (self._idle or self._held < self.CONNECTIONS):
            return
        self._sender_starting = True
        sender = asyncio.ensure_future(self._send())
        self._senders.add(sender)
        sender.add_done_callback(self._senders.discard)

    async def _send(self) -> None:
        """Send the queue's lookups in batches on one held connection until none wait."""
        connection: asyncpg.Connection | None = None
        batch: list[_Waiting] = []
        try:
            connection = self._take_idle() or await self._open_held()
            while self._queue:
                batch, self._queue = self._queue, []
                self._sender_starting = False
                session_ids = list(dict.fromkeys(session_id for session_id, _, _ in batch))
                try:
                    rows = await connection.fetch(self._sql, session_ids)
                except TimeoutError:
                    raise  # no answer in time: asking again would only double the wait
                except _DROPPED:
                    self._forget(connection)
                    connection = None  # try once more, on a new connection
                    connection = await self._open_held()
                    rows = await connection.fetch(self._sql, session_ids)
                _answer(batch, rows)
                batch = []
        except BaseException as exc:
            if connection is not None:
                self._forget(connection)
                connection = None
            _fail(batch or self._take_queue(), exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._sender_starting = False
            if connection is not None:
                if self._closed:
                    self._forget(connection)
                else:
                    self._idle.append(connection)
            if self._queue and not self._closed:
                self._start_sender()  # lookups queued while this sender was failing

    def _take_queue(self) -> list[_Waiting]:
        queue, self._queue = self._queue, []
        return queue

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
        """Statements out are answered first (each within the statement timeout); lookups
        still queued then fail."""
        self._closed = True
        if self._senders:
            await asyncio.wait(self._senders)
        _fail(self._take_queue(), asyncpg.InterfaceError("the session lookup is closed"))
        idle, self._idle = self._idle, []
        for connection in idle:
            self._held -= 1
            # Best effort: on any failure (a server gone silent is a timeout after the
            # statement timeout) asyncpg's close() drops the socket itself.
            with contextlib.suppress(Exception):
                await connection.close()


# Where a lookup's row holds the session's id (first) and the user's id.
_SESSION_ID_INDEX = 0
_USER_ID_INDEX = 1 + len(SESSION_COLUMNS) + USER_KEYS.index("id")


def _answer(
    batch: list[_Waiting],
    rows: list[Sequence[Any]],
) -> None:
    found = {row[_SESSION_ID_INDEX]: row for row in rows}
    for session_id, user_id, waiter in batch:
        if waiter.done():
            continue  # its request was cancelled
        row = found.get(session_id)
        waiter.set_result(row if row is not None and row[_USER_ID_INDEX] == user_id else None)


def _fail(batch: list[_Waiting], exc: BaseException) -> None:
    for _, _, waiter in batch:
        if waiter.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            waiter.cancel()
        else:
            waiter.set_exception(exc)


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
        columns = select(AuthSession.id, *SESSION_COLUMNS, *USER_COLUMNS).join(
            User, User.id == AuthSession.user_id
        )
        # The one statement a lookup sends, in the database's dialect.
        self.sql: str = self._opener.statement(columns).compile(dialect=dialect).string
        id_type = AuthSession.id.type.dialect_impl(dialect)
        self._bind_id: Callable[[uuid.UUID], Any] = id_type.bind_processor(dialect) or _same
        self._converters = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) or _same
            for column in (*_columns(SESSION_COLUMNS), *USER_COLUMNS)
        ]  # for the row after the session's id
        self._driver: _Driver | None = None
        self._opening: asyncio.Future[_Driver] | None = None

    async def fetch(
        self, session_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[SessionState, User] | None:
        """The session's state and its user (detached: attach it to a session to use it)."""
        driver = self._driver or await self._open()
        row = await driver.fetch(self._bind_id(session_id), self._bind_id(user_id))
        if row is None:
            return None
        values = [convert(value) for convert, value in zip(self._converters, row[1:], strict=True)]
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
            self._opening = asyncio.ensure_future(
                self._opener.open(self._url, self._timeouts, self.sql)
            )
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
