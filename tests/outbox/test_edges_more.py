"""More edges of the outbox dispatcher: rows another dispatcher takes mid-batch (the
renewal keeps only our rows; a result for a row no longer ours is not recorded), the
lease a renewal writes, when successes are recorded, giving up at exactly the give-up
time, the warning after a batch, the loop's behaviour (a full batch goes on at once, an
idle loop waits, a database error is logged and survived) and bulk rows withdrawn while
claimed, checked per group."""

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select, text, update

from app.newsletters import service as newsletters
from app.services.email.composer import ComposeFailed, ComposeJob, _ContentCache, compose_chunk
from app.services.email.dispatcher import SENT_RECORD_EVERY
from app.services.email.outbox import ADDRESS_MAX_LENGTH, OutboxMessage, OutboxState, Recipient
from app.services.email.service import EmailService
from tests.confirmation.helpers import queued
from tests.conftest import client_for
from tests.helpers import sent_statements
from tests.newsletters.helpers import add_users, admin_client, create_draft, deliver_all

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NOTICE = {"name": "Анна", "changed_at": "x"}


async def _queue(app, *addresses: str, template: str = "password_changed") -> None:
    async with app.state.sessionmaker.begin() as db:
        for to in addresses:
            app.state.outbox.add(db, to=to, template=template, data=dict(NOTICE))


async def _set(app, to: str, **values) -> None:
    async with app.state.sessionmaker.begin() as db:
        await db.execute(
            update(OutboxMessage).where(OutboxMessage.to_address == to).values(**values)
        )


async def _until(done, what: str, within: float = 5) -> None:
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.005)


async def _connected(server) -> None:
    """Until the dispatcher has opened its SMTP connection (its first send began)."""
    await _until(lambda: server.connections >= 1, "the dispatcher connects")


def _by_address(rows):
    return {row.to_address: row for row in rows}


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


# -- rows taken by another dispatcher mid-batch ---------------------------------------------


async def test_a_renewal_keeps_only_our_rows_and_the_rest_of_the_batch_goes(
    make_app, make_settings, smtp_server, caplog, clock
):
    # A lease of 10 s and a send budget of 8 × 1 s: 3 s into the batch, a renewal is due.
    settings = make_settings(**smtp_server.settings_values(SMTP_TIMEOUT=1), OUTBOX_LEASE_SECONDS=10)
    app = make_app(settings)
    await _queue(app, "u0@example.com", "u1@example.com", "u2@example.com", "u3@example.com")
    smtp_server.data_delay = 0.3
    other = uuid.uuid4()
    theirs_until = START + timedelta(hours=1)
    renewed_at = START + timedelta(seconds=3)
    caplog.set_level(logging.INFO, logger="app.email.outbox")

    async def meanwhile():
        await _connected(smtp_server)  # u0 is being sent
        await _set(app, "u2@example.com", claim_token=other, lease_until=theirs_until)
        clock.move_to(renewed_at)  # the next send finds 7 s of lease left: renew first
        await smtp_server.wait_for_messages(2)  # u0, u1 sent; u3 is being sent
        return _by_address(await queued(app))

    running = asyncio.create_task(app.state.dispatcher.run_once())
    during = await meanwhile()
    result = await running

    assert (result.claimed, result.sent, result.deferred, result.failed) == (4, 3, 0, 0)
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [
        ["u0@example.com"],
        ["u1@example.com"],
        ["u3@example.com"],
    ]
    # While the batch went on, our rows held the renewed lease under one claim token.
    ours = [during[a] for a in ("u0@example.com", "u1@example.com", "u3@example.com")]
    assert {r.lease_until for r in ours} == {renewed_at + timedelta(seconds=10)}
    [token] = {r.claim_token for r in ours}
    assert token is not None and token != other
    # The other dispatcher's row is as it left it.
    rows = _by_address(await queued(app))
    taken = rows.pop("u2@example.com")
    assert (taken.state, taken.claim_token, taken.lease_until) == (
        OutboxState.PENDING,
        other,
        theirs_until,
    )
    assert taken.attempts == 0 and taken.data == NOTICE
    assert {r.state for r in rows.values()} == {OutboxState.SENT}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [(r.name, r.getMessage()) for r in warnings] == [
        ("app.email.outbox", "email outbox: 1 rows no longer ours mid-batch")
    ]


async def test_a_renewal_that_keeps_every_row_is_silent(
    make_app, make_settings, smtp_server, caplog, clock
):
    settings = make_settings(**smtp_server.settings_values(SMTP_TIMEOUT=1), OUTBOX_LEASE_SECONDS=10)
    app = make_app(settings)
    await _queue(app, "u0@example.com", "u1@example.com", "u2@example.com")
    smtp_server.data_delay = 0.2
    caplog.set_level(logging.INFO, logger="app.email.outbox")

    async def renewal_due():
        await _connected(smtp_server)
        clock.move_to(START + timedelta(seconds=3))

    racer = asyncio.create_task(renewal_due())
    result = await app.state.dispatcher.run_once()
    await racer
    assert (result.claimed, result.sent) == (3, 3)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_result_for_a_row_taken_meanwhile_is_not_recorded(
    make_app, make_settings, smtp_server, clock
):
    app = make_app(make_settings(**smtp_server.settings_values()))
    await _queue(app, "u0@example.com")
    await _queue(app, "broken@example.com", template="no_such_template")
    smtp_server.data_delay = 0.3
    other = uuid.uuid4()

    async def take_the_broken_row():
        await _connected(smtp_server)
        await _set(app, "broken@example.com", claim_token=other)

    racer = asyncio.create_task(take_the_broken_row())
    result = await app.state.dispatcher.run_once()
    await racer
    assert (result.sent, result.failed) == (1, 1)  # our attempt, counted as ours
    rows = _by_address(await queued(app))
    broken = rows["broken@example.com"]
    # Not ours to record: the other dispatcher's claim, data and state are untouched.
    assert (broken.state, broken.claim_token, broken.attempts) == (OutboxState.PENDING, other, 0)
    assert broken.last_error is None and broken.data == NOTICE
    assert rows["u0@example.com"].state == OutboxState.SENT


# -- when successes are recorded ------------------------------------------------------------


async def test_ten_sends_are_recorded_before_the_eleventh_is_tried(
    make_app, make_settings, smtp_server, clock
):
    """A dispatcher that dies during the 11th send has its first ten recorded: at most
    the last group goes out twice (see the module doc of the dispatcher)."""
    app = make_app(make_settings(**smtp_server.settings_values(), OUTBOX_BATCH_SIZE=20))
    count = SENT_RECORD_EVERY + 1
    await _queue(app, *(f"r{i:02d}@example.com" for i in range(count)))
    smtp_server.data_delay = 0.25

    async def first_record():
        await smtp_server.wait_for_messages(SENT_RECORD_EVERY)
        while True:
            async with app.state.sessionmaker() as db:
                recorded = await db.scalar(
                    select(func.count()).where(OutboxMessage.state == OutboxState.SENT)
                )
            if recorded:
                return recorded, len(smtp_server.messages)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(first_record())
    result = await app.state.dispatcher.run_once()
    assert result.sent == count
    assert await watcher == (SENT_RECORD_EVERY, SENT_RECORD_EVERY)


# -- giving up ------------------------------------------------------------------------------


async def test_a_row_gives_up_at_exactly_the_give_up_time(
    make_app, make_settings, smtp_server, clock
):
    app = make_app(make_settings(**smtp_server.settings_values(), OUTBOX_GIVE_UP_SECONDS=3600))
    await _queue(app, "early@example.com", "exact@example.com")
    smtp_server.fail_next(2, "451 4.3.0 Later")
    await _set(app, "exact@example.com", next_attempt_at=START + timedelta(hours=1))
    clock.move_to(START + timedelta(seconds=3599))
    assert (await app.state.dispatcher.run_once()).deferred == 1  # one second to go
    clock.move_to(START + timedelta(seconds=3600))
    await _set(app, "early@example.com", next_attempt_at=START + timedelta(hours=2))
    assert (await app.state.dispatcher.run_once()).claimed == 1
    rows = _by_address(await queued(app))
    assert rows["early@example.com"].state == OutboxState.PENDING
    exact = rows["exact@example.com"]
    assert exact.state == OutboxState.FAILED and exact.data == {}
    assert exact.last_error == (
        f"gave up after 1 attempts: SMTP 127.0.0.1:{smtp_server.port} replied "
        "SMTPDataError: (451, '4.3.0 Later')"
    )


async def test_a_row_that_gives_up_counts_as_failed_in_the_batch(
    make_app, make_settings, smtp_server, caplog, clock
):
    app = make_app(make_settings(**smtp_server.settings_values(), OUTBOX_GIVE_UP_SECONDS=3600))
    await _queue(app, "anna@example.com")
    smtp_server.fail_next(1, "451 4.3.0 Later")
    clock.move_to(START + timedelta(hours=2))
    caplog.set_level(logging.INFO, logger="app.email.outbox")
    result = await app.state.dispatcher.run_once()
    [row] = await queued(app)
    assert row.state == OutboxState.FAILED  # holds: the row did give up
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["email outbox: 0 sent, 0 deferred, 1 failed"]  # says "1 deferred"
    assert (result.deferred, result.failed) == (0, 1)


# -- the warning after a batch --------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "command", "line"),
    [
        ("550 5.1.1 No such user", "RCPT", "email outbox: 1 sent, 0 deferred, 1 failed"),
        ("451 4.3.0 Later", "DATA", "email outbox: 1 sent, 1 deferred, 0 failed"),
        (None, None, None),
    ],
)
async def test_a_batch_with_failures_or_deferrals_ends_with_one_warning(
    make_app, make_settings, smtp_server, caplog, clock, reply, command, line
):
    app = make_app(make_settings(**smtp_server.settings_values()))
    await _queue(app, "a@example.com", "b@example.com")
    if reply:
        smtp_server.fail_next(1, reply, command=command)
    caplog.set_level(logging.INFO, logger="app.email.outbox")
    await app.state.dispatcher.run_once()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ([line] if line else [])


# -- the loop -------------------------------------------------------------------------------


async def _run_loop(app, until, within: float = 5):
    stop = asyncio.Event()
    loop = asyncio.create_task(app.state.dispatcher.run_forever(stop))
    try:
        return await asyncio.wait_for(until(loop), within)
    finally:
        stop.set()
        await asyncio.wait_for(loop, 5)


async def test_after_a_full_batch_the_next_goes_at_once(make_app, make_settings, smtp_server):
    """Even when what is due next is a dead dispatcher's row, whose lease has passed: the
    wait for the next retry does not see those, only the next claim does."""
    app = make_app(
        make_settings(**smtp_server.settings_values(), OUTBOX_BATCH_SIZE=2, OUTBOX_POLL_SECONDS=60)
    )
    now = datetime.now(UTC)
    await _queue(app, "a@example.com", "b@example.com", "left@example.com")
    await _set(app, "a@example.com", next_attempt_at=now - timedelta(minutes=2))
    await _set(app, "b@example.com", next_attempt_at=now - timedelta(minutes=2))
    await _set(
        app,
        "left@example.com",
        next_attempt_at=now - timedelta(minutes=1),
        lease_until=now - timedelta(seconds=30),
        claim_token=uuid.uuid4(),
    )

    async def all_sent(loop):
        while len(smtp_server.messages) < 3:
            assert not loop.done(), "the loop ended"
            await asyncio.sleep(0.01)

    await _run_loop(app, all_sent)
    assert sorted(e.rcpt_tos[0] for e in smtp_server.envelopes) == [
        "a@example.com",
        "b@example.com",
        "left@example.com",
    ]


async def test_an_idle_loop_waits_instead_of_asking_the_database_again_and_again(
    make_app, make_settings, smtp_server
):
    """Nothing due: a sent row and a row another dispatcher holds (its lease running)."""
    app = make_app(make_settings(**smtp_server.settings_values(), OUTBOX_POLL_SECONDS=60))
    now = datetime.now(UTC)
    await _queue(app, "sent@example.com", "held@example.com")
    await _set(app, "sent@example.com", state=OutboxState.SENT, next_attempt_at=now)
    await _set(
        app,
        "held@example.com",
        next_attempt_at=now - timedelta(minutes=1),
        lease_until=now + timedelta(minutes=5),
        claim_token=uuid.uuid4(),
    )

    async def a_while(loop):
        await asyncio.sleep(1)
        assert not loop.done()

    with sent_statements(app) as statements:
        await _run_loop(app, a_while)
    # One claim that finds nothing and one look for the next retry, then the poll's wait.
    assert len(statements) < 10, statements[:12]
    assert smtp_server.connections == 0


async def test_a_database_error_is_logged_and_the_loop_goes_on(
    make_app, make_settings, smtp_server, caplog
):
    app = make_app(make_settings(**smtp_server.settings_values(), OUTBOX_POLL_SECONDS=0.2))
    caplog.set_level(logging.INFO, logger="app.email.outbox")
    async with app.state.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE email_outbox RENAME TO email_outbox_away"))

    async def fails_then_recovers(loop):
        await _until(
            lambda: any("cannot read the next retry" in r.getMessage() for r in caplog.records),
            "the loop fails to read the next retry",
        )
        async with app.state.engine.begin() as connection:
            await connection.execute(text("ALTER TABLE email_outbox_away RENAME TO email_outbox"))
        await _queue(app, "after@example.com")
        await smtp_server.wait_for_messages(1)
        assert not loop.done()

    await _run_loop(app, fails_then_recovers)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR][:2]
    assert [(r.name, r.getMessage()) for r in errors] == [
        ("app.email.outbox", "email outbox: dispatch failed; retrying at the next poll"),
        ("app.email.outbox", "email outbox: cannot read the next retry; polling"),
    ]
    assert all(r.exc_info for r in errors)
    assert smtp_server.envelopes[0].rcpt_tos == ["after@example.com"]


# -- bulk rows withdrawn while claimed ------------------------------------------------------


async def test_a_bulk_row_withdrawn_mid_batch_is_not_sent_when_its_group_comes(
    make_app, make_settings, smtp_server
):
    """The claim is checked for the next ten bulk rows at a time: an unsubscribe during the
    first ten keeps the eleventh and later from going."""
    app = make_app(make_settings(**smtp_server.settings_values()))
    count = SENT_RECORD_EVERY + 2
    readers = await add_users(app, count)
    async with client_for(app) as client:
        await admin_client(app, client)
        await deliver_all(app)  # the admin's confirmation code
        draft = await create_draft(client)
        response = await client.post(f"/admin/newsletters/{draft['id']}/send")
        assert response.json()["recipients"] == count
    smtp_server.envelopes.clear()
    smtp_server.messages.clear()
    smtp_server.connections = 0
    rows = await queued(app)
    last = rows[-1]
    assert last.newsletter_id is not None
    smtp_server.data_delay = 0.05

    async def unsubscribe_the_last_during_the_first_send():
        await _connected(smtp_server)
        async with app.state.sessionmaker.begin() as db:
            await newsletters.unsubscribe(db, last.user_id)

    racer = asyncio.create_task(unsubscribe_the_last_during_the_first_send())
    result = await app.state.dispatcher.run_once()
    await racer
    assert (result.claimed, result.sent, result.failed) == (count, count - 1, 0)
    assert result.withdrawn == 1
    received = sorted(e.rcpt_tos[0] for e in smtp_server.envelopes)
    assert received == sorted(r["email"] for r in readers if r["id"] != last.user_id)
    states = {row.id: row.state for row in await queued(app)}
    assert states.pop(last.id) == OutboxState.WITHDRAWN
    assert set(states.values()) == {OutboxState.SENT}


async def test_queueing_many_bounds_each_address_and_queues_nothing_for_no_one(app):
    outbox = app.state.outbox
    longest = "a" * (ADDRESS_MAX_LENGTH - len("@example.com")) + "@example.com"
    async with app.state.sessionmaker.begin() as db:
        assert await outbox.add_many(db, template="newsletter", recipients=[]) == 0
        one = [Recipient(to=longest, data={})]
        assert await outbox.add_many(db, template="newsletter", recipients=one) == 1
    with pytest.raises(ValueError, match=r"^recipient address too long$"):
        async with app.state.sessionmaker.begin() as db:
            too_long = [
                Recipient(to="b@example.com", data={}),
                Recipient(to="a" + longest, data={}),
            ]
            await outbox.add_many(db, template="newsletter", recipients=too_long)
    assert [row.to_address for row in await queued(app)] == [longest]  # nothing half-queued
    # One at a time, the same bound.
    async with app.state.sessionmaker.begin() as db:
        outbox.add(db, to=longest, template="newsletter", data={})
        with pytest.raises(ValueError, match=r"^recipient address too long$"):
            outbox.add(db, to="a" + longest, template="newsletter", data={})
    assert [row.to_address for row in await queued(app)] == [longest, longest]


async def test_a_row_whose_newsletter_has_no_content_fails_saying_so(settings):
    newsletter_id = uuid.uuid4()
    job = ComposeJob(
        row_id=7,
        to="reader@example.com",
        template="newsletter",
        locale="ru",
        data={"name": "Анна", "unsubscribe_url": "http://localhost:8000/unsubscribe/x"},
        message_id="<x@example.com>",
        date=datetime(2026, 3, 1, tzinfo=UTC),
        newsletter_id=newsletter_id,
        bulk=None,  # the loader found no such newsletter
    )
    [(row_id, failed)] = compose_chunk(EmailService(settings), _ContentCache(), [job])
    assert row_id == 7 and isinstance(failed, ComposeFailed)
    assert str(failed) == f"LookupError: no content for newsletter {newsletter_id}"
