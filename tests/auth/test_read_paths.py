"""What an authenticated request costs: a read changes nothing and commits nothing; a
write commits once; the token codec checks its secret once, with PyJWT; the renewed
cookie's header is the one fastapi-users builds."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import time_machine
from fastapi import Request
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from app.auth.cookie import COOKIE_NAME, build_session_cookie
from app.auth.deps import current_user
from app.auth.lookup import USER_KEYS
from app.auth.models import AuthSession
from app.auth.strategy import SessionStrategy, auth_backend
from app.core.security import SESSION_AUDIENCE, SessionClaims, SessionTokenCodec
from app.users.models import User
from tests.conftest import TEST_SECRET
from tests.helpers import sent_statements, signed_in

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@contextmanager
def orm_activity() -> Iterator[dict[str, int]]:
    """Counts ORM transactions begun, objects merged and commits, in every Session."""
    counts = {"transactions": 0, "commits": 0, "merged": 0}

    def began(session, transaction):
        if transaction.parent is None:  # not a savepoint or a nested one
            counts["transactions"] += 1

    def committed(session):
        counts["commits"] += 1

    def attached(session, instance):
        counts["merged"] += 1

    hooks = [
        ("after_transaction_create", began),
        ("after_commit", committed),
        ("after_attach", attached),
    ]
    for name, hook in hooks:
        event.listen(Session, name, hook)
    try:
        yield counts
    finally:
        for name, hook in hooks:
            event.remove(Session, name, hook)


async def test_reading_my_account_opens_and_commits_no_orm_session(client, clock):
    await signed_in(client)
    clock.shift(timedelta(seconds=30))  # last_seen_at is fresh: no bookkeeping write due
    with orm_activity() as counts:
        response = await client.get("/users/me")
    assert response.status_code == 200
    assert counts == {"transactions": 0, "commits": 0, "merged": 0}


async def test_a_due_last_seen_write_is_one_short_transaction_of_its_own(app, client, clock):
    await signed_in(client)
    clock.shift(timedelta(minutes=2))
    with orm_activity() as counts:
        response = await client.get("/users/me")
    assert response.status_code == 200
    assert counts["commits"] == 1
    assert counts["merged"] == 0  # the user is never attached to a session on a read
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(AuthSession.last_seen_at)) == START + timedelta(minutes=2)


async def test_changing_my_account_commits_once(app, client, clock):
    """One commit, and one statement: the UPDATE. The signed-in user is attached to the
    session as it was looked up (merge without load), not read again."""
    account = await signed_in(client)
    clock.shift(timedelta(seconds=30))
    with sent_statements(app) as statements, orm_activity() as counts:
        response = await client.patch("/users/me", json={"name": "Новое Имя"})
    executed = [statement.split(None, 1)[0].upper() for statement in statements]
    assert response.status_code == 200
    assert response.json()["name"] == "Новое Имя"
    assert counts["commits"] == 1
    assert executed == ["UPDATE"]
    async with app.state.sessionmaker() as db:
        stored = await db.scalar(select(User.name).where(User.email == account["email"]))
    assert stored == "Новое Имя"


def test_the_codec_refuses_an_asymmetric_key_as_its_secret():
    """PyJWT's own key check runs once, when the codec is built."""
    pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"
    with pytest.raises(jwt.InvalidKeyError):
        SessionTokenCodec(pem, 60)


def test_the_codec_agrees_with_plain_pyjwt():
    secret = "a-secret-of-enough-length-for-hs256-0123456789"
    codec = SessionTokenCodec(secret, 3600)
    claims = SessionClaims(user_id=uuid.uuid4(), session_id=uuid.uuid4())
    now = datetime.now(UTC)
    token = codec.encode(claims, now)
    payload = jwt.decode(token, secret, algorithms=["HS256"], audience=SESSION_AUDIENCE)
    assert payload["sid"] == str(claims.session_id)
    assert payload["exp"] - payload["iat"] == 3600
    plain = jwt.encode({**payload}, secret, algorithm="HS256")
    assert codec.decode(plain) == claims
    assert codec.decode(jwt.encode({**payload}, secret + "x", algorithm="HS256")) is None


def routes_in_order(routes):
    """The app's routes in the order FastAPI matches them; an included router is one node
    holding its own routes."""
    for route in routes:
        router = getattr(route, "original_router", None)
        yield from routes_in_order(router.routes) if router else [route]


def test_probes_and_account_routes_are_matched_first(app):
    """FastAPI walks included routers in order: /healthz first, then the signed-in
    user's routes (see app.main; the bench measured ~80 µs per /healthz otherwise)."""

    paths = [getattr(route, "path", "") for route in routes_in_order(app.router.routes)]
    assert paths[:2] == ["/openapi.json", "/healthz"]  # FastAPI adds its schema route first
    assert paths.index("/users/me") < paths.index("/auth/login")


@pytest.mark.parametrize("secure", [True, False])
async def test_the_renewal_header_is_the_one_fastapi_users_builds(make_settings, secure):
    settings = make_settings(COOKIE_SECURE=secure, SESSION_LIFETIME_SECONDS=3600)
    cookie = build_session_cookie(settings)
    token = SessionTokenCodec(TEST_SECRET, 3600).encode(
        SessionClaims(uuid.uuid4(), uuid.uuid4()), datetime.now(UTC)
    )
    login = await cookie.get_login_response(token)
    assert cookie.set_cookie_header(token) == login.headers["set-cookie"].encode("latin-1")
    assert (b"; Secure" in cookie.set_cookie_header(token)) is secure


async def test_the_looked_up_user_is_the_one_the_orm_loads(app, client):
    """The lookup builds the user as the ORM's loader would: every column loaded, clean,
    detached, with its identity; it attaches to a session without a load or a write."""
    await signed_in(client)
    async with app.state.sessionmaker() as db:
        row = await db.scalar(select(AuthSession))
        loaded = await db.get(User, row.user_id)
        expected = {key: getattr(loaded, key) for key in USER_KEYS}
        expected_unloaded = inspect(loaded).unloaded  # its relationships, lazy
    _, user = await app.state.auth.lookup.fetch(row.id, row.user_id)
    info = inspect(user)
    assert info.detached and not info.modified
    assert info.identity == (row.user_id,)
    assert info.unloaded == expected_unloaded  # no column left to lazy-load
    assert {key: getattr(user, key) for key in USER_KEYS} == expected
    async with app.state.sessionmaker() as db:
        attached = await db.merge(user, load=False)
        assert attached.email == expected["email"]
        assert not db.dirty and not db.new


def test_the_signed_in_user_is_one_dependency_on_the_cookie_scheme(app):
    """current_user is the cookie's security scheme itself: one dependency per request,
    and the same OpenAPI scheme as the cookie transport's."""
    me = next(
        route
        for route in routes_in_order(app.router.routes)
        if getattr(route, "path", None) == "/users/me" and "GET" in route.methods
    )
    (dependency,) = me.dependant.dependencies
    assert dependency.call is current_user and dependency.dependencies == []
    assert current_user.model == auth_backend.transport.scheme.model
    assert current_user.scheme_name == auth_backend.transport.scheme.scheme_name


async def test_the_strategy_reads_a_token_as_current_user_does(app, client):
    """fastapi-users' Strategy interface (read_token) answers as the routes' current_user:
    the live session's user, None for no token or a revoked session."""
    await signed_in(client)
    token = client.cookies[COOKIE_NAME]
    request = Request({"type": "http", "app": app, "headers": [], "state": {}})
    async with app.state.sessionmaker() as db:
        strategy = SessionStrategy(request, db, app.state.auth)
        me = (await client.get("/users/me")).json()
        user = await strategy.read_token(token, None)
        assert user is not None and str(user.id) == me["id"]
        assert strategy.request.state.auth_claims.user_id == user.id
        assert await strategy.read_token(None, None) is None
        assert (await client.post("/auth/logout")).status_code == 204
        assert await strategy.read_token(token, None) is None
