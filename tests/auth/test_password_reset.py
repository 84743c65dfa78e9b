"""POST /auth/forgot-password and /auth/reset-password: the link by email, its life, its
single use, the limits, and what a reset does to sessions and notices."""

import asyncio
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import time_machine
from sqlalchemy import update

from app.auth.cookie import COOKIE_NAME
from app.auth.reset_router import RESET_TOKEN_MAX_LENGTH
from app.users.models import User
from tests.confirmation.helpers import queued
from tests.conftest import client_for
from tests.helpers import PASSWORD, login, register, signed_in

START = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
NEW_PASSWORD = "a brand new passphrase"


async def forgot(client, email):
    return await client.post("/auth/forgot-password", json={"email": email})


async def reset(client, token, password=NEW_PASSWORD):
    return await client.post("/auth/reset-password", json={"token": token, "password": password})


async def log_in(client, email, password):
    return await client.post("/auth/login", data={"username": email, "password": password})


async def reset_link(app, email) -> str:
    """The newest reset link queued for `email`."""
    rows = await queued(app, to=email, template="password_reset")
    assert rows, f"no reset email was queued for {email}"
    return str(rows[-1].data["reset_url"])


async def reset_token(app, email) -> str:
    [token] = parse_qs(urlsplit(await reset_link(app, email)).query)["token"]
    return token


async def deactivate(app, email):
    async with app.state.sessionmaker() as db, db.begin():
        await db.execute(update(User).where(User.email == email).values(is_active=False))


def assert_bad_token(response):
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "RESET_PASSWORD_BAD_TOKEN"


async def test_the_whole_flow(make_app):
    app = make_app(PUBLIC_BASE_URL="https://shop.example.com/")
    async with client_for(app) as browser, client_for(app, ip="198.51.100.7") as phone:
        user = await signed_in(browser)
        await login(phone, user["email"])
        email = user["email"]

        response = await forgot(browser, email)
        assert (response.status_code, response.content) == (202, b"")
        [message] = await queued(app, to=email, template="password_reset")
        assert message.data["name"] == user["name"]
        assert message.data["ttl_minutes"] == 30
        link = message.data["reset_url"]
        assert link.startswith("https://shop.example.com/reset-password?token=")
        token = await reset_token(app, email)
        assert len(token) > 100

        response = await reset(browser, token)
        assert response.status_code == 200, response.text
        assert (response.json()["id"], response.json()["email"]) == (user["id"], email)

        # Every session of the account has ended, on every device.
        assert (await browser.get("/users/me")).status_code == 401
        assert (await phone.get("/users/me")).status_code == 401
        # The account's address hears of it.
        [notice] = await queued(app, to=email, template="password_changed")
        assert notice.data["name"] == user["name"] and notice.data["changed_at"]
        # The old password is refused, the new one works.
        wrong = await log_in(browser, email, PASSWORD)
        assert (wrong.status_code, wrong.json()["code"]) == (400, "LOGIN_BAD_CREDENTIALS")
        await login(browser, email, NEW_PASSWORD)
        assert (await browser.get("/users/me")).json()["email"] == email

        # The link works once.
        assert_bad_token(await reset(phone, token, "yet another passphrase"))
        await login(phone, email, NEW_PASSWORD)
        assert len(await queued(app, to=email, template="password_changed")) == 1


async def test_using_one_link_kills_the_others(app, client):
    user = await register(client)
    assert (await forgot(client, user["email"])).status_code == 202
    first = await reset_token(app, user["email"])
    assert (await forgot(client, user["email"])).status_code == 202
    second = await reset_token(app, user["email"])
    assert first != second

    assert (await reset(client, second)).status_code == 200
    assert_bad_token(await reset(client, first, "yet another passphrase"))
    await login(client, user["email"], NEW_PASSWORD)


@pytest.mark.parametrize(("ttl", "minutes"), [(None, 30), (600, 10)])
async def test_a_link_lives_its_ttl(make_app, ttl, minutes):
    app = make_app(**({"RESET_PASSWORD_TOKEN_TTL_SECONDS": ttl} if ttl else {}))
    async with client_for(app) as client:
        with time_machine.travel(START, tick=False) as clock:
            early = await register(client)
            late = await register(client)
            for user in (early, late):
                assert (await forgot(client, user["email"])).status_code == 202
            [message] = await queued(app, to=late["email"], template="password_reset")
            assert message.data["ttl_minutes"] == minutes
            early_token = await reset_token(app, early["email"])
            late_token = await reset_token(app, late["email"])

            clock.move_to(START + timedelta(minutes=minutes - 1))
            assert (await reset(client, early_token)).status_code == 200

            clock.move_to(START + timedelta(minutes=minutes, seconds=1))
            assert_bad_token(await reset(client, late_token))
            await login(client, late["email"], PASSWORD)  # unchanged


async def test_a_link_is_useless_once_the_password_changed_otherwise(app, client):
    user = await signed_in(client)
    assert (await forgot(client, user["email"])).status_code == 202
    token = await reset_token(app, user["email"])
    changed = await client.patch(
        "/users/me", json={"password": "changed in my account", "current_password": PASSWORD}
    )
    assert changed.status_code == 200, changed.text

    assert_bad_token(await reset(client, token))
    await login(client, user["email"], "changed in my account")


async def test_unknown_and_inactive_emails_get_202_and_nothing_is_sent(app, client, monkeypatch):
    active = await register(client)
    inactive = await register(client)
    await deactivate(app, inactive["email"])
    hashes = []
    hash_ = app.state.auth.hasher.hash

    async def counting_hash(value):
        hashes.append(value)
        return await hash_(value)

    monkeypatch.setattr(app.state.auth.hasher, "hash", counting_hash)
    for email in ("nobody@example.com", inactive["email"]):
        response = await forgot(client, email)
        assert (response.status_code, response.content) == (202, b"")
    assert await queued(app, template="password_reset") == []
    # The same argon2 work as for a real account (one hash), so timing tells nothing.
    assert len(hashes) == 2
    assert (await forgot(client, active["email"])).status_code == 202
    assert len(hashes) == 3
    assert len(await queued(app, template="password_reset")) == 1


async def test_a_link_to_an_account_deactivated_since_is_refused(app, client):
    user = await register(client)
    assert (await forgot(client, user["email"])).status_code == 202
    token = await reset_token(app, user["email"])
    await deactivate(app, user["email"])
    assert_bad_token(await reset(client, token))
    assert await queued(app, template="password_changed") == []


async def test_requests_per_account_are_limited_whoever_asks(make_app):
    app = make_app(RATE_LIMIT_FORGOT_PASSWORD_ACCOUNT="2/hour")
    clients = [client_for(app, ip=f"198.18.1.{n}") for n in range(1, 7)]
    try:
        user = await register(clients[0])
        spellings = [user["email"], user["email"].upper(), user["email"]]
        responses = [await forgot(c, e) for c, e in zip(clients, spellings, strict=False)]
        assert [r.status_code for r in responses] == [202, 202, 429]
        assert responses[2].json()["code"] == "RATE_LIMITED"
        assert 1 <= int(responses[2].headers["Retry-After"]) <= 3600
        assert len(await queued(app, template="password_reset")) == 2
        # An address with no account is limited alike: the 429 tells nothing either.
        statuses = [(await forgot(c, "nobody@example.com")).status_code for c in clients[3:]]
        assert statuses == [202, 202, 429]
    finally:
        for c in clients:
            await c.aclose()


async def test_the_default_account_limit_is_three_an_hour(app, client):
    with time_machine.travel(START, tick=False) as clock:
        user = await register(client)
        statuses = [(await forgot(client, user["email"])).status_code for _ in range(4)]
        assert statuses == [202, 202, 202, 429]
        clock.shift(timedelta(hours=1, seconds=1))
        assert (await forgot(client, user["email"])).status_code == 202
    assert len(await queued(app, template="password_reset")) == 4


async def test_requests_per_ip_are_limited(make_app):
    app = make_app(RATE_LIMIT_FORGOT_PASSWORD_IP="2/hour")
    async with client_for(app) as client, client_for(app, ip="198.51.100.9") as other:
        statuses = [(await forgot(client, f"someone{n}@example.com")).status_code for n in range(3)]
        assert statuses == [202, 202, 429]
        refused = await forgot(client, "someone9@example.com")
        assert refused.json()["code"] == "RATE_LIMITED" and refused.headers["Retry-After"]
        assert (await forgot(other, "someone9@example.com")).status_code == 202


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short", "at least 8"), ("x" * 129, "at most 128"), ("{email}", "not be the email")],
)
async def test_the_registration_password_rules_apply(app, client, password, reason):
    user = await register(client)
    assert (await forgot(client, user["email"])).status_code == 202
    token = await reset_token(app, user["email"])

    response = await reset(client, token, password.format(email=user["email"]))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "RESET_PASSWORD_INVALID_PASSWORD"
    assert body["detail"]["code"] == "RESET_PASSWORD_INVALID_PASSWORD"
    assert reason in body["detail"]["reason"]
    await login(client, user["email"], PASSWORD)  # unchanged
    assert await queued(app, template="password_changed") == []
    # The refused attempt did not use the link up.
    assert (await reset(client, token)).status_code == 200


async def test_inputs_are_bounded(app, client):
    user = await register(client)
    assert (await forgot(client, user["email"])).status_code == 202
    token = await reset_token(app, user["email"])

    too_long = await reset(client, "x" * (RESET_TOKEN_MAX_LENGTH + 1))
    assert (too_long.status_code, too_long.json()["code"]) == (422, "VALIDATION_ERROR")
    assert too_long.json()["detail"][0]["loc"] == ["body", "token"]
    assert_bad_token(await reset(client, "x" * RESET_TOKEN_MAX_LENGTH))
    assert (await reset(client, "")).status_code == 422
    assert (await reset(client, token, "p" * 4097)).status_code == 422
    assert (await forgot(client, "not an email")).status_code == 422
    assert (await forgot(client, "a" * 310 + "@example.com")).status_code == 422
    assert (await reset(client, token)).status_code == 200  # the link survived all that


async def test_only_our_reset_tokens_are_accepted(app, client):
    user = await register(client)
    response = await log_in(client, user["email"], PASSWORD)
    session_token = response.cookies[COOKIE_NAME]
    assert_bad_token(await reset(client, session_token))  # a session JWT: wrong audience

    assert (await forgot(client, user["email"])).status_code == 202
    claims = jwt.decode(await reset_token(app, user["email"]), options={"verify_signature": False})
    forged = jwt.encode(claims, "another key that is not ours at all", algorithm="HS256")
    assert_bad_token(await reset(client, forged))
    await login(client, user["email"], PASSWORD)


async def test_one_link_used_twice_at_once_resets_once(app, client):
    user = await register(client)
    assert (await forgot(client, user["email"])).status_code == 202
    token = await reset_token(app, user["email"])

    first, second = await asyncio.gather(
        reset(client, token, "the first new passphrase"),
        reset(client, token, "the second new passphrase"),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 400]
    winner = "the first new passphrase" if first.status_code == 200 else "the second new passphrase"
    await login(client, user["email"], winner)
    assert len(await queued(app, template="password_changed")) == 1


async def test_a_reset_lets_a_locked_out_owner_in_at_once(app, client):
    user = await register(client)
    for _ in range(5):
        assert (await log_in(client, user["email"], "a wrong guess")).status_code == 400
    assert (await log_in(client, user["email"], PASSWORD)).status_code == 429

    assert (await forgot(client, user["email"])).status_code == 202
    assert (await reset(client, await reset_token(app, user["email"]))).status_code == 200
    await login(client, user["email"], NEW_PASSWORD)
