"""`python -m app outbox run|status`: the email outbox from the command line.

`run` is the dispatcher as a separate worker (for deployments that set
OUTBOX_DISPATCHER_ENABLED=false in the app, or want a worker of their own): it delivers
until SIGINT/SIGTERM, finishing the batch in hand (at most OUTBOX_BATCH_SIZE emails); `run --once` delivers what is due now
and exits. Any number of workers and app instances may run at once (see
app.services.email.dispatcher). `status` prints the number of emails in each state and
how long the oldest pending one has waited.
"""

import argparse
import asyncio
import signal

from sqlalchemy import func, select

from app.cli.common import Command, database
from app.core.clock import utcnow
from app.core.config import get_settings
from app.newsletters import service as newsletters
from app.services.email.dispatcher import Dispatcher, DispatchResult, outbox_counts
from app.services.email.outbox import OutboxMessage, OutboxState
from app.services.email.service import EmailService


async def _run(once: bool) -> str:
    settings = get_settings()
    async with database() as sessionmaker:
        dispatcher = Dispatcher(
            sessionmaker, EmailService(settings), settings, load_content=newsletters.load_content
        )
        try:
            return await _dispatch(dispatcher, once)
        finally:
            dispatcher.close()


async def _dispatch(dispatcher: Dispatcher, once: bool) -> str:
    if once:
        total = DispatchResult()
        while (result := await dispatcher.run_once()).claimed:
            for name in ("sent", "deferred", "failed", "withdrawn"):
                setattr(total, name, getattr(total, name) + getattr(result, name))
            if result.deferred:
                break  # the server is unwell: the deferred rows wait for their backoff
        withdrawn = f", withdrawn {total.withdrawn}" if total.withdrawn else ""
        return f"sent {total.sent}, deferred {total.deferred}, failed {total.failed}{withdrawn}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await dispatcher.run_forever(stop)
    return "stopped"


async def _status() -> str:
    async with database() as sessionmaker, sessionmaker() as db:
        counts = await outbox_counts(db)
        oldest = await db.scalar(
            select(func.min(OutboxMessage.created_at)).where(
                OutboxMessage.state == OutboxState.PENDING
            )
        )
    lines = [f"{state}: {count}" for state, count in counts.items()]
    if oldest is not None:
        waited = int((utcnow() - oldest).total_seconds())
        lines.append(f"oldest pending: {waited} s")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="deliver queued email (until SIGTERM, or --once)")
    run.add_argument("--once", action="store_true", help="deliver what is due now and exit")
    actions.add_parser("status", help="emails by state, and the oldest pending one's wait")


def run(args: argparse.Namespace) -> str:
    if args.action == "status":
        return asyncio.run(_status())
    return asyncio.run(_run(args.once))


COMMAND = Command(
    name="outbox",
    help="deliver queued email (run) or count it (status)",
    description=(
        "run: deliver queued email as a separate worker until SIGINT/SIGTERM (--once: what"
        " is due now, then exit). status: the number of emails pending, sent and failed."
    ),
    configure=configure,
    run=run,
)
