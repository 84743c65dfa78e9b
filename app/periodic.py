"""Work the app does beside requests, started and stopped by the lifespan: the email
outbox dispatcher, and the sweep (expired confirmation codes marked false, finished
newsletters' figures stored, outbox rows older than OUTBOX_KEEP_DAYS deleted). Both also run from the
CLI (`python -m app outbox run`, `python -m app sweep`) for deployments that turn them
off here (OUTBOX_DISPATCHER_ENABLED=false)."""

import asyncio
import contextlib
import logging
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.confirmation import service as confirmation
from app.core.clock import utcnow
from app.core.config import Settings
from app.newsletters import service as newsletters
from app.services.email import outbox

logger = logging.getLogger("app.periodic")


async def sweep(db: AsyncSession, settings: Settings) -> tuple[int, int]:
    """Expired confirmations marked false, finished newsletters' figures stored, then old
    outbox rows deleted: (marked, deleted)."""
    now = utcnow()
    marked = await confirmation.sweep(db, now)
    await newsletters.finish_sent(db)
    deleted = await outbox.purge(db, older_than=now - timedelta(days=settings.OUTBOX_KEEP_DAYS))
    return marked, deleted


async def sweep_forever(app: FastAPI, stop: asyncio.Event) -> None:
    interval = app.state.settings.SWEEP_INTERVAL_SECONDS
    while not stop.is_set():
        try:
            async with app.state.sessionmaker.begin() as db:
                await sweep(db, app.state.settings)
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
