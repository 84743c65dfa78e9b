"""Work the app does beside requests, started and stopped by the lifespan: the email
outbox dispatcher, and the sweep (expired confirmation codes marked false, overdue orders
written not_paid_in_time, finished newsletters' figures stored, outbox rows older than
OUTBOX_KEEP_DAYS and idempotency keys older than 24 h deleted). Both also run from the
CLI (`python -m app outbox run`, `python -m app sweep`) for deployments that turn them
off here (OUTBOX_DISPATCHER_ENABLED=false)."""

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import NamedTuple

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.confirmation import service as confirmation
from app.core.clock import utcnow
from app.core.config import Settings
from app.newsletters import service as newsletters
from app.services.email import outbox
from app.services.email.outbox import Outbox
from app.transactions import idempotency
from app.transactions.service import Transactions

logger = logging.getLogger("app.periodic")


class SweepResult(NamedTuple):
    marked: int  # confirmations written false
    expired: int  # orders written not_paid_in_time
    newsletters_finished: int  # campaigns whose final figures were stored
    deleted: int  # outbox rows deleted
    keys_deleted: int  # idempotency keys past their 24 hours


async def sweep(
    db: AsyncSession, settings: Settings, transactions: Transactions | None = None
) -> SweepResult:
    """Expired confirmations marked false, overdue orders written not_paid_in_time (with
    their history and emails), finished newsletters' figures stored, then old outbox rows
    and idempotency keys deleted. `transactions`: the app's (default: one queueing into
    the outbox without waking a dispatcher, as the CLI needs)."""
    now = utcnow()
    if transactions is None:
        outbox_ = Outbox(settings.EMAIL_FROM, settings.EMAIL_LOCALE)
        transactions = Transactions.from_settings(settings, outbox_)
    marked = await confirmation.sweep(db, now)
    expired = await transactions.expire_overdue(db, now)
    newsletters_finished = await newsletters.finish_sent(db)
    deleted = await outbox.purge(db, older_than=now - timedelta(days=settings.OUTBOX_KEEP_DAYS))
    keys_deleted = await idempotency.purge(db, now)
    return SweepResult(marked, expired, newsletters_finished, deleted, keys_deleted)


async def sweep_forever(app: FastAPI, stop: asyncio.Event) -> None:
    interval = app.state.settings.SWEEP_INTERVAL_SECONDS
    while not stop.is_set():
        try:
            async with app.state.sessionmaker.begin() as db:
                await sweep(db, app.state.settings, app.state.transactions)
        except Exception:
            logger.exception("sweep failed; retrying at the next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def run_background_work(app: FastAPI, stop: asyncio.Event) -> None:
    """Run until `stop` is set; each loop logs its own failures and goes on."""
    tasks = [sweep_forever(app, stop)]
    if app.state.settings.OUTBOX_DISPATCHER_ENABLED:
        tasks.append(app.state.dispatcher.run_forever(stop))
    await asyncio.gather(*tasks)
