"""Edges of the confirmation code policy: exact expiry instants, codes that change state
between the check and the update, accounts without a code, and the sweep."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import Update, delete, true, update

from app.confirmation import service
from app.confirmation.models import AccountConfirmation
from app.users.models import User
from tests.confirmation.helpers import confirmation_row, latest_code, other_code, queued
from tests.helpers import login, register, signed_in

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=600)


def test_codes_use_the_whole_six_digit_range():
    codes = [service.new_code() for _ in range(40)]
    assert all(len(code) == 6 and code.isdigit() for code in codes)
    assert len(set(codes)) > 35
    assert max(int(code) for code in codes) >= 1000


async def test_the_status_shows_the_pending_code_and_its_expiry(app, client):
    with time_machine.travel(START, tick=False):
        await signed_in(client)
        state = (await client.get("/users/me/confirmation")).json()
    assert state["confirmation_status"] is None
    assert datetime.fromisoformat(state["expires_at"]) == START + TTL


async def test_at_the_exact_expiry_instant_the_code_is_dead(app, client):
    with time_machine.travel(START, tick=False) as clock:
        user = await signed_in(client)
        code = await latest_code(app, user["email"])
        clock.move_to(START + TTL)
        assert (await client.get("/users/me/confirmation")).json()["confirmation_status"] is False
        response = await client.post("/auth/confirm", json={"email": user["email"], "code": code})
        assert (response.status_code, response.json()["code"]) == (400, "CONFIRMATION_CODE_EXPIRED")


async def test_a_confirmed_account_stays_confirmed_after_the_code_would_have_expired(app, client):
    with time_machine.travel(START, tick=False) as clock:
        user = await signed_in(client)
        code = await latest_code(app, user["email"])
        ok = await client.post("/auth/confirm", json={"email": user["email"], "code": code})
        assert ok.status_code == 200, ok.text
        clock.move_to(START + TTL + timedelta(hours=1))
        state = (await client.get("/users/me/confirmation")).json()
        assert state["confirmation_status"] is True


async def test_the_code_email_is_recorded_against_the_account(app, client):
    user = await register(client)
    [message] = await queued(app, to=user["email"], template="confirmation_code")
    assert str(message.user_id) == user["id"]


async def test_a_wrong_code_counts_only_against_its_own_account(app, client):
    first = await register(client)
    second = await register(client)
    code = await latest_code(app, first["email"])
    for _ in range(2):
        wrong = await client.post(
            "/auth/confirm", json={"email": first["email"], "code": other_code(code)}
        )
        assert wrong.json()["code"] == "CONFIRMATION_CODE_INVALID"
    assert (await confirmation_row(app, first["email"])).attempts == 2
    assert (await confirmation_row(app, second["email"])).attempts == 0


async def test_resend_is_allowed_at_exactly_the_end_of_the_cooldown(app, client):
    with time_machine.travel(START, tick=False) as clock:
        user = await register(client)
        clock.move_to(START + timedelta(seconds=60))
        response = await client.post("/auth/confirm/resend", json={"email": user["email"]})
        assert response.status_code == 202
    assert len(await queued(app, to=user["email"], template="confirmation_code")) == 2


async def test_an_account_without_a_code_gets_invalid_and_reads_its_verified_flag(app, client):
    """Staff created from the CLI have no confirmation row."""
    user = await signed_in(client)
    code = await latest_code(app, user["email"])
    async with app.state.sessionmaker.begin() as db:
        await db.execute(
            delete(AccountConfirmation).where(AccountConfirmation.user_id == uuid.UUID(user["id"]))
        )
    response = await client.post("/auth/confirm", json={"email": user["email"], "code": code})
    assert (response.status_code, response.json()["code"]) == (400, "CONFIRMATION_CODE_INVALID")
    state = (await client.get("/users/me/confirmation")).json()
    assert state == {"confirmation_status": False, "expires_at": None}
    async with app.state.sessionmaker.begin() as db:
        await db.execute(update(User).where(User.email == user["email"]).values(is_verified=True))
    state = (await client.get("/users/me/confirmation")).json()
    assert state == {"confirmation_status": True, "expires_at": None}


async def test_parallel_right_codes_confirm_once_and_the_others_read_used(app, client):
    user = await register(client)
    code = await latest_code(app, user["email"])
    body = {"email": user["email"], "code": code}
    responses = await asyncio.gather(*(client.post("/auth/confirm", json=body) for _ in range(6)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 5, [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 400} == {
        "CONFIRMATION_CODE_USED"
    }


async def test_a_code_used_in_parallel_after_the_check_answers_used(app, client):
    """confirm() reads the code and finds it right; a parallel request confirms with the
    same code before this one's conditional UPDATE, which then changes nothing: the
    answer is read from the code's row again (USED), not assumed."""
    user = await register(client)
    code = await latest_code(app, user["email"])
    async with app.state.sessionmaker() as db:
        account = await db.get(User, uuid.UUID(user["id"]))
        execute = db.execute
        parallel: list[Update] = []

        async def parallel_request_first(statement, *args, **kwargs):
            if isinstance(statement, Update) and not parallel:
                parallel.append(
                    update(AccountConfirmation)
                    .where(AccountConfirmation.user_id == account.id)
                    .values(confirmation_status=true())
                )
                await execute(parallel[0])
            return await execute(statement, *args, **kwargs)

        db.execute = parallel_request_first  # type: ignore[method-assign]
        outcome = await app.state.confirmation.confirm(db, account, code)
        await db.commit()
    assert parallel, "confirm() sent no UPDATE"
    assert outcome == service.Outcome.USED
    again = await client.post("/auth/confirm", json={"email": user["email"], "code": code})
    assert again.json()["code"] == "CONFIRMATION_CODE_USED"


async def _check_after(app, email: str, change, when: datetime) -> tuple[service.Outcome, bool]:
    """Load the code as the confirm route does, let `change` happen to it (a parallel
    request), then run the conditional update the route runs for the right code."""
    policy = app.state.confirmation
    code = await latest_code(app, email)
    stored = await confirmation_row(app, email)
    async with app.state.sessionmaker() as db:
        account = await db.get(User, stored.user_id)
        row = await db.get(AccountConfirmation, stored.user_id)
        await change(db, policy, account)
        outcome = await policy._mark_confirmed(
            db, account, row, policy.digest(account.id, code), when
        )
        await db.commit()
    async with app.state.sessionmaker() as db:
        verified = (await db.get(User, stored.user_id)).is_verified
    return outcome, verified


async def test_a_code_burned_by_parallel_wrong_entries_answers_burned(app, client):
    user = await register(client)
    now = datetime.now(UTC)

    async def burn(db, policy, account):
        for _ in range(policy.max_attempts):
            await policy._count_wrong(db, account.id, now)

    assert await _check_after(app, user["email"], burn, now) == (service.Outcome.BURNED, False)


async def test_a_code_that_expired_meanwhile_answers_expired(app, client):
    user = await register(client)

    async def nothing(db, policy, account):
        return None

    late = datetime.now(UTC) + TTL + timedelta(seconds=1)
    assert await _check_after(app, user["email"], nothing, late) == (
        service.Outcome.EXPIRED,
        False,
    )


async def test_a_pending_code_at_the_attempt_cap_cannot_confirm(app, client):
    """E.g. the cap was lowered since, or another worker counted the last attempt."""
    user = await register(client)

    async def at_cap(db, policy, account):
        await db.execute(
            update(AccountConfirmation)
            .where(AccountConfirmation.user_id == account.id)
            .values(attempts=policy.max_attempts, confirmation_status=None)
            .execution_options(synchronize_session=False)
        )

    outcome = await _check_after(app, user["email"], at_cap, datetime.now(UTC))
    assert outcome == (service.Outcome.BURNED, False)


async def test_the_sweep_takes_codes_expiring_at_that_instant_and_leaves_live_ones(app, client):
    with time_machine.travel(START, tick=False) as clock:
        due = await register(client)
        clock.move_to(START + timedelta(seconds=5))
        live = await register(client)
        await login(client, live["email"])
    async with app.state.sessionmaker.begin() as db:
        assert await service.sweep(db, START + TTL) == 1
    assert (await confirmation_row(app, due["email"])).confirmation_status is False
    assert (await confirmation_row(app, live["email"])).confirmation_status is None
