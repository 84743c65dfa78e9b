"""Session-list order and revocation timestamps: promises the mutation run found untested."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select
from starlette.requests import Request

from app.auth.models import AuthSession
from app.auth.strategy import current_claims
from tests.conftest import client_for
from tests.helpers import login, register, signed_in

START = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


async def session_rows(app) -> dict[str, AuthSession]:
    async with app.state.sessionmaker() as db:
        return {str(row.id): row for row in await db.scalars(select(AuthSession))}


async def test_the_session_list_is_most_recently_used_first(app, clock):
    clients = [client_for(app) for _ in range(5)]
    try:
        user = await register(clients[0])
        for n, client in enumerate(clients):  # logged in a minute apart: 0 is the oldest
            await login(client, user["email"])
            if n < len(clients) - 1:
                clock.shift(timedelta(minutes=1))
        # Used again in this order, a few minutes apart: 1 is now the least recently used.
        for n in (3, 0, 2):
            clock.shift(timedelta(minutes=3))
            assert (await clients[n].get("/users/me")).status_code == 200
        clock.shift(timedelta(minutes=3))
        items = (await clients[4].get("/users/me/sessions")).json()["items"]
        ids = [item["id"] for item in items]
        seen = {item["id"]: item["last_seen_at"] for item in items}
        assert [item["current"] for item in items] == [True, False, False, False, False]
        rows = await session_rows(app)
        expected = sorted(rows, key=lambda sid: rows[sid].last_seen_at, reverse=True)
        assert ids == expected
        assert len(set(seen.values())) == 5  # all different: the order is by last use alone
        # 4 (listing now), then 2, 0, 3 (used in reverse), then 1 (only its login)
        assert [rows[sid].created_at - START for sid in ids] == [
            timedelta(minutes=4),
            timedelta(minutes=2),
            timedelta(0),
            timedelta(minutes=3),
            timedelta(minutes=1),
        ]
    finally:
        for client in clients:
            await client.aclose()


async def test_sessions_last_used_at_the_same_instant_are_listed_by_id(app, clock):
    """A stable order for ties (what a client paging or diffing the list relies on): by id."""
    clients = [client_for(app) for _ in range(6)]
    try:
        user = await register(clients[0])
        for client in clients:  # the clock stands still: every session has the same times
            await login(client, user["email"])
        items = (await clients[0].get("/users/me/sessions")).json()["items"]
        assert len({item["last_seen_at"] for item in items}) == 1
        ids = [item["id"] for item in items]
        assert len(ids) == 6
        assert ids == sorted(ids)  # UUIDs in canonical text order, as the database sorts them
    finally:
        for client in clients:
            await client.aclose()


async def test_logout_everywhere_keeps_when_earlier_sessions_were_ended(app, clock):
    async with client_for(app) as ended, client_for(app) as kept, client_for(app) as here:
        user = await register(here)
        for client in (ended, kept, here):
            await login(client, user["email"])
        assert (await ended.post("/auth/logout")).status_code == 204
        clock.shift(timedelta(minutes=10))
        assert (await here.post("/auth/logout-all")).status_code == 204
        rows = await session_rows(app)
        revoked = sorted(row.revoked_at - START for row in rows.values())
        # The one logged out first keeps its time; only the two live ones are ended now.
        assert revoked == [timedelta(0), timedelta(minutes=10), timedelta(minutes=10)]


async def test_the_session_list_shows_only_ones_own_sessions(app):
    async with client_for(app) as alice, client_for(app) as bob, client_for(app) as bob2:
        await signed_in(alice)
        bobs = await signed_in(bob)
        await login(bob2, bobs["email"])
        items = (await alice.get("/users/me/sessions")).json()["items"]
        assert [item["current"] for item in items] == [True]
        assert len((await bob.get("/users/me/sessions")).json()["items"]) == 2


async def test_a_session_leaves_the_list_the_instant_its_token_stops_working(make_app, clock):
    app = make_app(SESSION_MAX_AGE_SECONDS=3600)
    async with client_for(app) as old, client_for(app) as new:
        user = await signed_in(old)
        clock.shift(timedelta(minutes=30))
        await login(new, user["email"])
        clock.shift(timedelta(minutes=30))  # `old` is exactly at the cap now
        assert (await old.get("/users/me")).status_code == 401
        items = (await new.get("/users/me/sessions")).json()["items"]
        assert [item["current"] for item in items] == [True]


async def test_last_seen_is_written_when_a_full_minute_has_passed(app, client, clock):
    await signed_in(client)
    clock.shift(timedelta(minutes=1))  # exactly the resolution: written
    assert (await client.get("/users/me")).status_code == 200
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(AuthSession.last_seen_at)) == START + timedelta(minutes=1)


def test_a_request_no_session_authenticated_has_no_claims():
    assert current_claims(Request({"type": "http", "headers": [], "state": {}})) is None


async def test_a_new_session_is_created_and_last_seen_at_the_same_instant(app, client):
    await signed_in(client)  # the real clock: two reads of it would differ
    (row,) = (await session_rows(app)).values()
    assert row.created_at == row.last_seen_at
    assert row.revoked_at is None


async def test_a_client_that_sends_no_user_agent_can_log_in(client):
    user = await register(client)
    del client.headers["user-agent"]
    await login(client, user["email"])
    items = (await client.get("/users/me/sessions")).json()["items"]
    assert [item["user_agent"] for item in items] == [None]
