"""The PostgreSQL session lookup runs on connections it holds (app.auth.lookup,
_AsyncpgDriver): a lookup that finds one free uses it, and only lookups beyond them take
asyncpg's pool; a held connection that fails in any way is closed and replaced; closing
the lookup closes them, in flight or idle."""

import asyncio
import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.lookup import SessionLookup, _AsyncpgDriver
from tests.helpers import ON_POSTGRESQL

pytestmark = ON_POSTGRESQL


@pytest.fixture
async def lookup(database_url):
    engine = create_async_engine(database_url)
    lookup = SessionLookup(engine)
    try:
        yield lookup
    finally:
        await lookup.close()
        await engine.dispose()


async def server_backends(database_url: str, query: str) -> int:
    """Connections to the test database, other than this one, whose latest statement is
    `query` (idle or running)."""
    admin = await asyncpg.connect(
        make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        return await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND query = $1",
            query,
        )
    finally:
        await admin.close()


async def eventually_no_backends(database_url: str, query: str) -> int:
    """The server notices a closed connection a moment after the client closes it."""
    for _ in range(100):  # up to 5 s
        count = await server_backends(database_url, query)
        if not count:
            break
        await asyncio.sleep(0.05)
    return count


async def fetch_none(lookup: SessionLookup) -> None:
    assert await lookup.fetch(uuid.uuid4(), uuid.uuid4()) is None


async def test_lookups_one_at_a_time_run_on_one_held_connection(lookup, database_url):
    for _ in range(5):
        await fetch_none(lookup)
    driver = lookup._driver
    assert len(driver._idle) == 1
    assert driver._pool.get_size() == 0  # the pool never opened a connection
    assert await server_backends(database_url, lookup.sql) == 1


async def test_lookups_at_once_fill_the_held_connections_then_take_the_pool(lookup, database_url):
    await fetch_none(lookup)
    driver = lookup._driver
    await asyncio.gather(*(fetch_none(lookup) for _ in range(6)))
    assert driver._held == len(driver._idle) == _AsyncpgDriver.OWN_CONNECTIONS == 2
    assert driver._pool.get_size() >= 1  # the rest waited for none of them
    # Later lookups, one at a time, reuse the newest held connection.
    newest = driver._idle[-1]
    await fetch_none(lookup)
    assert driver._idle[-1] is newest


async def test_a_failed_statement_closes_its_connection_and_the_next_lookup_opens_one(lookup):
    await fetch_none(lookup)
    driver = lookup._driver
    [held] = driver._idle
    with pytest.raises(asyncpg.DivisionByZeroError):
        await driver.fetch("SELECT 1 / 0", ())
    assert held.is_closed()
    assert driver._idle == [] and driver._held == 0
    await fetch_none(lookup)
    assert driver._held == 1 and driver._idle[0] is not held


async def test_a_cancelled_lookup_closes_its_connection(lookup, database_url):
    await fetch_none(lookup)
    driver = lookup._driver
    [held] = driver._idle
    slow = asyncio.create_task(driver.fetch("SELECT pg_sleep(5)", ()))
    await asyncio.sleep(0.2)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert held.is_closed()  # not left to the next lookup mid-answer
    assert driver._held == 0
    assert await eventually_no_backends(database_url, "SELECT pg_sleep(5)") == 0
    await fetch_none(lookup)


async def test_an_idle_connection_the_server_closed_is_skipped(lookup):
    await fetch_none(lookup)
    driver = lookup._driver
    [held] = driver._idle
    held.terminate()  # as if the server had closed it while idle
    # Not even a first attempt fails on it (fetch's one retry is not needed).
    assert await driver._fetch("SELECT 1", ()) == [(1,)]
    assert driver._held == 1 and driver._idle[0] is not held


async def test_closing_closes_the_held_connections_idle_and_in_flight(lookup, database_url):
    await asyncio.gather(*(fetch_none(lookup) for _ in range(3)))
    driver = lookup._driver
    first, second = driver._idle
    in_flight = asyncio.create_task(driver.fetch("SELECT pg_sleep(0.5)", ()))
    await asyncio.sleep(0.1)
    assert driver._idle == [first]  # the sleep runs on the newest
    await lookup.close()
    assert first.is_closed()
    assert not second.is_closed()  # the lookup on it still gets its answer
    assert len(await in_flight) == 1
    assert second.is_closed()  # closed by that lookup itself when it ended
    assert driver._held == 0 and driver._idle == []
    assert await eventually_no_backends(database_url, lookup.sql) == 0
    assert await eventually_no_backends(database_url, "SELECT pg_sleep(0.5)") == 0
