"""`python -m app errors`: the catalogue of stable error codes, as a Markdown table.

The same table the API description shows, generated from the code; the README's "Error
codes" section is this output (a test keeps them equal).
"""

import argparse
import importlib

from app.cli.common import Command

# Every module that defines error codes: the routers the app mounts and their middleware.
# Importing them builds no app and reads no settings.
DEFINING_MODULES = (
    "app.auth.csrf",
    "app.auth.router",
    "app.auth.reset_router",
    "app.auth.sessions_router",
    "app.confirmation.service",
    "app.admin",
    "app.health",
    "app.users.router",
    "app.users.service",
    "app.core.cursor",
    "app.newsletters.router",
    "app.newsletters.service",
    "app.transactions.idempotency",
    "app.transactions.service",
    "app.transactions.webhook",
)


def run(args: argparse.Namespace) -> str:
    for module in DEFINING_MODULES:
        importlib.import_module(module)
    from app.docs import error_catalogue_markdown  # noqa: PLC0415  (after the definitions)

    return error_catalogue_markdown()


COMMAND = Command(
    name="errors",
    help="print the catalogue of error codes (Markdown)",
    description="Print every stable error code with its HTTP status and meaning, as Markdown.",
    configure=lambda parser: None,
    run=run,
)
