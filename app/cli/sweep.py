"""`python -m app sweep`: write `false` into confirmations whose code expired unused,
`not_paid_in_time` into orders past their payment deadline, store the final figures of
newsletters whose last email left the queue, delete sent and failed
outbox rows older than OUTBOX_KEEP_DAYS and idempotency keys older than 24 hours.

The app does this every SWEEP_INTERVAL_SECONDS; reads apply expiry on their own, so the
sweep only makes the stored rows agree (for reports and queries on the table itself)."""

import argparse
import asyncio

from app.cli.common import Command, transaction
from app.core.config import get_settings
from app.periodic import sweep


async def _sweep() -> str:
    async with transaction() as db:
        result = await sweep(db, get_settings())
    return (
        f"{result.marked} expired confirmation(s) marked false; {result.expired} unpaid "
        f"order(s) marked not_paid_in_time; {result.newsletters_finished} newsletter(s) "
        f"finished; {result.deleted} old email(s) deleted; "
        f"{result.keys_deleted} expired idempotency key(s) deleted"
    )


def run(args: argparse.Namespace) -> str:
    return asyncio.run(_sweep())


COMMAND = Command(
    name="sweep",
    help="mark expired confirmation codes false and overdue orders not paid; delete old outbox rows",
    description=(
        "Write false into every pending confirmation whose code has expired,"
        " not_paid_in_time into every order past its payment deadline, and delete"
        " sent and failed outbox rows older than OUTBOX_KEEP_DAYS."
    ),
    configure=lambda parser: None,
    run=run,
)
