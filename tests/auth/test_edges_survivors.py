"""Tests written for mutants of app/auth that survived `make mutate`: each names the
mutant(s) it kills. The survivors judged equivalent are listed, with reasons, in the
mutation report, not here."""

import asyncio
import re
import time
import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import func, make_url, select

import app.auth.lookup as lookup_module
from app.auth.clientip import parse_address
from app.auth.lookup import SessionLookup, _SqliteDriver
from app.auth.ratelimit import RateLimits
from app.core.db import DatabaseTimeouts
from app.users.models import User
from tests.conftest import client_for
from tests.helpers import new_user_data, register


def test_only_the_first_closing_bracket_ends_an_ipv6_address():
    """Kills app.auth.clientip.x_parse_address__mutmut_9 (find → rfind of "]"): the address
    is what stands between "[" and the first "]", whatever trails it."""
    assert str(parse_address("[2001:db8::1]]")) == "2001:db8::1"
    assert str(parse_address("[2001:db8::1]:443]")) == "2001:db8::1"


def sqlite_only(app) -> None:
    if app.state.engine.dialect.driver != "aiosqlite":
        pytest.skip("the SQLite session-lookup driver")


async def test_the_sqlite_lookup_waits_for_locks_as_long_as_the_statement_timeout(app):
    """Kills app.auth.lookup.xǁ_SqliteDriverǁopen__mutmut_10 (busy / 1000: a busy timeout
    of 0, a locked database fails at once) and __mutmut_11 (busy * 1001)."""
    sqlite_only(app)
    driver = await _SqliteDriver.open(
        app.state.engine.url, DatabaseTimeouts(statement=2.5), app.state.auth.lookup.sql
    )
    try:
        # The connection that waits for locks (the in-loop one never does: busy timeout 0).
        assert await driver._connection.execute_fetchall("PRAGMA busy_timeout") == [(2500,)]
        assert driver._direct.execute("PRAGMA busy_timeout").fetchall() == [(0,)]
    finally:
        await driver.close()


async def test_a_cancelled_request_does_not_start_a_second_opening(app, monkeypatch):
    """Kills app.auth.lookup.xǁSessionLookupǁ_open__mutmut_11 (`done() or is opening`):
    a request cancelled while the driver is still opening must leave that one attempt in
    place for the next request, not forget it and open (and leak) a second connection."""
    sqlite_only(app)
    gate, started = asyncio.Event(), asyncio.Event()
    drivers: list[_SqliteDriver] = []
    opens: list[object] = []

    class GatedSqliteDriver(_SqliteDriver):
        """The real driver; its opening waits for `gate`, and each one is counted."""

        @classmethod
        async def open(cls, url, timeouts, sql):
            opens.append(url)
            started.set()
            await gate.wait()
            driver = await super().open(url, timeouts, sql)
            drivers.append(driver)
            return driver

    monkeypatch.setitem(lookup_module._DRIVERS, "aiosqlite", GatedSqliteDriver)
    lookup = SessionLookup(app.state.engine)
    try:
        first = asyncio.create_task(lookup.fetch(uuid.uuid4(), uuid.uuid4()))
        await started.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        second = asyncio.create_task(lookup.fetch(uuid.uuid4(), uuid.uuid4()))
        await asyncio.sleep(0.05)
        gate.set()
        assert await second is None  # no such session: the lookup works
        assert len(opens) == 1
    finally:
        gate.set()
        await lookup.close()
        for driver in drivers:  # under the mutant, the first driver is nobody's: close it
            await driver.close()


async def test_closing_while_the_driver_opens_cancels_the_opening(app, monkeypatch):
    """Kills app.auth.lookup.xǁSessionLookupǁclose__mutmut_3 (`if opening.done()`):
    shutting down while the driver is still opening cancels that opening at once, and the
    request waiting on it, instead of waiting for a connection only to close it."""
    sqlite_only(app)
    started = asyncio.Event()

    class NeverOpens(_SqliteDriver):
        @classmethod
        async def open(cls, url, timeouts, sql):
            started.set()
            await asyncio.Event().wait()  # a server that never answers

    monkeypatch.setitem(lookup_module._DRIVERS, "aiosqlite", NeverOpens)
    lookup = SessionLookup(app.state.engine)
    fetching = asyncio.create_task(lookup.fetch(uuid.uuid4(), uuid.uuid4()))
    try:
        await started.wait()
        started_closing = time.monotonic()
        await asyncio.wait_for(lookup.close(), 2)
        assert time.monotonic() - started_closing < 0.5
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(fetching, 1)
    finally:
        fetching.cancel()


def test_an_account_key_takes_any_string_typed_as_a_login_name(settings):
    """Kills app.auth.ratelimit.xǁRateLimitsǁaccount_key__mutmut_5 (no error handler),
    __mutmut_8 ("XXsurrogatepassXX") and __mutmut_9 ("SURROGATEPASS"): a lone surrogate
    still gives a 32-hex-character key (each its own) instead of an exception."""
    limits = RateLimits(settings)
    key = limits.account_key("\ud800@example.com")
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert key != limits.account_key("\udc00@example.com")
    assert key == limits.account_key("\ud800@example.com")


async def test_registrations_are_limited_per_client_address(make_app):
    """Kills app.auth.services.x_limit_per_ip__mutmut_1 … __mutmut_8 (limits None, item or
    key None, arguments dropped, `client_ip and "unknown"`, client_ip(None)): the third
    registration from one address is refused with 429, another address still registers,
    and the refused one created no account. (They survived mutmut only because
    limit_per_ip's closures are built at import time, before a mutant is switched on.)"""
    app = make_app(RATE_LIMIT_REGISTER_IP="2/hour")
    async with (
        client_for(app, ip="198.51.100.1") as first,
        client_for(app, ip="198.51.100.2") as second,
    ):
        await register(first)
        await register(first)
        refused = new_user_data()
        response = await first.post("/auth/register", json=refused)
        assert response.status_code == 429, response.text
        assert int(response.headers["retry-after"]) > 0
        await register(second)
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(User)) == 3
        assert await db.scalar(select(User).where(User.email == refused["email"])) is None


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "sqlite+aiosqlite:///file:sessions?mode=memory&cache=shared&uri=true",
    ],
)
def test_the_sqlite_lookup_refuses_an_in_memory_database(url):
    """Kills app.auth.lookup.xǁ_SqliteDriverǁcheck__mutmut_1 … _13: its second connection
    would open a different, empty in-memory database; refused when the app starts."""
    with pytest.raises(ValueError, match=r"^the session lookup needs a SQLite file,"):
        _SqliteDriver.check(make_url(url))


def test_the_sqlite_lookup_takes_a_database_file(tmp_path):
    _SqliteDriver.check(make_url(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"))


def test_a_database_driver_without_a_session_lookup_is_named_in_the_refusal():
    """Kills app.auth.lookup.xǁSessionLookupǁ__init____mutmut_3 (a message-less error):
    the start-up error names the driver that has no lookup."""
    engine = SimpleNamespace(
        dialect=SimpleNamespace(driver="psycopg"), url=make_url("postgresql+psycopg://db/shop")
    )
    with pytest.raises(ValueError, match="no session lookup for the psycopg driver"):
        SessionLookup(engine)  # type: ignore[arg-type]


async def test_lifespan_events_pass_through_the_renewal_middleware(make_app):
    """Kills app.auth.renewal.xǁSessionRenewalMiddlewareǁ__call____mutmut_6 … _11: a scope
    that is not HTTP (the server's start-up and shut-down) goes through the middleware
    stack unchanged, as uvicorn sends it."""
    application = make_app()
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive():
        return incoming.pop(0)

    async def send(message):
        sent.append(message["type"])

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    await asyncio.wait_for(application(scope, receive, send), 30)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
