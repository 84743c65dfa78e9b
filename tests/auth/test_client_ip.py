"""Who the client is: X-Forwarded-For only from TRUSTED_PROXIES, and only addresses stored."""

import pytest
from sqlalchemy import select

from app.auth.models import AuthSession
from tests.conftest import client_for
from tests.helpers import register

PROXY = "192.0.2.200"


async def attempt(client, headers=None):
    return await client.post(
        "/auth/login",
        data={"username": "nobody@example.com", "password": "wrong password"},
        headers=headers or {},
    )


@pytest.fixture
def proxied_app(make_app):
    return make_app(TRUSTED_PROXIES=f"{PROXY},10.0.0.0/8", RATE_LIMIT_LOGIN_IP="2/minute")


@pytest.fixture
def direct_app(make_app):
    return make_app(RATE_LIMIT_LOGIN_IP="2/minute")


async def stored_ips(app) -> list[str | None]:
    async with app.state.sessionmaker() as db:
        return list(await db.scalars(select(AuthSession.ip).order_by(AuthSession.created_at)))


async def test_forwarded_for_is_ignored_by_default(direct_app):
    # The probe: each new header value got a fresh per-IP budget.
    async with client_for(direct_app, ip="203.0.113.7") as client:
        codes = [
            (await attempt(client, {"X-Forwarded-For": f"198.51.100.{n}"})).status_code
            for n in range(1, 4)
        ]
        assert codes == [400, 400, 429]
    async with client_for(direct_app, ip="203.0.113.8") as other:
        user = await register(other)
        response = await other.post(
            "/auth/login",
            data={"username": user["email"], "password": user["password"]},
            headers={"X-Forwarded-For": "198.51.100.99"},
        )
        assert response.status_code == 204
    assert await stored_ips(direct_app) == ["203.0.113.8"]


async def test_a_trusted_proxy_names_the_client(proxied_app):
    async with client_for(proxied_app, ip=PROXY) as proxy:
        # each client its own budget, behind the same proxy
        for client_address in ("198.51.100.1", "198.51.100.2"):
            headers = {"X-Forwarded-For": client_address}
            assert [(await attempt(proxy, headers)).status_code for _ in range(3)] == [
                400,
                400,
                429,
            ]
        # a client can't pick its budget by prepending: the rightmost untrusted hop counts
        forged = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1, 10.1.2.3"}
        assert (await attempt(proxy, forged)).status_code == 429
        user = await register(proxy)
        await proxy.post(
            "/auth/login",
            data={"username": user["email"], "password": user["password"]},
            headers={"X-Forwarded-For": "2001:db8::7, 10.0.0.1"},
        )
    assert await stored_ips(proxied_app) == ["2001:db8::7"]


async def test_an_untrusted_peer_cannot_forward(proxied_app):
    async with client_for(proxied_app, ip="203.0.113.9") as client:
        codes = [
            (await attempt(client, {"X-Forwarded-For": f"198.51.100.{n}"})).status_code
            for n in range(10, 13)
        ]
    assert codes == [400, 400, 429]


@pytest.mark.parametrize(
    "forwarded",
    ["a" * 46, "2001:db8:0:0:0:0:0:1%eth0123456789", "unknown", "1.2.3.4.5", "x" * 5000],
)
async def test_what_is_not_an_address_is_stored_as_unknown(proxied_app, forwarded):
    # The probe: 46 × "a" broke varchar(45) on PostgreSQL with a 500.
    async with client_for(proxied_app, ip=PROXY) as proxy:
        user = await register(proxy)
        response = await proxy.post(
            "/auth/login",
            data={"username": user["email"], "password": user["password"]},
            headers={"X-Forwarded-For": forwarded, "User-Agent": "Browser/1.0\x7f"},
        )
        assert response.status_code == 204, response.text
        sessions = (await proxy.get("/users/me/sessions")).json()["items"]
    expected = "2001:db8::1" if forwarded.startswith("2001:db8") else None
    assert [s["ip"] for s in sessions] == [expected]
    assert [s["user_agent"] for s in sessions] == ["Browser/1.0"]
