"""`python -m app seed --demo [--force]`: the demo accounts QA signs in with.
(`python -m app seed --transactions N`: a large order book, app.cli.seed_orders.)

One admin and two users on the reserved example.com domain, verified, with fresh random
passwords printed once in a table (nothing else keeps them). Only into an empty database:
if it has any account the command refuses, unless `--force`, which resets just the demo
accounts (new passwords, demo details, active, verified, sessions ended) and creates the
missing ones; other accounts are left alone. `--demo` is required: it says "I know these
are demo credentials".

Exit status: 0 done; 1 refused (nothing changed); 2 usage. All or nothing: one transaction.
"""

import argparse
import asyncio
import secrets
from collections.abc import Callable

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.auth import sessions
from app.cli.common import REFUSED, Command, CommandError, find_user, transaction
from app.cli.seed_orders import seed_orders
from app.core.security import PasswordHasher
from app.types.enums import UserRole
from app.users.manager import check_password
from app.users.models import User
from app.users.schemas import Email, Name, Phone

# No i, l, o, 0, 1: read off a screen and typed without doubt. 4 groups of 4: 19 characters,
# about 79 bits.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
PASSWORD_GROUPS = 4
PASSWORD_GROUP_LENGTH = 4


class DemoAccount(BaseModel):
    email: Email
    name: Name
    phone: Phone
    role: UserRole


# Not ivan@example.com: the registration example in the API docs uses that one.
DEMO_ACCOUNTS = (
    DemoAccount(
        email="admin@example.com", name="Ольга Орлова", phone="+79125550101", role=UserRole.ADMIN
    ),
    DemoAccount(
        email="anna@example.com", name="Анна Кузнецова", phone="+79125550102", role=UserRole.USER
    ),
    DemoAccount(
        email="boris@example.com", name="Борис Соколов", phone="+79125550103", role=UserRole.USER
    ),
)

DEMO_EMAILS = ", ".join(a.email for a in DEMO_ACCOUNTS)


def demo_password() -> str:
    return "-".join(
        "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_GROUP_LENGTH))
        for _ in range(PASSWORD_GROUPS)
    )


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


async def seed(force: bool) -> str:
    passwords = {account.email: demo_password() for account in DEMO_ACCOUNTS}
    hasher = PasswordHasher()
    hashes = {}
    for email, password in passwords.items():
        check_password(password, email)
        hashes[email] = await hasher.hash(password)

    created: list[str] = []
    reset: list[str] = []
    try:
        async with transaction() as db:
            accounts = await db.scalar(select(func.count()).select_from(User))
            if accounts and not force:
                raise CommandError(
                    f"the database already has {count(accounts or 0, 'account')}; nothing "
                    "changed. Demo accounts go into an empty database; --force resets just "
                    "them with new passwords, leaving the others alone",
                    REFUSED,
                )
            for account in DEMO_ACCOUNTS:
                user = await find_user(db, account.email)
                if user is None:
                    user = User(email=account.email)
                    db.add(user)
                    created.append(account.email)
                else:
                    await sessions.revoke_user_sessions(db, user.id)
                    reset.append(account.email)
                user.hashed_password = hashes[account.email]
                user.name = account.name
                user.phone = account.phone
                user.role = account.role
                user.is_active = True
                user.is_verified = True
    except IntegrityError:  # a demo email registered between the lookup and the insert
        raise CommandError(
            "a demo email was registered just now; nothing changed, run again", REFUSED
        ) from None
    return table(passwords) + "\n" + summary(created, reset)


def table(passwords: dict[str, str]) -> str:
    rows = [("email", "password", "role", "name")] + [
        (a.email, passwords[a.email], a.role.value, a.name) for a in DEMO_ACCOUNTS
    ]
    padded = range(3)  # the name, last, is not padded
    widths = [max(len(row[i]) for row in rows) for i in padded]
    return "\n".join(
        "  ".join([*(row[i].ljust(widths[i]) for i in padded), row[3]]) for row in rows
    )


def summary(created: list[str], reset: list[str]) -> str:
    lines = []
    if created:
        lines.append(f"Created: {', '.join(created)}.")
    if reset:
        lines.append(
            f"Reset with new passwords, sessions ended: {', '.join(reset)}. "
            "Other accounts untouched."
        )
    lines.append("All verified. The passwords are shown only this once.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    if args.transactions is not None:
        return str(asyncio.run(seed_orders(args.transactions, args.users)))
    return asyncio.run(seed(args.force))


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(value.replace("_", ""))
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be {low}..{high}")
        return number

    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--demo",
        action="store_true",
        help="the demo accounts; confirms that these are demo accounts with printed passwords",
    )
    what.add_argument(
        "--transactions",
        type=_count(1, 10_000_000),
        metavar="N",
        help=(
            "N orders (with their history) over --users confirmed users, one of whom holds a"
            " tenth of them, with a progress bar (benchmarks, QA)"
        ),
    )
    parser.add_argument(
        "--users",
        type=_count(1, 1_000_000),
        default=10_000,
        metavar="U",
        help="with --transactions: how many users to create (default 10000)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help=(
            "when the database has accounts: reset the demo accounts (new passwords, sessions"
            " ended), create missing ones, leave the others alone"
        ),
    )


COMMAND = Command(
    name="seed",
    help="create the demo accounts for QA, or a large order book (--transactions N)",
    description=(
        f"--demo: create the demo accounts {DEMO_EMAILS} (one admin, two users, all"
        " verified) with fresh passwords, printed once. Only into an empty database, unless"
        " --force. --transactions N: N orders over --users new confirmed users (a tenth to"
        " the first one), for benchmarks. Exit status: 0 done, 1 refused (nothing changed),"
        " 2 usage."
    ),
    configure=configure,
    run=run,
)
