"""The sweep: expired confirmations marked false, old outbox rows deleted; in the app's
background work as well as on demand."""

import asyncio
from datetime import UTC, datetime, timedelta

import time_machine

from app.periodic import run_background_work, sweep
from app.services.email.outbox import OutboxState
from tests.confirmation.helpers import confirmation_row, queued
from tests.conftest import client_for
from tests.helpers import register

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def test_old_sent_and_failed_emails_are_deleted_pending_ones_kept(app, settings):
    with time_machine.travel(START, tick=False) as clock:
        async with app.state.sessionmaker.begin() as db:
            for to, state in (
                ("sent@example.com", OutboxState.SENT),
                ("failed@example.com", OutboxState.FAILED),
                ("pending@example.com", OutboxState.PENDING),
            ):
                row = app.state.outbox.add(
                    db, to=to, template="password_changed", data={"name": "A", "changed_at": "x"}
                )
                row.state = state
        for to, when in (
            ("boundary@example.com", timedelta(seconds=1)),
            ("recent@example.com", timedelta(days=29)),
        ):
            clock.move_to(START + when)
            async with app.state.sessionmaker.begin() as db:
                app.state.outbox.add(
                    db, to=to, template="password_changed", data={}
                ).state = OutboxState.SENT
        clock.move_to(START + timedelta(days=30, seconds=1))
        async with app.state.sessionmaker.begin() as db:
            assert await sweep(db, settings) == (0, 0, 0, 2, 0)
    left = sorted(r.to_address for r in await queued(app))
    # Exactly OUTBOX_KEEP_DAYS old is not older than that: kept until the next sweep.
    assert left == ["boundary@example.com", "pending@example.com", "recent@example.com"]


async def test_the_apps_background_work_sweeps(make_app, make_settings):
    app = make_app(make_settings(SWEEP_INTERVAL_SECONDS=0.05, OUTBOX_DISPATCHER_ENABLED=False))
    async with client_for(app) as client:
        user = await register(client)
    row = await confirmation_row(app, user["email"])
    assert row.confirmation_status is None
    stop = asyncio.Event()
    with time_machine.travel(row.expires_at + timedelta(seconds=1), tick=True):
        work = asyncio.create_task(run_background_work(app, stop))
        try:
            for _ in range(200):
                if (await confirmation_row(app, user["email"])).confirmation_status is False:
                    break
                await asyncio.sleep(0.02)
        finally:
            stop.set()
            await asyncio.wait_for(work, timeout=10)
    assert (await confirmation_row(app, user["email"])).confirmation_status is False
