"""Edges of the outbox dispatcher: rows that cannot be rendered, the counts a batch
reports, what a sent row records, the order rows are claimed in, and the wait for the
next retry."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import update

from app.services.email.dispatcher import retry_delay
from app.services.email.outbox import OutboxMessage, OutboxState
from tests.confirmation.helpers import queued

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _queue(app, *rows: tuple[str, str]) -> None:
    async with app.state.sessionmaker.begin() as db:
        for to, template in rows:
            data = {"name": "Анна", "changed_at": "x"} if template == "password_changed" else {}
            app.state.outbox.add(db, to=to, template=template, data=data)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def _by_address(rows):
    return {row.to_address: row for row in rows}


async def test_rows_that_cannot_be_rendered_fail_alone_and_the_batch_goes_on(
    make_app, make_settings, smtp_server, caplog, clock
):
    app = make_app(make_settings(**smtp_server.settings_values()))
    await _queue(
        app,
        ("bad1@example.com", "no_such_template"),
        ("good1@example.com", "password_changed"),
        ("bad2@example.com", "no_such_template"),
        ("good2@example.com", "password_changed"),
    )
    caplog.set_level(logging.INFO, logger="app.email.outbox")
    result = await app.state.dispatcher.run_once()
    assert (result.claimed, result.sent, result.deferred, result.failed) == (4, 2, 0, 2)
    assert sorted(rcpt for e in smtp_server.envelopes for rcpt in e.rcpt_tos) == [
        "good1@example.com",
        "good2@example.com",
    ]
    rows = _by_address(await queued(app))
    for address in ("bad1@example.com", "bad2@example.com"):
        row = rows[address]
        assert row.state == OutboxState.FAILED and row.attempts == 1
        assert row.last_error.startswith("render: UnknownTemplate: "), row.last_error
        assert (row.lease_until, row.claim_token, row.data) == (None, None, {})
    logged = [r for r in caplog.records if "cannot be rendered" in r.getMessage()]
    assert [r.getMessage() for r in logged] == [
        f"email outbox: row {rows['bad1@example.com'].id} cannot be rendered",
        f"email outbox: row {rows['bad2@example.com'].id} cannot be rendered",
    ]
    assert all(r.exc_info and r.levelno == logging.ERROR for r in logged)


async def test_the_counts_of_a_batch_add_up(make_app, make_settings, smtp_server, clock):
    app = make_app(make_settings(**smtp_server.settings_values()))
    await _queue(app, *((f"r{i}@example.com", "password_changed") for i in range(4)))
    smtp_server.fail_next(2, "550 5.1.1 No such user", command="RCPT")
    smtp_server.fail_next(2, "451 4.3.0 Later", command="DATA")
    result = await app.state.dispatcher.run_once()
    assert (result.claimed, result.sent, result.deferred, result.failed) == (4, 0, 2, 2)


async def test_a_sent_row_records_when_and_forgets_the_earlier_error(
    make_app, make_settings, smtp_server, clock
):
    app = make_app(make_settings(**smtp_server.settings_values()))
    await _queue(app, ("anna@example.com", "password_changed"))
    smtp_server.fail_next(1, "451 4.3.0 Later")
    assert (await app.state.dispatcher.run_once()).deferred == 1
    [row] = await queued(app)
    assert row.last_error is not None and row.attempts == 1
    clock.move_to(START + timedelta(minutes=5))
    assert (await app.state.dispatcher.run_once()).sent == 1
    [row] = await queued(app)
    assert row.state == OutboxState.SENT and row.attempts == 2
    assert row.sent_at == START + timedelta(minutes=5)
    assert (row.last_error, row.lease_until, row.claim_token) == (None, None, None)


async def test_a_row_refused_after_ten_sends_in_the_batch_is_failed_not_sent(
    make_app, make_settings, smtp_server, clock
):
    app = make_app(make_settings(**smtp_server.settings_values(), OUTBOX_BATCH_SIZE=20))
    await _queue(app, *((f"r{i:02d}@example.com", "password_changed") for i in range(12)))
    async with app.state.sessionmaker.begin() as db:  # the 12th cannot be sent
        await db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.to_address == "r11@example.com")
            .values(to_address="not an address")
        )
    result = await app.state.dispatcher.run_once()
    assert (result.sent, result.failed) == (11, 1)
    rows = _by_address(await queued(app))
    assert rows["not an address"].state == OutboxState.FAILED
    assert sum(row.state == OutboxState.SENT for row in rows.values()) == 11


async def test_the_earliest_due_row_is_claimed_first(make_app, make_settings, smtp_server, clock):
    app = make_app(make_settings(**smtp_server.settings_values(), OUTBOX_BATCH_SIZE=1))
    await _queue(app, ("later@example.com", "password_changed"))
    await _queue(app, ("earlier@example.com", "password_changed"))
    await _queue(app, ("third@example.com", "password_changed"))
    async with app.state.sessionmaker.begin() as db:
        await db.execute(
            update(OutboxMessage)
            .where(OutboxMessage.to_address == "earlier@example.com")
            .values(next_attempt_at=START - timedelta(minutes=1))
        )
    clock.move_to(START + timedelta(seconds=1))
    result = await app.state.dispatcher.run_once()
    assert result.claimed == 1
    assert smtp_server.envelopes[0].rcpt_tos == ["earlier@example.com"]


async def test_a_retry_already_due_means_no_wait(make_app, make_settings, smtp_server, clock):
    app = make_app(make_settings(**smtp_server.settings_values()))
    await _queue(app, ("anna@example.com", "password_changed"))
    smtp_server.fail_next(1, "451 4.3.0 Later")
    assert (await app.state.dispatcher.run_once()).deferred == 1
    clock.move_to(START + timedelta(hours=1))  # long past the retry
    assert await app.state.dispatcher._idle_seconds() == 0.0


def test_the_backoff_exponent_stops_at_thirty():
    assert retry_delay(40, float("inf")) == 2.0 * 2**30
    assert retry_delay(31, float("inf")) == 2.0 * 2**30
