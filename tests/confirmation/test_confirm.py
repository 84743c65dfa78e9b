"""POST /auth/confirm, /auth/confirm/resend, GET /users/me/confirmation."""

import asyncio
from datetime import UTC, datetime, timedelta

import time_machine

from app.confirmation import service
from app.users.models import User
from tests.confirmation.helpers import confirmation_row, latest_code, other_code, queued
from tests.helpers import PASSWORD, login, register, signed_in

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def test_registration_queues_a_code_stored_only_as_a_digest(app, client):
    with time_machine.travel(START, tick=False):
        user = await register(client)
    [message] = await queued(app, to=user["email"])
    assert message.template == "confirmation_code"
    code = message.data["code"]
    assert len(code) == 6 and code.isdigit()
    assert message.data["ttl_minutes"] == 10
    row = await confirmation_row(app, user["email"])
    assert row is not None
    assert row.confirmation_status is None
    assert row.expires_at == START + timedelta(seconds=600)
    assert code not in row.confirmation_code and len(row.confirmation_code) == 64
    assert row.confirmation_code == app.state.confirmation.digest(row.user_id, code)


async def test_the_right_code_confirms_once(app, client):
    user = await signed_in(client)
    code = await latest_code(app, user["email"])
    assert (await client.get("/users/me/confirmation")).json()["confirmation_status"] is None

    response = await client.post("/auth/confirm", json={"email": user["email"], "code": code})
    assert response.status_code == 200, response.text
    assert response.json()["confirmation_status"] is True
    assert (await client.get("/users/me")).json()["is_verified"] is True
    assert (await client.get("/users/me/confirmation")).json()["confirmation_status"] is True

    again = await client.post("/auth/confirm", json={"email": user["email"], "code": code})
    assert (again.status_code, again.json()["code"]) == (400, "CONFIRMATION_CODE_USED")
    wrong = await client.post(
        "/auth/confirm", json={"email": user["email"], "code": other_code(code)}
    )
    assert wrong.json()["code"] == "CONFIRMATION_CODE_INVALID"


async def test_code_lives_600_seconds(app, client):
    with time_machine.travel(START, tick=False) as clock:
        early = await register(client)
        late = await register(client)
        early_code = await latest_code(app, early["email"])
        late_code = await latest_code(app, late["email"])

        clock.move_to(START + timedelta(seconds=599))
        await login(client, late["email"])
        state = (await client.get("/users/me/confirmation")).json()
        assert state["confirmation_status"] is None
        ok = await client.post("/auth/confirm", json={"email": early["email"], "code": early_code})
        assert ok.status_code == 200, ok.text

        clock.move_to(START + timedelta(seconds=601))
        # Expiry applies on read, before any sweep wrote it.
        assert (await confirmation_row(app, late["email"])).confirmation_status is None
        assert (await client.get("/users/me/confirmation")).json()["confirmation_status"] is False
        expired = await client.post(
            "/auth/confirm", json={"email": late["email"], "code": late_code}
        )
        assert (expired.status_code, expired.json()["code"]) == (400, "CONFIRMATION_CODE_EXPIRED")
        assert (await client.get("/users/me")).json()["is_verified"] is False

        async with app.state.sessionmaker.begin() as db:
            assert await service.sweep(db) == 1  # the late one; the early one is confirmed
        assert (await confirmation_row(app, late["email"])).confirmation_status is False
        assert (await confirmation_row(app, early["email"])).confirmation_status is True


async def test_parallel_wrong_codes_count_at_most_five_then_the_code_is_dead(app, client):
    user = await register(client)
    code = await latest_code(app, user["email"])
    wrong = other_code(code)

    responses = await asyncio.gather(
        *(
            client.post("/auth/confirm", json={"email": user["email"], "code": wrong})
            for _ in range(20)
        )
    )
    assert {r.status_code for r in responses} == {400}
    assert {r.json()["code"] for r in responses} == {"CONFIRMATION_CODE_INVALID"}
    row = await confirmation_row(app, user["email"])
    assert (row.attempts, row.confirmation_status) == (5, False)

    right = await client.post("/auth/confirm", json={"email": user["email"], "code": code})
    assert (right.status_code, right.json()["code"]) == (400, "CONFIRMATION_CODE_BURNED")
    assert (await confirmation_row(app, user["email"])).attempts == 5


async def test_four_wrong_codes_leave_the_right_one_working(app, client):
    user = await register(client)
    code = await latest_code(app, user["email"])
    for _ in range(4):
        await client.post("/auth/confirm", json={"email": user["email"], "code": other_code(code)})
    response = await client.post("/auth/confirm", json={"email": user["email"], "code": code})
    assert response.status_code == 200, response.text


async def test_an_unknown_email_answers_like_a_wrong_code(app, client):
    user = await register(client)
    code = await latest_code(app, user["email"])
    unknown = await client.post("/auth/confirm", json={"email": "nobody@example.com", "code": code})
    wrong = await client.post(
        "/auth/confirm", json={"email": user["email"], "code": other_code(code)}
    )
    assert unknown.status_code == wrong.status_code == 400
    assert unknown.json() == wrong.json()


async def test_malformed_codes_are_422(client):
    for code in ("12345", "1234567", "12345a", "١٢٣٤٥٦"):
        response = await client.post("/auth/confirm", json={"email": "a@example.com", "code": code})
        assert response.status_code == 422, code


async def test_resend_replaces_the_code_at_most_once_a_minute(app, client):
    with time_machine.travel(START, tick=False) as clock:
        user = await register(client)
        first = await latest_code(app, user["email"])

        clock.move_to(START + timedelta(seconds=30))
        response = await client.post("/auth/confirm/resend", json={"email": user["email"]})
        assert response.status_code == 202
        assert len(await queued(app, to=user["email"])) == 1  # within the cooldown

        clock.move_to(START + timedelta(seconds=61))
        responses = await asyncio.gather(
            *(client.post("/auth/confirm/resend", json={"email": user["email"]}) for _ in range(5))
        )
        assert {r.status_code for r in responses} == {202}
        assert len(await queued(app, to=user["email"])) == 2  # parallel resends: one code
        second = await latest_code(app, user["email"])
        row = await confirmation_row(app, user["email"])
        assert row.expires_at == START + timedelta(seconds=61 + 600)

        old = await client.post("/auth/confirm", json={"email": user["email"], "code": first})
        if first != second:
            assert old.json()["code"] == "CONFIRMATION_CODE_INVALID"
        ok = await client.post("/auth/confirm", json={"email": user["email"], "code": second})
        assert ok.status_code == 200, ok.text


async def test_resend_sends_nothing_to_unknown_or_confirmed_accounts(app, client):
    user = await register(client)
    await client.post(
        "/auth/confirm",
        json={"email": user["email"], "code": await latest_code(app, user["email"])},
    )
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=5)):
        for email in (user["email"], "nobody@example.com"):
            response = await client.post("/auth/confirm/resend", json={"email": email})
            assert response.status_code == 202
    assert len(await queued(app)) == 1


async def test_email_change_unverifies_codes_the_new_address_and_notifies_the_old(app, client):
    user = await signed_in(client)
    await client.post(
        "/auth/confirm",
        json={"email": user["email"], "code": await latest_code(app, user["email"])},
    )
    response = await client.patch(
        "/users/me", json={"email": "moved@example.com", "current_password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_verified"] is False
    assert (await client.get("/users/me/confirmation")).json()["confirmation_status"] is None

    [notice] = await queued(app, to=user["email"], template="email_changed")
    assert notice.data["new_email_masked"] == "m***@example.com"
    code = await latest_code(app, "moved@example.com")
    ok = await client.post("/auth/confirm", json={"email": "moved@example.com", "code": code})
    assert ok.status_code == 200, ok.text
    assert (await client.get("/users/me")).json()["is_verified"] is True


async def test_password_change_notifies_the_account(app, client):
    user = await signed_in(client)
    response = await client.patch(
        "/users/me", json={"password": "another good password", "current_password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    [notice] = await queued(app, to=user["email"], template="password_changed")
    assert notice.data["name"] == user["name"]
    # A name change sends nothing.
    await client.patch("/users/me", json={"name": "Новое имя"})
    assert [m.template for m in await queued(app, to=user["email"])] == [
        "confirmation_code",
        "password_changed",
    ]


async def test_codes_entered_per_ip_are_limited(make_app):
    from tests.conftest import client_for

    app = make_app(RATE_LIMIT_CONFIRM_IP="3/minute")
    async with client_for(app) as client, client_for(app, ip="198.51.100.7") as other:
        user = await register(client)
        code = await latest_code(app, user["email"])
        body = {"email": user["email"], "code": other_code(code)}
        for _ in range(3):
            assert (await client.post("/auth/confirm", json=body)).status_code == 400
        limited = await client.post("/auth/confirm", json={**body, "code": code})
        assert (limited.status_code, limited.json()["code"]) == (429, "RATE_LIMITED")
        assert int(limited.headers["Retry-After"]) >= 1
        # Another address is not affected, and the right code still works there.
        ok = await other.post("/auth/confirm", json={**body, "code": code})
        assert ok.status_code == 200, ok.text


async def test_new_codes_per_account_are_limited_silently(make_app):
    from tests.conftest import client_for

    app = make_app(
        RATE_LIMIT_CONFIRM_RESEND_ACCOUNT="2/hour", CONFIRMATION_RESEND_COOLDOWN_SECONDS=0
    )
    async with client_for(app) as client:
        user = await register(client)
        for _ in range(4):
            response = await client.post("/auth/confirm/resend", json={"email": user["email"]})
            assert response.status_code == 202
    # The registration's code, then two resends; the other two are over the budget.
    assert len(await queued(app, to=user["email"], template="confirmation_code")) == 3


async def test_clicks_within_the_cooldown_do_not_use_up_the_hourly_budget(make_app):
    from tests.conftest import client_for

    app = make_app(RATE_LIMIT_CONFIRM_RESEND_ACCOUNT="2/hour")
    with time_machine.travel(START, tick=False) as clock:
        async with client_for(app) as client:
            user = await register(client)
            resend = {"email": user["email"]}
            for second in (1, 10, 20, 30, 40):  # within the cooldown: nothing sent
                clock.move_to(START + timedelta(seconds=second))
                assert (await client.post("/auth/confirm/resend", json=resend)).status_code == 202
            for second in (61, 122, 183):  # two new codes fit the budget, the third not
                clock.move_to(START + timedelta(seconds=second))
                assert (await client.post("/auth/confirm/resend", json=resend)).status_code == 202
    assert len(await queued(app, to=user["email"], template="confirmation_code")) == 3


async def test_a_code_replaced_while_it_is_checked_answers_invalid(app, client):
    user = await register(client)
    old = await latest_code(app, user["email"])
    policy = app.state.confirmation
    stored = await confirmation_row(app, user["email"])
    async with app.state.sessionmaker() as db:
        account = await db.get(User, stored.user_id)
        row = await db.merge(stored)
        await policy.issue(db, account)  # a resend lands between the check and the update
        outcome = await policy._mark_confirmed(
            db, account, row, policy.digest(account.id, old), datetime.now(UTC)
        )
    assert outcome == service.Outcome.INVALID


async def test_a_pending_code_with_its_attempts_used_up_reads_false(app, client):
    from sqlalchemy import update

    from app.confirmation.models import AccountConfirmation

    user = await signed_in(client)
    row = await confirmation_row(app, user["email"])
    async with app.state.sessionmaker.begin() as db:  # e.g. the cap was lowered since
        await db.execute(
            update(AccountConfirmation)
            .where(AccountConfirmation.user_id == row.user_id)
            .values(attempts=5, confirmation_status=None)
        )
    assert (await client.get("/users/me/confirmation")).json()["confirmation_status"] is False
