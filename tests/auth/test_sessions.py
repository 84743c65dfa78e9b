"""Sliding renewal, the absolute cap, revocation, and the session list."""

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import jwt
import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.auth.cookie import COOKIE_NAME
from app.auth.models import AuthSession
from app.core.security import SESSION_AUDIENCE
from app.main import create_app
from tests.conftest import TEST_SECRET, client_for
from tests.helpers import (
    ON_POSTGRESQL,
    PASSWORD,
    login,
    register,
    sent_statements,
    session_cookie,
    signed_in,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def claims_of(response) -> dict:
    token = response.cookies[COOKIE_NAME]
    return jwt.decode(
        token,
        TEST_SECRET,
        algorithms=["HS256"],
        audience=SESSION_AUDIENCE,
        options={"verify_exp": False},
    )


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


async def test_every_authenticated_response_renews_the_cookie(client, clock):
    await signed_in(client)
    clock.shift(timedelta(hours=5))
    response = await client.get("/users/me")
    assert response.status_code == 200
    assert claims_of(response)["exp"] == int((START + timedelta(hours=5, days=7)).timestamp())


async def test_renewal_on_a_204_route(client, clock):
    await signed_in(client)
    async with client_for(client._transport.app) as other:  # a second session to end
        await login(other, (await client.get("/users/me")).json()["email"])
    listing = (await client.get("/users/me/sessions")).json()["items"]
    other_id = next(s["id"] for s in listing if not s["current"])
    clock.shift(timedelta(days=1))
    response = await client.delete(f"/users/me/sessions/{other_id}")
    assert response.status_code == 204
    assert claims_of(response)["exp"] == int((START + timedelta(days=8)).timestamp())


async def test_renewal_on_an_error_after_authentication(client, clock):
    await signed_in(client)
    clock.shift(timedelta(minutes=3))
    response = await client.get("/admin/users")  # a plain user: 403
    assert response.status_code == 403
    assert claims_of(response)["exp"] == int((START + timedelta(minutes=3, days=7)).timestamp())
    response = await client.delete(f"/users/me/sessions/{uuid.uuid4()}")  # 404
    assert response.status_code == 404
    assert session_cookie(response) is not None


async def test_anonymous_responses_carry_no_cookie(client):
    assert session_cookie(await client.get("/healthz")) is None
    response = await client.get("/users/me")
    assert response.status_code == 401
    assert session_cookie(response) is None


async def test_an_idle_week_ends_the_session(client, clock):
    await signed_in(client)
    clock.shift(timedelta(days=7, seconds=1))
    assert (await client.get("/users/me")).status_code == 401


async def test_activity_keeps_the_session_alive_past_seven_days(client, clock):
    await signed_in(client)
    for _ in range(4):
        clock.shift(timedelta(days=6))
        response = await client.get("/users/me")
        assert response.status_code == 200


async def test_absolute_cap_stops_renewal(make_app, clock):
    app = make_app(SESSION_MAX_AGE_SECONDS=3600)
    async with client_for(app) as client:
        await signed_in(client)
        clock.shift(timedelta(minutes=59))
        assert (await client.get("/users/me")).status_code == 200
        clock.shift(timedelta(minutes=2))
        response = await client.get("/users/me")
        assert response.status_code == 401
        assert session_cookie(response) is None
        # logging in again starts a new session
        email = "capped@example.com"
        await register(client, email=email)
        await login(client, email)
        assert (await client.get("/users/me")).status_code == 200


async def test_the_session_list_leaves_out_sessions_past_the_cap(make_app, clock):
    app = make_app(SESSION_MAX_AGE_SECONDS=3600)
    async with client_for(app) as old, client_for(app) as new:
        user = await signed_in(old)
        clock.shift(timedelta(minutes=59))
        await login(new, user["email"])
        assert len((await new.get("/users/me/sessions")).json()["items"]) == 2
        clock.shift(timedelta(minutes=2))
        items = (await new.get("/users/me/sessions")).json()["items"]
        assert [item["current"] for item in items] == [True]


async def test_logout_revokes_even_a_copied_token(client):
    await signed_in(client)
    stolen = client.cookies[COOKIE_NAME]
    response = await client.post("/auth/logout")
    assert response.status_code == 204
    header = session_cookie(response)
    assert 'shop_session=""' in header and "Max-Age=0" in header
    assert len(response.headers.get_list("set-cookie")) == 1
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, stolen)
    assert (await client.get("/users/me")).status_code == 401
    assert (await client.post("/auth/logout")).status_code == 401


async def test_logout_all_ends_every_session(app):
    async with client_for(app) as first, client_for(app) as second:
        user = await signed_in(first)
        await login(second, user["email"])
        response = await first.post("/auth/logout-all")
        assert response.status_code == 204
        assert "Max-Age=0" in session_cookie(response)
        assert (await second.get("/users/me")).status_code == 401
        first.cookies.set(COOKIE_NAME, second.cookies[COOKIE_NAME])
        assert (await first.get("/users/me")).status_code == 401


async def test_password_change_keeps_only_the_current_session(app):
    async with client_for(app) as first, client_for(app) as second:
        user = await signed_in(first)
        await login(second, user["email"])
        response = await first.patch(
            "/users/me", json={"password": "a brand new secret", "current_password": PASSWORD}
        )
        assert response.status_code == 200
        assert (await first.get("/users/me")).status_code == 200
        assert (await second.get("/users/me")).status_code == 401
        await login(second, user["email"], "a brand new secret")


async def test_session_list_and_ending_one(app):
    async with client_for(app) as first, client_for(app, ip="198.51.100.7") as second:
        user = await signed_in(first)
        await login(second, user["email"])
        response = await first.get("/users/me/sessions", headers={"User-Agent": "pytest"})
        items = response.json()["items"]
        assert len(items) == 2
        assert sum(item["current"] for item in items) == 1
        other = next(item for item in items if not item["current"])
        assert other["ip"] == "198.51.100.7"
        assert set(other) == {"id", "created_at", "last_seen_at", "user_agent", "ip", "current"}

        assert (await first.delete(f"/users/me/sessions/{other['id']}")).status_code == 204
        assert (await second.get("/users/me")).status_code == 401
        assert (await first.delete(f"/users/me/sessions/{other['id']}")).status_code == 404
        assert len((await first.get("/users/me/sessions")).json()["items"]) == 1


async def test_ending_the_current_session_clears_the_cookie(client):
    await signed_in(client)
    current = (await client.get("/users/me/sessions")).json()["items"][0]
    response = await client.delete(f"/users/me/sessions/{current['id']}")
    assert response.status_code == 204
    assert "Max-Age=0" in session_cookie(response)


async def test_cannot_end_someone_elses_session(app):
    async with client_for(app) as alice, client_for(app) as bob:
        await signed_in(alice)
        await signed_in(bob)
        bobs = (await bob.get("/users/me/sessions")).json()["items"][0]["id"]
        assert (await alice.delete(f"/users/me/sessions/{bobs}")).status_code == 404
        assert (await bob.get("/users/me")).status_code == 200


async def test_last_seen_is_written_at_most_once_a_minute(app, client, clock):
    await signed_in(client)

    async def last_seen() -> datetime:
        async with app.state.sessionmaker() as db:
            return await db.scalar(select(AuthSession.last_seen_at))

    clock.shift(timedelta(seconds=30))
    await client.get("/users/me")
    assert await last_seen() == START
    clock.shift(timedelta(seconds=31))
    await client.get("/users/me")
    assert await last_seen() == START + timedelta(seconds=61)


async def test_one_database_round_trip_per_authenticated_request(app, client, clock):
    await signed_in(client)
    await client.get("/users/me")  # the lookup's driver connection is open from here on
    driver = app.state.auth.lookup._driver
    driver_calls: list[tuple] = []
    original_fetch = driver.fetch

    async def counting_fetch(session_id, user_id):
        driver_calls.append((session_id, user_id))
        return await original_fetch(session_id, user_id)

    driver.fetch = counting_fetch
    try:
        with sent_statements(app) as statements:
            response = await client.get("/users/me")
    finally:
        driver.fetch = original_fetch
    assert response.status_code == 200
    assert len(driver_calls) == 1  # session and user, joined
    assert statements == []  # nothing else: no ORM query, no commit of an empty transaction


@pytest.mark.parametrize(
    "token_of",
    [
        lambda c: jwt.encode({**c, "aud": "someone-else"}, TEST_SECRET, algorithm="HS256"),
        lambda c: jwt.encode(c, "another-secret-of-enough-length-000000", algorithm="HS256"),
        lambda c: jwt.encode(c, TEST_SECRET, algorithm="HS512"),
        lambda c: jwt.encode(c, None, algorithm="none"),
        lambda c: jwt.encode({**c, "sid": str(uuid.uuid4())}, TEST_SECRET, algorithm="HS256"),
        lambda c: jwt.encode(
            {k: v for k, v in c.items() if k != "sid"}, TEST_SECRET, algorithm="HS256"
        ),
        lambda c: "not.a.jwt",
    ],
    ids=["audience", "key", "alg-hs512", "alg-none", "unknown-sid", "no-sid", "garbage"],
)
async def test_forged_tokens_are_401(client, token_of):
    await signed_in(client)
    claims = claims_of(await client.get("/users/me"))
    client.cookies.set(COOKIE_NAME, token_of(claims))
    response = await client.get("/users/me")
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"


async def test_the_looked_up_user_is_the_one_the_orm_loads(app, client):
    """The session lookup builds the user from a raw row: every column must come out as
    the ORM itself would load it (types included), on SQLite and PostgreSQL alike."""
    from app.auth.lookup import USER_ATTRIBUTES
    from app.users.models import User

    me = await signed_in(client)
    claims = claims_of(await client.get("/users/me"))
    state, looked_up = await app.state.auth.lookup.fetch(
        uuid.UUID(claims["sid"]), uuid.UUID(claims["sub"])
    )
    async with app.state.sessionmaker() as db:
        loaded = await db.get(User, uuid.UUID(me["id"]))
    assert len(USER_ATTRIBUTES) == len(User.__table__.columns)
    for key, _ in USER_ATTRIBUTES:
        ours, theirs = getattr(looked_up, key), getattr(loaded, key)
        assert (ours, type(ours)) == (theirs, type(theirs)), key
    assert state.revoked_at is None
    assert state.created_at.tzinfo is not None
    assert await app.state.auth.lookup.fetch(uuid.uuid4(), looked_up.id) is None


def test_an_in_memory_sqlite_database_is_refused_at_start(make_settings):
    with pytest.raises(ValueError, match="in-memory"):
        create_app(make_settings(DATABASE_URL="sqlite+aiosqlite://"))


async def test_signed_in_responses_are_never_cached(client):
    assert "cache-control" not in (await client.get("/healthz")).headers
    user = await register(client)
    response = await login(client, user["email"])
    assert response.headers["cache-control"] == "no-store"
    for response in (
        await client.get("/users/me"),
        await client.get("/users/me/sessions"),
        await client.patch("/users/me", json={"name": "Новое имя"}),
        await client.delete("/users/me/sessions/not-a-uuid"),  # errors after authentication too
    ):
        assert response.headers.get_list("cache-control") == ["no-store"], response.request.url


async def test_a_shorter_lifetime_is_the_cookies_and_the_tokens(make_app, clock):
    app = make_app(SESSION_LIFETIME_SECONDS=3600)
    async with client_for(app) as client:
        user = await register(client)
        response = await login(client, user["email"])
        assert "Max-Age=3600" in session_cookie(response)
        claims = claims_of(response)
        assert claims["exp"] - claims["iat"] == 3600
        clock.shift(timedelta(minutes=59))
        renewed = await client.get("/users/me")
        assert "Max-Age=3600" in session_cookie(renewed)
        clock.shift(timedelta(minutes=61))  # idle past the lifetime: the token has expired
        assert (await client.get("/users/me")).status_code == 401


async def connect_admin(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


@ON_POSTGRESQL
async def test_the_lookup_survives_the_server_dropping_its_connections(app, client, database_url):
    await signed_in(client)
    assert (await client.get("/users/me")).status_code == 200  # the lookup's pool is open
    admin = await connect_admin(database_url)
    try:
        dropped = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    assert dropped >= 1
    assert (await client.get("/users/me")).status_code == 200


@ON_POSTGRESQL
async def test_a_lookup_is_one_statement_with_no_reset_after_it(app, client, database_url):
    """asyncpg's pool resets a connection on release with a second statement (advisory
    unlock, CLOSE ALL, UNLISTEN, RESET ALL): a second round trip per request. The lookup's
    connections have nothing to reset, so the lookup's SELECT is their last statement."""
    await signed_in(client)
    for _ in range(3):
        assert (await client.get("/users/me")).status_code == 200
    admin = await connect_admin(database_url)
    try:
        last_statements = await admin.fetch(
            "SELECT query FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    queries = [row["query"] for row in last_statements]
    assert app.state.auth.lookup.sql in queries  # the lookup's connection, idle after it
    assert not [query for query in queries if "RESET ALL" in query]
