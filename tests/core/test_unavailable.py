"""A database or Redis that can't answer: a prompt 503 SERVICE_UNAVAILABLE, never a hang or
a 500 (security probe, item 7); SQL parameters never in the logs (item 11)."""

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import coredis.exceptions
import httpx
import limits.errors
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import exc as sa_exc
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.auth.cookie import COOKIE_NAME
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.core.security import SessionClaims
from app.core.unavailable import unavailable_service
from tests.conftest import client_for
from tests.helpers import aiosqlite_threads_settle, login_form, signed_in

TIMEOUT = 0.5  # DB_CONNECT_TIMEOUT_SECONDS and DB_STATEMENT_TIMEOUT_SECONDS in these tests
PROMPTLY = 2.0  # seconds: an answer later than this is a hang
SMALL_TIMEOUTS = {"DB_CONNECT_TIMEOUT_SECONDS": TIMEOUT, "DB_STATEMENT_TIMEOUT_SECONDS": TIMEOUT}


# --- helpers -------------------------------------------------------------------------


@pytest.fixture
def make_app(make_app: Callable[..., FastAPI]) -> Callable[..., FastAPI]:
    """Apps with small timeouts (closed by the conftest fixture)."""
    return lambda **overrides: make_app(**{**SMALL_TIMEOUTS, **overrides})


def session_cookie_for(application: FastAPI) -> str:
    """A validly signed cookie naming a random user and session."""
    token = application.state.auth.codec.encode(SessionClaims(uuid.uuid4(), uuid.uuid4()), utcnow())
    return f"{COOKIE_NAME}={token}"


async def timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    # A hang fails here, in the test's time, not in the driver's 60 s.
    response = await asyncio.wait_for(request, PROMPTLY * 3)
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["code"] == "SERVICE_UNAVAILABLE"
    assert isinstance(body["detail"], str)
    assert int(response.headers["retry-after"]) > 0
    assert elapsed < PROMPTLY, f"answered after {elapsed:.2f} s"


def decoded_session(application: FastAPI, client: httpx.AsyncClient) -> SessionClaims:
    claims = application.state.auth.codec.decode(client.cookies[COOKIE_NAME])
    assert claims is not None
    return claims


# --- a database that can't be reached --------------------------------------------------

ROUTES: dict[str, Callable[[httpx.AsyncClient, FastAPI], Any]] = {
    "readyz": lambda client, _: client.get("/readyz"),
    "users/me": lambda client, application: client.get(
        "/users/me", headers={"cookie": session_cookie_for(application)}
    ),
    "login": lambda client, _: client.post("/auth/login", data=login_form()),
}


@pytest.fixture(params=["silent", "refused", "sqlite-no-directory"])
def unreachable_database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite-no-directory":
        return f"sqlite+aiosqlite:///{tmp_path}/missing/app.db"
    port = request.getfixturevalue(f"{request.param}_port")
    return f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x"


@pytest.mark.parametrize("route", ROUTES)
async def test_an_unreachable_database_is_a_prompt_503(make_app, unreachable_database_url, route):
    # Probe: each of these hung 60 s (asyncpg's default connect timeout), then answered 500.
    application = make_app(DATABASE_URL=unreachable_database_url)
    async with client_for(application) as client:
        response, elapsed = await timed(ROUTES[route](client, application))
    await aiosqlite_threads_settle(unreachable_database_url)
    assert_unavailable(response, elapsed)


async def test_waiting_requests_share_the_connect_timeout(make_app, silent_port):
    # Sixteen requests at once must not take turns at connecting, each waiting its own
    # timeout: all of them answer within about one.
    application = make_app(DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:{silent_port}/x")
    async with client_for(application) as client:
        requests = [ROUTES["users/me"](client, application) for _ in range(8)]
        requests += [ROUTES["login"](client, application) for _ in range(8)]
        started = time.monotonic()
        responses = await asyncio.wait_for(asyncio.gather(*requests), PROMPTLY * 5)
        elapsed = time.monotonic() - started
    for response in responses:
        assert_unavailable(response, elapsed)


async def test_an_exhausted_pool_is_a_prompt_503(make_app):
    application = make_app()
    engine = application.state.engine
    held = []
    async with client_for(application) as client:
        try:
            while True:  # take every pooled connection; the next checkout times out
                try:
                    held.append(await asyncio.wait_for(engine.connect().start(), PROMPTLY * 3))
                except sa_exc.TimeoutError:
                    break
            response, elapsed = await timed(ROUTES["login"](client, application))
        finally:
            for connection in held:
                await connection.close()
        again = await client.post("/auth/login", data=login_form())
    assert_unavailable(response, elapsed)
    assert again.status_code == 400  # connections back: served again (a wrong login)


# --- a lock held longer than the statement timeout --------------------------------------


async def test_a_lock_past_the_statement_timeout_is_a_prompt_503_on_postgresql(
    make_app, database_url, caplog
):
    # Probe: a 25 s table lock made /users/me wait 24 s.
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's statement_timeout: needs TEST_DATABASE_URL (SQLite: next test)")
    application = make_app()
    async with client_for(application) as client:
        await signed_in(client)
        claims = decoded_session(application, client)
        dsn = make_url(database_url).set(drivername="postgresql")
        locker = await asyncpg.connect(dsn.render_as_string(hide_password=False))
        try:
            async with locker.transaction():
                await locker.execute('LOCK TABLE "user" IN ACCESS EXCLUSIVE MODE')
                response, elapsed = await timed(client.get("/users/me"))
        finally:
            await locker.close()
        after = await client.get("/users/me")
    assert_unavailable(response, elapsed)
    assert after.status_code == 200  # the lock gone, the same session is served again
    # The server cancelled it (statement_timeout), not the client's backstop timeout.
    assert "canceling statement due to statement timeout" in caplog.text
    assert claims.session_id.hex not in caplog.text
    assert str(claims.session_id) not in caplog.text


async def test_a_lock_past_the_busy_timeout_is_a_prompt_503_on_sqlite(
    make_app, database_url, caplog
):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's busy timeout: runs without TEST_DATABASE_URL (PostgreSQL: above)")
    application = make_app()
    async with client_for(application) as client:
        await signed_in(client)
        claims = decoded_session(application, client)
        locker = sqlite3.connect(make_url(database_url).database, isolation_level=None)
        try:
            # Last seen long ago: this request records it, so it must wait for the lock.
            locker.execute("UPDATE auth_session SET last_seen_at = '2000-01-01 00:00:00.000000'")
            locker.execute("BEGIN EXCLUSIVE")
            response, elapsed = await timed(client.get("/users/me"))
            locker.execute("ROLLBACK")
        finally:
            locker.close()
        after = await client.get("/users/me")
    assert_unavailable(response, elapsed)
    assert after.status_code == 200
    assert "database unavailable" in caplog.text
    assert claims.session_id.hex not in caplog.text  # the UPDATE's parameter
    assert str(claims.session_id) not in caplog.text


# --- Redis ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/login", "/auth/register"])
async def test_redis_refusing_connections_is_a_503(make_app, refused_port, path):
    # Probe: 500 INTERNAL_ERROR.
    application = make_app(REDIS_URL=f"redis://127.0.0.1:{refused_port}")
    async with client_for(application) as client:
        if path == "/auth/login":
            request = client.post(path, data=login_form())
        else:
            request = client.post(path, json={"email": "new@example.com", "password": "x" * 12})
        response, elapsed = await timed(request)
    assert_unavailable(response, elapsed)


async def test_redis_not_answering_is_a_prompt_503_on_login(make_app, silent_port):
    application = make_app(REDIS_URL=f"redis://127.0.0.1:{silent_port}")
    async with client_for(application) as client:
        started = time.monotonic()
        response = await asyncio.wait_for(client.post("/auth/login", data=login_form()), 4)
    assert_unavailable(response, time.monotonic() - started)


async def test_redis_unreachable_is_a_prompt_503_on_login(make_app, unreachable_port):
    """A Redis address that drops packets: each connect gives up after the connect
    timeout (coredis would otherwise wait for the kernel's SYN retries, about 2 minutes)."""
    application = make_app(
        REDIS_URL=f"redis://127.0.0.1:{unreachable_port}", DB_CONNECT_TIMEOUT_SECONDS=0.3
    )
    async with client_for(application) as client:
        response, elapsed = await timed(client.post("/auth/login", data=login_form()))
    assert_unavailable(response, elapsed)


# --- what counts as "unavailable" -------------------------------------------------------


def raised(action: Callable[[], object]) -> BaseException:
    try:
        action()
    except Exception as exc:
        return exc
    raise AssertionError("nothing raised")


def test_only_unavailability_is_unavailable(tmp_path):
    path = tmp_path / "x.db"
    holder = sqlite3.connect(path, isolation_level=None)
    waiter = sqlite3.connect(path, timeout=0)
    try:
        holder.execute("CREATE TABLE t (x)")
        no_table = raised(lambda: waiter.execute("SELECT * FROM nope"))
        holder.execute("BEGIN EXCLUSIVE")
        locked = raised(lambda: waiter.execute("SELECT * FROM t"))
    finally:
        holder.close()
        waiter.close()
    assert "locked" in str(locked) and unavailable_service(locked) == "database"
    assert "no such table" in str(no_table) and unavailable_service(no_table) is None
    # An OSError that no driver raised (a missing file, say) is a bug, not an outage.
    missing = raised(lambda: open(tmp_path / "missing"))  # noqa: SIM115
    assert unavailable_service(missing) is None
    assert unavailable_service(ValueError("x")) is None
    # Redis, as the client raises it (here without the socket error it usually wraps).
    refused = coredis.exceptions.ConnectionError("Connect call failed")
    assert unavailable_service(refused) == "redis"
    assert unavailable_service(coredis.exceptions.TimeoutError("timed out")) == "redis"
    assert unavailable_service(limits.errors.StorageError(refused)) == "redis"
    assert unavailable_service(coredis.exceptions.ResponseError("WRONGTYPE")) is None


# --- SQL parameters stay out of the logs (item 11) --------------------------------------


def app_client(application: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="https://shop.test")


async def test_a_failing_query_is_logged_without_its_parameters(make_app, caplog):
    application = make_app()
    session_id = uuid.uuid4()
    router = APIRouter()

    @router.get("/failing-query")
    async def failing_query(db: SessionDep) -> None:
        await db.execute(
            text("SELECT * FROM no_such_table WHERE id = :sid"), {"sid": session_id.hex}
        )

    application.include_router(router)
    async with app_client(application) as client:
        with caplog.at_level(logging.ERROR, logger="app.core.errors"):
            response = await client.get("/failing-query")
    assert response.status_code == 500  # a wrong query is a bug, not an outage
    assert response.json()["code"] == "INTERNAL_ERROR"
    assert "no_such_table" in caplog.text  # the statement is there to debug with
    assert session_id.hex not in caplog.text


async def test_the_engine_hides_parameters(make_app):
    engine = make_app().state.engine
    session_id = uuid.uuid4()
    async with engine.connect() as connection:
        with pytest.raises(sa_exc.DBAPIError) as failure:
            await connection.execute(
                text("SELECT * FROM no_such_table WHERE id = :sid"), {"sid": session_id.hex}
            )
    assert "no_such_table" in str(failure.value)
    assert session_id.hex not in str(failure.value)


SQL = "SELECT * FROM no_such_table WHERE id = ?"
# As raised by an engine made without hide_parameters.
UNHIDDEN = {
    "StatementError": lambda params, orig: sa_exc.StatementError("failed", SQL, params, orig),
    "OperationalError": lambda params, orig: sa_exc.OperationalError(SQL, params, orig),
}


@pytest.mark.parametrize("kind", UNHIDDEN)
async def test_the_error_log_hides_parameters_whatever_the_engine(make_app, caplog, kind):
    application = make_app()
    session_id = uuid.uuid4()
    router = APIRouter()

    @router.get("/failing-query")
    async def failing_query() -> None:
        orig = sqlite3.OperationalError("no such table: no_such_table")
        error = UNHIDDEN[kind]((session_id.hex,), orig)
        assert session_id.hex in str(error)  # as it would be logged without the fix
        raise error

    application.include_router(router)
    async with app_client(application) as client:
        with caplog.at_level(logging.ERROR, logger="app.core.errors"):
            response = await client.get("/failing-query")
    assert response.status_code == 500
    assert "no_such_table" in caplog.text
    assert session_id.hex not in caplog.text
