"""The outbox dispatcher against a real SMTP server (aiosmtpd), with controlled time."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import time_machine
from sqlalchemy import select, update

from app.core.db import create_engine, create_sessionmaker
from app.services.email.dispatcher import Dispatcher, outbox_counts, retry_delay
from app.services.email.outbox import OutboxMessage, OutboxState
from tests.confirmation.helpers import queued
from tests.conftest import client_for
from tests.helpers import register

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def rows(app) -> list[OutboxMessage]:
    return await queued(app)


def notice(app, db, to: str) -> OutboxMessage:
    """Queue a small email (the password-change notice) in `db`'s transaction."""
    return app.state.outbox.add(
        db, to=to, template="password_changed", data={"name": "Анна", "changed_at": "x"}
    )


def parts(message):
    alternative = next(p for p in message.walk() if p.get_content_type() == "multipart/alternative")
    return [p.get_content_type() for p in alternative.iter_parts()], alternative


async def test_registration_email_arrives_with_the_code_in_both_parts(
    make_app, make_settings, smtp_server
):
    app = make_app(make_settings(**smtp_server.settings_values()))
    async with client_for(app) as client:
        user = await register(client)
    [row] = await rows(app)
    code = row.data["code"]

    result = await app.state.dispatcher.run_once()
    assert (result.sent, result.deferred, result.failed) == (1, 0, 0)
    [message] = smtp_server.messages
    assert smtp_server.envelopes[0].rcpt_tos == [user["email"]]
    assert message["Message-ID"] == row.message_id
    kinds, alternative = parts(message)
    assert kinds == ["text/plain", "text/html"]
    text, html = (p.get_content() for p in alternative.iter_parts())
    assert code in text and code in html
    assert 'style="' in html

    [sent] = await rows(app)
    assert sent.state == OutboxState.SENT and sent.attempts == 1
    assert sent.data == {}  # the code does not outlive its delivery
    assert (await app.state.dispatcher.run_once()).claimed == 0


async def test_smtp_down_then_up_the_email_arrives_once(make_app, make_settings, smtp_server):
    app = make_app(make_settings(**smtp_server.settings_values()))
    with time_machine.travel(START, tick=False) as clock:
        smtp_server.stop()
        async with client_for(app) as client:
            await register(client)  # 201 with the server down
        result = await app.state.dispatcher.run_once()
        assert (result.sent, result.deferred) == (0, 1)
        [row] = await rows(app)
        assert row.state == OutboxState.PENDING and row.attempts == 1
        assert row.next_attempt_at == START + timedelta(seconds=2)
        assert "unreachable" in row.last_error

        smtp_server.start()
        clock.move_to(START + timedelta(seconds=1))
        assert (await app.state.dispatcher.run_once()).claimed == 0  # not due yet
        clock.move_to(START + timedelta(seconds=2))
        assert (await app.state.dispatcher.run_once()).sent == 1
        assert (await app.state.dispatcher.run_once()).claimed == 0
    assert len(smtp_server.messages) == 1


def test_backoff_starts_at_seconds_and_is_capped():
    assert [retry_delay(n, 300) for n in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]


async def test_a_short_outage_is_over_within_30_seconds_of_the_return(
    make_app, make_settings, smtp_server
):
    """Down for 20 s: tries at 0, 2, 6, 14 s fail; the next at 30 s succeeds."""
    app = make_app(make_settings(**smtp_server.settings_values()))
    async with app.state.sessionmaker.begin() as db:
        with time_machine.travel(START, tick=False):
            notice(app, db, "a@example.com")
    smtp_server.stop()
    with time_machine.travel(START, tick=False) as clock:
        moment = START
        while True:
            if moment >= START + timedelta(seconds=20) and not smtp_server.running:
                smtp_server.start()
            result = await app.state.dispatcher.run_once()
            if result.sent:
                break
            [row] = await rows(app)
            moment = row.next_attempt_at
            clock.move_to(moment)
    assert moment - (START + timedelta(seconds=20)) <= timedelta(seconds=30)
    assert len(smtp_server.messages) == 1


async def test_gives_up_after_24_hours_with_the_last_error(make_app, make_settings, smtp_server):
    app = make_app(make_settings(**smtp_server.settings_values()))
    smtp_server.fail_next(1000, "451 4.3.0 Try again later")
    with time_machine.travel(START, tick=False) as clock:
        async with app.state.sessionmaker.begin() as db:
            notice(app, db, "a@example.com")
        while True:
            await app.state.dispatcher.run_once()
            [row] = await rows(app)
            if row.state != OutboxState.PENDING:
                break
            assert row.next_attempt_at - datetime.now(UTC) <= timedelta(seconds=300)
            clock.move_to(row.next_attempt_at)
    assert row.state == OutboxState.FAILED
    assert row.last_error.startswith("gave up after") and "451" in row.last_error
    assert datetime.now(UTC) >= START  # time restored
    assert row.attempts > 250  # about every 5 minutes for a day


async def test_a_5xx_reply_fails_the_row_at_once(make_app, make_settings, smtp_server):
    app = make_app(make_settings(**smtp_server.settings_values()))
    smtp_server.fail_next(2, "550 5.1.1 No such user", command="RCPT")
    async with app.state.sessionmaker.begin() as db:
        notice(app, db, "gone@example.com")
        notice(app, db, "left@example.com")
        notice(app, db, "here@example.com")
    result = await app.state.dispatcher.run_once()
    assert (result.sent, result.failed) == (1, 2)  # each failure counted
    *failed, sent = await rows(app)
    for row in failed:
        assert row.state == OutboxState.FAILED and "550" in row.last_error
        assert row.data == {}
    assert sent.state == OutboxState.SENT
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [["here@example.com"]]


async def test_a_dead_dispatchers_rows_go_out_after_the_lease(make_app, make_settings, smtp_server):
    settings = make_settings(**smtp_server.settings_values(), OUTBOX_LEASE_SECONDS=120)
    app = make_app(settings)
    with time_machine.travel(START, tick=False) as clock:
        async with app.state.sessionmaker.begin() as db:
            for n in range(3):
                notice(app, db, f"u{n}@example.com")

        _, claimed = await app.state.dispatcher._claim(uuid.uuid4())  # claims, then "dies"
        assert len(claimed) == 3
        clock.move_to(START + timedelta(seconds=119))
        assert (await app.state.dispatcher.run_once()).claimed == 0
        clock.move_to(START + timedelta(seconds=120))
        assert (await app.state.dispatcher.run_once()).sent == 3
    assert sorted(e.rcpt_tos[0] for e in smtp_server.envelopes) == [
        "u0@example.com",
        "u1@example.com",
        "u2@example.com",
    ]


async def test_two_dispatchers_send_every_message_exactly_once(
    make_app, make_settings, smtp_server, database_url
):
    settings = make_settings(**smtp_server.settings_values(), OUTBOX_BATCH_SIZE=10)
    app = make_app(settings)
    async with app.state.sessionmaker.begin() as db:
        for n in range(120):
            notice(app, db, f"u{n}@example.com")
    # A second dispatcher with its own engine: another app instance on the same database.
    engine = create_engine(database_url)
    try:
        other = Dispatcher(create_sessionmaker(engine), app.state.email, settings)

        async def drain(dispatcher: Dispatcher) -> int:
            sent = 0
            while (result := await dispatcher.run_once()).claimed:
                sent += result.sent
            return sent

        counts = await asyncio.gather(drain(app.state.dispatcher), drain(other))
    finally:
        await engine.dispose()
    assert sum(counts) == 120
    ids = [m["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == len(set(ids)) == 120
    async with app.state.sessionmaker() as db:
        states = set(await db.scalars(select(OutboxMessage.state)))
    assert states == {OutboxState.SENT}


async def test_a_rolled_back_transaction_queues_nothing(app):
    async with app.state.sessionmaker() as db:
        notice(app, db, "a@example.com")
        await db.flush()
        assert len((await db.scalars(select(OutboxMessage))).all()) == 1
        await db.rollback()
    assert await rows(app) == []


async def test_a_4xx_defers_that_message_alone_an_unreachable_server_the_batch(
    make_app, make_settings, smtp_server
):
    app = make_app(make_settings(**smtp_server.settings_values()))
    async with app.state.sessionmaker.begin() as db:
        for n in range(3):
            notice(app, db, f"u{n}@example.com")
    smtp_server.fail_next(1, "452 4.2.2 Mailbox full")
    result = await app.state.dispatcher.run_once()
    assert (result.sent, result.deferred) == (2, 1)
    states = [(r.to_address, r.state) for r in await rows(app)]
    assert states == [
        ("u0@example.com", OutboxState.PENDING),
        ("u1@example.com", OutboxState.SENT),
        ("u2@example.com", OutboxState.SENT),
    ]

    async with app.state.sessionmaker.begin() as db:
        for n in range(3, 6):
            notice(app, db, f"u{n}@example.com")
    smtp_server.stop()
    result = await app.state.dispatcher.run_once()
    assert (result.claimed, result.deferred, result.sent) == (3, 3, 0)  # u0 is not due yet


async def test_a_refused_login_keeps_the_whole_queue(
    make_app, make_settings, smtp_server_with_auth
):
    """A revoked SMTP password is a setting to fix, not a reason to drop every email."""
    server = smtp_server_with_auth
    app = make_app(make_settings(**server.settings_values(SMTP_PASSWORD="revoked-password")))
    async with app.state.sessionmaker.begin() as db:
        for n in range(3):
            notice(app, db, f"u{n}@example.com")
    result = await app.state.dispatcher.run_once()
    assert (result.sent, result.deferred, result.failed) == (0, 3, 0)
    rows = await queued(app)
    assert {r.state for r in rows} == {OutboxState.PENDING}
    assert all(r.data["name"] == "Анна" and "535" in r.last_error for r in rows)
    assert server.messages == []


async def test_a_dispatcher_that_lost_its_lease_stops_and_records_nothing(
    make_app, make_settings, smtp_server
):
    settings = make_settings(**smtp_server.settings_values(), OUTBOX_LEASE_SECONDS=60)
    app = make_app(settings)
    smtp_server.data_delay = 0.3
    other = uuid.uuid4()

    async def take_over_after_the_first_message() -> None:
        await smtp_server.wait_for_messages(1)
        async with app.state.sessionmaker.begin() as db:  # another dispatcher's claim
            await db.execute(update(OutboxMessage).values(claim_token=other))

    with time_machine.travel(START, tick=False) as clock:
        async with app.state.sessionmaker.begin() as db:
            for n in range(4):
                notice(app, db, f"u{n}@example.com")
        racer = asyncio.create_task(take_over_after_the_first_message())
        running = asyncio.create_task(app.state.dispatcher.run_once())
        await racer
        clock.move_to(START + timedelta(seconds=30))  # under 8 timeouts of lease left
        result = await running
    assert result.sent <= 2 and len(smtp_server.messages) <= 2
    rows = await queued(app)
    assert all(r.claim_token == other and r.state == OutboxState.PENDING for r in rows)


async def test_the_loop_wakes_when_a_retry_is_due_not_at_the_poll(
    make_app, make_settings, smtp_server
):
    app = make_app(make_settings(**smtp_server.settings_values(), OUTBOX_POLL_SECONDS=60))
    async with app.state.sessionmaker.begin() as db:
        row = notice(app, db, "later@example.com")
        row.next_attempt_at = datetime.now(UTC) + timedelta(seconds=0.5)
    stop = asyncio.Event()
    loop = asyncio.create_task(app.state.dispatcher.run_forever(stop))
    try:
        await smtp_server.wait_for_messages(1, within=10)  # the poll alone: 60 s
    finally:
        stop.set()
        await loop
    assert smtp_server.envelopes[0].rcpt_tos == ["later@example.com"]


async def test_outbox_counts_by_state(make_app, make_settings, smtp_server):
    app = make_app(make_settings(**smtp_server.settings_values()))
    async with app.state.sessionmaker.begin() as db:
        for to in ("gone@example.com", "a@example.com", "b@example.com"):
            notice(app, db, to)
    smtp_server.fail_next(1, "550 5.1.1 No such user", command="RCPT")
    async with app.state.sessionmaker() as db:
        assert await outbox_counts(db) == {"pending": 3, "sent": 0, "failed": 0, "withdrawn": 0}
    await app.state.dispatcher.run_once()
    async with app.state.sessionmaker() as db:
        assert await outbox_counts(db) == {"pending": 0, "sent": 2, "failed": 1, "withdrawn": 0}
