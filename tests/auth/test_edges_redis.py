"""The rate limiter's Redis connection when connections drop: one closed under it is
retried at once (app.auth.ratelimit, RateLimits: ConstantRetryPolicy(..., delay=0)), and
connections that keep dropping end in a prompt 503, not a 500 or a wait.

A proxy in front of the test Redis (tests.helpers.TcpProxy) closes the first connections
it accepts. (How many connections a request opens is coredis's business: a login opens
one, and each dropped one is replaced, so the tests count "more than one", not an exact
number.)"""

import asyncio
import os
import time
import urllib.parse
import uuid

import pytest

from tests.conftest import client_for
from tests.helpers import TcpProxy, login_form

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")

pytestmark = pytest.mark.skipif(
    not REDIS_URL, reason="needs a Redis server: set TEST_REDIS_URL (CI does, see .ci/run)"
)


def dropping_proxy(drop: int) -> TcpProxy:
    """A proxy in front of the test Redis that closes the first `drop` connections."""
    target = urllib.parse.urlsplit(REDIS_URL)
    return TcpProxy(target.hostname or "127.0.0.1", target.port or 6379, drop=drop)


def proxied(proxy: TcpProxy) -> str:
    """The test Redis's URL (its database: "/15"), through the proxy."""
    return f"redis://127.0.0.1:{proxy.port}{urllib.parse.urlsplit(REDIS_URL).path}"


async def wrong_password(app) -> tuple[int, float]:
    """A login attempt (rate-limited by IP and account) from a fresh IP; its status and
    how long it took."""
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.2"
    async with client_for(app, ip=ip) as client:
        started = time.monotonic()
        response = await asyncio.wait_for(client.post("/auth/login", data=login_form()), 5)
    return response.status_code, time.monotonic() - started


async def test_a_dropped_connection_is_retried_at_once(make_app):
    async with dropping_proxy(drop=1) as proxy:
        app = make_app(REDIS_URL=proxied(proxy), DB_CONNECT_TIMEOUT_SECONDS=2)
        status, elapsed = await wrong_password(app)
        assert status == 400  # counted through a new connection: an ordinary refusal
        assert proxy.connections >= 2
        assert elapsed < 0.9  # no pause before the retry


async def test_connections_that_keep_dropping_end_in_a_prompt_503(make_app):
    async with dropping_proxy(drop=1000) as proxy:
        app = make_app(REDIS_URL=proxied(proxy), DB_CONNECT_TIMEOUT_SECONDS=2)
        status, elapsed = await wrong_password(app)
        assert status == 503
        assert 2 <= proxy.connections <= 10  # retried, a bounded number of times
        assert elapsed < 0.9
