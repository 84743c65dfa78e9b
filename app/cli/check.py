"""`python -m app check-config`: the service's settings, checked before anything uses them.

Loads the full settings as the service does (environment, then `.env` in the current
directory). Fine: prints nothing, exit 0. Not: the one-line `Configuration error: …` on
stderr, exit 1 (ConfigurationError is a SystemExit carrying that line). `make migrate` and
the image run it before the migrations, so a bad SECRET_KEY stops them before they start.
"""

import argparse

from app.cli.common import Command
from app.core.config import load_settings


def run(args: argparse.Namespace) -> None:
    load_settings()


COMMAND = Command(
    name="check-config",
    help="check the settings (environment and .env); silent when they are fine",
    description=(
        "Load the service's settings from the environment and .env as the service would."
        " Prints nothing and exits 0 when they are fine; otherwise prints one line,"
        " 'Configuration error: ...', and exits 1. Touches no database."
    ),
    configure=lambda parser: None,
    run=run,
)
