"""`python -m app sweep`: write `false` into confirmations whose code expired unused.

The app does this every SWEEP_INTERVAL_SECONDS; reads apply expiry on their own, so the
sweep only makes the stored rows agree (for reports and queries on the table itself)."""

import argparse
import asyncio

from app.cli.common import Command, transaction
from app.confirmation.service import sweep


async def _sweep() -> str:
    async with transaction() as db:
        count = await sweep(db)
    return f"{count} expired confirmation(s) marked false"


def run(args: argparse.Namespace) -> str:
    return asyncio.run(_sweep())


COMMAND = Command(
    name="sweep",
    help="mark expired confirmation codes false",
    description="Write false into every pending confirmation whose code has expired.",
    configure=lambda parser: None,
    run=run,
)
