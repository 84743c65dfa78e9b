"""Retry-After counts down to the moment the oldest counted attempt leaves the window."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from app.auth.ratelimit import RateLimits
from app.core.errors import RateLimited
from tests.conftest import client_for

START = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


async def guess(client):
    return await client.post(
        "/auth/login", data={"username": "nobody@example.com", "password": "wrong password"}
    )


async def test_retry_after_is_the_time_left_for_this_client(make_app, clock):
    app = make_app(RATE_LIMIT_LOGIN_IP="2/minute")
    async with (
        client_for(app, ip="198.51.100.1") as client,
        client_for(app, ip="198.51.100.2") as other,
    ):
        assert (await guess(client)).status_code == 400
        clock.shift(timedelta(seconds=20))
        assert (await guess(client)).status_code == 400
        clock.shift(timedelta(seconds=20))
        # A fresh budget elsewhere does not change this client's answer.
        assert (await guess(other)).status_code == 400
        refused = await guess(client)
        assert refused.status_code == 429
        # Its first attempt, 40 s ago, leaves the 60-second window in 20 s.
        assert refused.headers["Retry-After"] == "20"
        clock.shift(timedelta(seconds=19, milliseconds=500))
        refused = await guess(client)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"  # half a second, rounded up
        clock.shift(timedelta(seconds=1))
        assert (await guess(client)).status_code == 400


async def test_nothing_is_counted_when_rate_limiting_is_off(make_app):
    app = make_app(RATE_LIMIT_ENABLED=False, RATE_LIMIT_LOGIN_IP="1/minute")
    async with client_for(app) as client:
        assert [(await guess(client)).status_code for _ in range(4)] == [400] * 4


def test_account_keys_are_keyed_fixed_size_digests(make_settings):
    one = RateLimits(make_settings())
    other = RateLimits(make_settings(SECRET_KEY="another-secret-" + "k" * 40))
    key = one.account_key("anna@example.com")
    assert len(key) == 32 and int(key, 16) >= 0
    assert key == one.account_key("anna@example.com")
    assert key != one.account_key("anne@example.com")
    assert key != other.account_key("anna@example.com")  # keyed by SECRET_KEY
    assert key != hashlib.blake2b(b"anna@example.com", digest_size=16).hexdigest()


async def test_each_limit_counts_in_a_namespace_of_its_own(make_settings, clock):
    """Two limits with the same rate, keyed by the same IP, keep separate counters: logins
    do not use up the registration budget. Kills app.auth.ratelimit.x__namespaced__mutmut_5
    and _8 (every limit in the default namespace)."""
    limits = RateLimits(
        make_settings(RATE_LIMIT_LOGIN_IP="2/minute", RATE_LIMIT_REGISTER_IP="2/minute")
    )
    await limits.hit(limits.login_ip, "198.51.100.7")
    await limits.hit(limits.login_ip, "198.51.100.7")
    with pytest.raises(RateLimited):
        await limits.hit(limits.login_ip, "198.51.100.7")
    await limits.hit(limits.register_ip, "198.51.100.7")  # its own budget, untouched


async def test_a_limit_spans_its_whole_window(make_settings, clock):
    """ "2/5 minutes" still refuses after two minutes. Kills app.auth.ratelimit.
    x__namespaced__mutmut_4 and _7 (the window's multiple dropped: 2 per minute)."""
    limits = RateLimits(make_settings(RATE_LIMIT_LOGIN_IP="2/5 minutes"))
    await limits.hit(limits.login_ip, "198.51.100.8")
    await limits.hit(limits.login_ip, "198.51.100.8")
    clock.shift(timedelta(minutes=2))
    with pytest.raises(RateLimited):
        await limits.hit(limits.login_ip, "198.51.100.8")
    clock.shift(timedelta(minutes=3, seconds=1))
    await limits.hit(limits.login_ip, "198.51.100.8")  # the window has passed
