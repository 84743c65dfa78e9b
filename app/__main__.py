"""Command line of the service: `python -m app COMMAND [options]`.

    python -m app create-admin --email E [--name N] [--phone P] [--password P]
    python -m app create-admin --email E --promote
    python -m app seed --demo [--force] | --transactions N [--users U]
    python -m app check-config
    python -m app errors
    python -m app outbox run [--once] | status
    python -m app newsletter send --subject S --html-file F --text-file F [--no-deliver]
    python -m app sweep
    python -m app serve [--host H] [--port P]

Each command is a module in app/cli (its behaviour is described there); adding one is a
module with a `COMMAND` and an entry in COMMANDS below. Settings come from the environment
and `.env`, as for the service; a bad one stops any command with its one-line reason.

Exit status: 0 done; 1 refused because of what is in the database (nothing changed), or a
configuration error; 2 bad input or usage.
"""

import argparse
import io
import sys

from app.cli import admin, check, errors, newsletter, outbox, seed, serve, sweep
from app.cli.common import Command, CommandError

COMMANDS: tuple[Command, ...] = (
    admin.COMMAND,
    seed.COMMAND,
    check.COMMAND,
    errors.COMMAND,
    outbox.COMMAND,
    newsletter.COMMAND,
    sweep.COMMAND,
    serve.COMMAND,
)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m app",
        description=(
            "Maintenance commands of the shop service. Settings come from the environment and"
            " .env. Exit status: 0 done, 1 refused or configuration error, 2 bad input."
        ),
    )
    commands = root.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.description)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # A name is whatever someone registered: never let printing it fail.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        message = args.run(args)
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    if message is not None:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
