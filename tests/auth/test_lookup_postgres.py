"""The PostgreSQL session lookup (app.auth.lookup, _AsyncpgDriver): lookups that arrive
together are one statement, on one of two connections held for the lookup; each lookup
gets its own answer; a failure is every waiting lookup's error and closes the connection;
a cancelled request leaves its batch alone; closing answers what is out and closes the
connections."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from app.auth.lookup import SessionLookup, _AsyncpgDriver
from app.auth.sessions import create_session
from app.core.db import DatabaseTimeouts
from app.users.models import User
from tests.auth.test_sessions import connect_admin
from tests.helpers import ON_POSTGRESQL, TcpProxy, new_user_data

pytestmark = ON_POSTGRESQL

T = TypeVar("T")


@pytest.fixture
async def engine(database_url):
    engine = create_async_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def lookup(engine):
    lookup = SessionLookup(engine)
    try:
        yield lookup
    finally:
        await lookup.close()


@pytest.fixture
def statements(monkeypatch) -> list[list[Any]]:
    """The session ids of every statement a lookup connection sends."""
    sent: list[list[Any]] = []
    original = asyncpg.Connection.fetch

    async def fetch(self, query, *args, **kwargs):
        sent.append(list(args[0]) if args else [])
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "fetch", fetch)
    return sent


async def new_session(engine: AsyncEngine) -> tuple[uuid.UUID, uuid.UUID]:
    """A user and one session of theirs: (session id, user id)."""
    data = new_user_data()
    async with async_sessionmaker(engine, expire_on_commit=False)() as db:
        user = User(email=data["email"], hashed_password="x", name=data["name"], phone=None)
        db.add(user)
        await db.flush()
        row = await create_session(db, user.id, ip=None, user_agent=None)
        await db.commit()
        return row.id, user.id


async def server_backends(database_url: str, query: str) -> int:
    """Connections to the test database, other than this one, whose latest statement is
    `query` (idle or running)."""
    admin = await connect_admin(database_url)
    try:
        return await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query = $1",
            query,
        )
    finally:
        await admin.close()


async def poll(read: Callable[[], Awaitable[T]], until: Callable[[T], bool]) -> T:
    """`read()` every 50 ms, for up to 5 s, until `until` holds of what it read; the last
    value read. (Each end of a connection learns of its close a moment after the other.)"""
    for _ in range(100):
        value = await read()
        if until(value):
            break
        await asyncio.sleep(0.05)
    return value


async def eventually_no_backends(database_url: str, query: str) -> int:
    """The server notices a closed connection a moment after the client closes it."""
    return await poll(lambda: server_backends(database_url, query), lambda count: not count)


CLOSED = "^the session lookup is closed$"


def failing_after(lookup: SessionLookup, seconds: float) -> str:
    """The lookup's statement, failing after `seconds` (a division by zero the planner
    cannot fold away)."""
    return f"{lookup.sql} AND (SELECT 1 / (count(*) - count(*))::int = 1 FROM pg_sleep({seconds}))"


async def two_failing_and_one_queued(
    lookup: SessionLookup, session_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[list[asyncio.Future[Any]], asyncio.Future[Any]]:
    """Two lookups whose statements are out on both connections and fail after 0.3 s,
    and a third waiting in the queue for a connection."""
    await lookup.fetch(session_id, user_id)  # the driver is open
    lookup._driver._sql = failing_after(lookup, 0.3)
    failing = [asyncio.ensure_future(lookup.fetch(session_id, user_id))]
    await asyncio.sleep(0.05)
    failing.append(asyncio.ensure_future(lookup.fetch(session_id, user_id)))
    await asyncio.sleep(0.1)  # both connections busy: the next lookup waits in the queue
    queued = asyncio.ensure_future(lookup.fetch(session_id, user_id))
    await asyncio.sleep(0.05)
    return failing, queued


def slowed(lookup: SessionLookup, seconds: float) -> str:
    """The lookup's statement, taking `seconds` longer."""
    return f"{lookup.sql} AND (SELECT true FROM pg_sleep({seconds}))"


async def test_a_lookup_alone_is_one_statement_on_one_held_connection(
    lookup, engine, database_url, statements
):
    session_id, user_id = await new_session(engine)
    for _ in range(3):
        state, user = await lookup.fetch(session_id, user_id)
        assert user.id == user_id and state.revoked_at is None
    assert statements == [[session_id]] * 3
    assert len(lookup._driver._idle) == lookup._driver._held == 1
    assert await server_backends(database_url, lookup.sql) == 1


async def test_lookups_at_once_are_one_statement_and_each_gets_its_own_answer(
    lookup, engine, statements
):
    sessions = [await new_session(engine) for _ in range(3)]
    (first, first_user), (second, second_user), (third, third_user) = sessions
    await lookup.fetch(first, first_user)  # the driver is open
    statements.clear()
    unknown = uuid.uuid4()
    found = await asyncio.gather(
        lookup.fetch(first, first_user),
        lookup.fetch(second, second_user),
        lookup.fetch(first, first_user),  # the same session twice
        lookup.fetch(third, second_user),  # a session of another user
        lookup.fetch(unknown, third_user),  # no such session
        lookup.fetch(third, third_user),
    )
    users = [result[1].id if result else None for result in found]
    assert users == [first_user, second_user, first_user, None, None, third_user]
    # One statement, asking for each session once.
    assert [sorted(statement) for statement in statements] == [
        sorted([first, second, unknown, third])
    ]


async def test_at_most_two_statements_are_out_and_the_rest_wait_for_the_next(
    lookup, engine, statements
):
    session_id, user_id = await new_session(engine)
    await lookup.fetch(session_id, user_id)
    driver = lookup._driver
    driver._sql = slowed(lookup, 0.3)
    statements.clear()
    first = asyncio.ensure_future(lookup.fetch(session_id, user_id))
    await asyncio.sleep(0.1)  # out, on the held connection
    second = asyncio.ensure_future(lookup.fetch(session_id, user_id))
    await asyncio.sleep(0.1)  # out, on a second connection
    rest = [asyncio.ensure_future(lookup.fetch(session_id, user_id)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert len(statements) == 2 and driver._held == 2
    results = await asyncio.gather(first, second, *rest)
    assert all(user.id == user_id for _, user in results)
    assert len(statements) == 3  # the three waiting lookups went together
    assert driver._held == len(driver._idle) == _AsyncpgDriver.CONNECTIONS == 2


async def test_a_failed_statement_fails_its_lookups_and_closes_its_connection(lookup, engine):
    session_id, user_id = await new_session(engine)
    await lookup.fetch(session_id, user_id)
    driver = lookup._driver
    [held] = driver._idle
    driver._sql = f"{lookup.sql} AND 1 / 0 = 1"
    results = await asyncio.gather(
        *(lookup.fetch(session_id, user_id) for _ in range(3)), return_exceptions=True
    )
    assert [type(result) for result in results] == [asyncpg.DivisionByZeroError] * 3
    assert held.is_closed()
    assert driver._idle == [] and driver._held == 0
    driver._sql = lookup.sql
    assert (await lookup.fetch(session_id, user_id))[1].id == user_id
    assert driver._held == 1 and driver._idle[0] is not held


async def test_a_statement_past_the_timeout_fails_its_lookups(engine):
    lookup = SessionLookup(engine, timeouts=DatabaseTimeouts(connect=5, statement=0.2))
    try:
        session_id, user_id = await new_session(engine)
        await lookup.fetch(session_id, user_id)
        driver = lookup._driver
        driver._sql = slowed(lookup, 2)
        with pytest.raises((asyncpg.QueryCanceledError, TimeoutError)):
            await lookup.fetch(session_id, user_id)
        assert driver._held == 0
    finally:
        await lookup.close()


async def test_a_cancelled_lookup_leaves_its_batch_and_connection_alone(lookup, engine):
    session_id, user_id = await new_session(engine)
    await lookup.fetch(session_id, user_id)
    driver = lookup._driver
    [held] = driver._idle
    driver._sql = slowed(lookup, 0.2)
    cancelled = asyncio.ensure_future(lookup.fetch(session_id, user_id))
    kept = asyncio.ensure_future(lookup.fetch(session_id, user_id))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    assert (await kept)[1].id == user_id
    assert cancelled.cancelled()
    assert driver._idle == [held] and not held.is_closed()


async def test_a_cancelled_lookup_leaves_a_failing_batch_to_fail_the_others(lookup, engine):
    session_id, user_id = await new_session(engine)
    await lookup.fetch(session_id, user_id)
    lookup._driver._sql = failing_after(lookup, 0.2)
    cancelled = asyncio.ensure_future(lookup.fetch(session_id, user_id))
    failed = asyncio.ensure_future(lookup.fetch(session_id, user_id))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    with pytest.raises(asyncpg.DivisionByZeroError):
        await asyncio.wait_for(failed, 5)
    assert cancelled.cancelled()


async def test_an_idle_connection_the_server_closed_is_replaced(lookup, engine, database_url):
    session_id, user_id = await new_session(engine)
    await lookup.fetch(session_id, user_id)
    driver = lookup._driver
    [held] = driver._idle
    admin = await connect_admin(database_url)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", held.get_server_pid())
    finally:
        await admin.close()

    async def closed() -> bool:
        return held.is_closed()

    assert await poll(closed, bool)  # so the next lookup finds it closed (not failing on it)
    assert (await lookup.fetch(session_id, user_id))[1].id == user_id
    assert driver._held == 1 and driver._idle[0] is not held


async def test_closing_answers_what_is_out_and_closes_the_connections(lookup, engine, database_url):
    session_id, user_id = await new_session(engine)
    await lookup.fetch(session_id, user_id)
    driver = lookup._driver
    driver._sql = slowed(lookup, 0.3)
    out = asyncio.ensure_future(lookup.fetch(session_id, user_id))
    await asyncio.sleep(0.1)
    [sender] = driver._senders  # one statement out
    await lookup.close()
    assert sender.done()
    assert (await out)[1].id == user_id  # answered before the close finished
    assert driver._held == 0 and driver._idle == []
    with pytest.raises(asyncpg.InterfaceError, match=CLOSED):
        await driver.fetch(session_id, user_id)
    assert await eventually_no_backends(database_url, driver._sql) == 0
    assert await eventually_no_backends(database_url, lookup.sql) == 0


async def test_closing_while_both_statements_fail_fails_the_lookups_still_queued(lookup, engine):
    """Statements that fail while the lookup closes start no sender for the queue: what
    is still queued then gets the closed lookup's error, not a wait with no end."""
    session_id, user_id = await new_session(engine)
    failing, queued = await two_failing_and_one_queued(lookup, session_id, user_id)
    driver = lookup._driver
    await asyncio.wait_for(lookup.close(), 5)
    for task in failing:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await task
    with pytest.raises(asyncpg.InterfaceError, match=CLOSED):
        await asyncio.wait_for(queued, 1)
    assert driver._queue == [] and driver._held == 0 and driver._idle == []


async def test_closing_closes_the_idle_connections(lookup, engine, database_url):
    session_id, user_id = await new_session(engine)
    await lookup.fetch(session_id, user_id)
    driver = lookup._driver
    driver._sql = slowed(lookup, 0.2)
    first = asyncio.ensure_future(lookup.fetch(session_id, user_id))
    await asyncio.sleep(0.05)  # its statement is out: the next lookup opens a second one
    await asyncio.gather(first, lookup.fetch(session_id, user_id))
    idle = list(driver._idle)
    assert len(idle) == driver._held == 2
    await lookup.close()
    assert all(connection.is_closed() for connection in idle)
    assert driver._held == 0 and driver._idle == []
    assert await eventually_no_backends(database_url, driver._sql) == 0


async def test_closing_is_prompt_when_the_server_has_gone_silent(engine, database_url):
    """Closing a connection waits for the server's goodbye at most the statement timeout
    (plus the client's margin); then it is dropped, and closing the lookup goes on."""
    session_id, user_id = await new_session(engine)
    url = make_url(database_url)
    async with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        # Only the engine's address is used: it never connects.
        proxied = create_async_engine(url.set(host="127.0.0.1", port=proxy.port))
        lookup = SessionLookup(proxied, timeouts=DatabaseTimeouts(connect=5, statement=0.2))
        try:
            await lookup.fetch(session_id, user_id)
            driver = lookup._driver
            [held] = driver._idle
            proxy.silence()
            await asyncio.wait_for(lookup.close(), 5)
            assert held.is_closed() and driver._held == 0
        finally:
            await lookup.close()
            await proxied.dispose()


async def test_a_batch_whose_connection_was_dropped_is_sent_once_more(lookup, engine, monkeypatch):
    session_id, user_id = await new_session(engine)
    await lookup.fetch(session_id, user_id)
    driver = lookup._driver
    [held] = driver._idle
    original = asyncpg.Connection.fetch
    failures = iter([asyncpg.ConnectionDoesNotExistError("dropped"), None])

    async def fetch(self, query, *args, **kwargs):
        if (failure := next(failures, None)) is not None:
            raise failure
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "fetch", fetch)
    assert (await lookup.fetch(session_id, user_id))[1].id == user_id
    assert held.is_closed()
    assert driver._held == 1 and driver._idle[0] is not held
    # A second drop in a row is the lookup's error.
    failures = iter([asyncpg.ConnectionDoesNotExistError("dropped")] * 2)
    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await lookup.fetch(session_id, user_id)
    assert driver._held == 0


async def test_lookups_queued_behind_failing_statements_are_still_sent(lookup, engine):
    session_id, user_id = await new_session(engine)
    failing, queued = await two_failing_and_one_queued(lookup, session_id, user_id)
    driver = lookup._driver
    driver._sql = lookup.sql
    for task in failing:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await task
    _, user = await asyncio.wait_for(queued, 5)
    assert user.id == user_id


@pytest.mark.parametrize("after_a_drop", [False, True])
async def test_a_connection_that_cannot_be_opened_is_the_lookups_error(
    lookup, engine, monkeypatch, after_a_drop
):
    session_id, user_id = await new_session(engine)
    await lookup.fetch(session_id, user_id)
    driver = lookup._driver
    [held] = driver._idle

    async def refused():
        raise ConnectionRefusedError("the database is down")

    monkeypatch.setattr(driver, "_connect", refused)
    if after_a_drop:  # the held connection fails as dropped, and no new one opens
        original = asyncpg.Connection.fetch

        async def dropped(self, query, *args, **kwargs):
            if self is held:
                raise asyncpg.ConnectionDoesNotExistError("dropped")
            return await original(self, query, *args, **kwargs)

        monkeypatch.setattr(asyncpg.Connection, "fetch", dropped)
    else:
        driver._forget(driver._idle.pop())  # none held: the next lookup must open one
    results = await asyncio.wait_for(
        asyncio.gather(
            *(lookup.fetch(session_id, user_id) for _ in range(2)), return_exceptions=True
        ),
        10,
    )
    assert [type(result) for result in results] == [ConnectionRefusedError] * 2
    assert driver._held == 0


async def test_the_connection_address_keeps_its_password(monkeypatch):
    """The URL is rendered for asyncpg with its password (SQLAlchemy hides it by default)."""
    addresses: list[str] = []

    async def connect(dsn, **kwargs):
        addresses.append(dsn)
        raise ConnectionRefusedError

    monkeypatch.setattr(asyncpg, "connect", connect)
    url = make_url("postgresql+asyncpg://shop:s3cret@db.internal:5432/shop")
    with pytest.raises(ConnectionRefusedError):
        await _AsyncpgDriver.open(url, DatabaseTimeouts(), "SELECT 1")
    assert addresses == ["postgresql://shop:s3cret@db.internal:5432/shop"]
