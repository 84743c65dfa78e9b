"""`python -m app create-admin`: create an admin, or promote an existing account on request.

    python -m app create-admin --email E [--name N] [--phone P] [--password P]
    python -m app create-admin --email E --promote

Creating asks for the password twice, hidden, when stdin is a terminal; `--password` is
for scripts and lands in shell history. Without a terminal and without `--password` it
refuses instead of waiting for input.

An email that already has an account is never taken over silently: emails are not
verified yet, so anyone can register a likely staff address first. Without `--promote` the
command refuses and names the account; with `--promote` it shows whose account it is,
makes it an admin and ends its sessions. The account keeps its own password, so
`--password` (and `--name`, `--phone`) are refused together with `--promote`.

Exit status: 0 done; 1 refused because of what is in the database; 2 bad input. Nothing
changes in the database unless the status is 0.
"""

import argparse
import asyncio
import getpass
import sys
from datetime import UTC

from fastapi_users import exceptions
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from app.auth import sessions
from app.cli.common import (
    BAD_INPUT,
    REFUSED,
    Command,
    CommandError,
    find_user,
    transaction,
    validated,
)
from app.core.security import PasswordHasher
from app.types.enums import UserRole
from app.users.manager import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, check_password
from app.users.models import User
from app.users.schemas import Email, Name, Phone

DEFAULT_NAME = "Администратор"


class AdminCreate(BaseModel):
    email: Email
    name: Name
    phone: Phone | None = None


class PromoteTarget(BaseModel):
    email: Email


def describe(user: User) -> str:
    """Who the account is, on one line, for the operator to recognise (or not)."""
    created = user.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    verified = "verified" if user.is_verified else "not verified"
    active = "active" if user.is_active else "deactivated"
    # repr() escapes whatever could disguise the name on a terminal (bidi marks and such).
    return f"name {user.name!r}, created {created}, {verified}, {active}"


def already_has_account(user: User) -> CommandError:
    if user.role == UserRole.ADMIN:
        reason = (
            f"{user.email} is already an admin ({describe(user)}); "
            "nothing changed and its password was not reset"
        )
    else:
        reason = (
            f"{user.email} already has an account ({describe(user)}); "
            "to make it an admin, run again with --promote"
        )
    return CommandError(reason, REFUSED)


async def refuse_if_taken(email: str) -> None:
    """Checked before asking for a password, so nobody types one for nothing."""
    async with transaction() as db:
        user = await find_user(db, email)
        if user is not None:
            raise already_has_account(user)


async def create(data: AdminCreate, password: str) -> str:
    hashed = await PasswordHasher().hash(password)
    try:
        async with transaction() as db:
            user = await find_user(db, data.email)  # again: it may have been registered since
            if user is not None:
                raise already_has_account(user)
            db.add(
                User(
                    email=data.email,
                    hashed_password=hashed,
                    name=data.name,
                    phone=data.phone,
                    role=UserRole.ADMIN,
                    is_verified=True,
                )
            )
    except IntegrityError:  # registered between the check and the insert
        raise CommandError(
            f"{data.email} was registered just now; nothing changed, run again to see by whom",
            REFUSED,
        ) from None
    return f"{data.email} created as admin"


async def promote(email: str) -> str:
    async with transaction() as db:
        user = await find_user(db, email)
        if user is None:
            raise CommandError(
                f"no account has the email {email}, so there is nothing to promote; "
                "to create an admin, run again without --promote",
                REFUSED,
            )
        account = f"Account: {user.email} ({describe(user)}, role {user.role.value})"
        if user.role == UserRole.ADMIN:
            return f"{account}\n{user.email} is already an admin; nothing changed"
        user.role = UserRole.ADMIN
        await sessions.revoke_user_sessions(db, user.id)  # a role change ends them
        result = f"{user.email} promoted to admin; their sessions were ended"
        if not user.is_active:
            result += "; the account is deactivated, so they cannot sign in until reactivated"
        return f"{account}\n{result}"


def ask_password(email: str) -> str:
    """Twice, hidden, from the terminal; never waits on a stdin that is not one."""
    if not sys.stdin.isatty():
        raise CommandError(
            "no password given and stdin is not a terminal to ask for one: "
            "run it in a terminal, or pass --password",
            BAD_INPUT,
        )
    try:
        password = getpass.getpass("Password: ")
        check_password(password, email)  # before asking again
        if getpass.getpass("Repeat the password: ") != password:
            raise CommandError("the two passwords differ; nothing changed", BAD_INPUT)
    except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C at a prompt
        print(file=sys.stderr)  # the cursor is still after the prompt
        raise CommandError("no password entered; nothing changed", BAD_INPUT) from None
    return password


def create_admin(args: argparse.Namespace) -> str:
    if args.promote:
        extra = [
            flag
            for flag, value in (
                ("--password", args.password),
                ("--name", args.name),
                ("--phone", args.phone),
            )
            if value is not None
        ]
        if extra:
            raise CommandError(
                f"{', '.join(extra)} cannot be used with --promote: "
                "the account keeps its own password, name and phone",
                BAD_INPUT,
            )
        target = validated(PromoteTarget, email=args.email)
        return asyncio.run(promote(target.email))

    name = DEFAULT_NAME if args.name is None else args.name
    data = validated(AdminCreate, email=args.email, name=name, phone=args.phone)
    asyncio.run(refuse_if_taken(data.email))
    if args.password is None:
        password = ask_password(data.email)
    else:
        password = args.password
        check_password(password, data.email)
    return asyncio.run(create(data, password))


def run(args: argparse.Namespace) -> str:
    try:
        return create_admin(args)
    except exceptions.InvalidPasswordException as exc:  # the password rules' reason
        raise CommandError(exc.reason, BAD_INPUT) from None


def configure(admin: argparse.ArgumentParser) -> None:
    admin.add_argument("--email", required=True, help="the admin's email")
    admin.add_argument(
        "--password",
        help=(
            f"the new admin's password ({PASSWORD_MIN_LENGTH}-{PASSWORD_MAX_LENGTH} characters)."
            " Better left out: a password given here lands in shell history and is visible"
            " to other users in the process list; without it, you are asked twice on the"
            " terminal. Needed when stdin is not a terminal. Not accepted with --promote"
        ),
    )
    admin.add_argument(
        "--name", help=f"the new admin's name (default: {DEFAULT_NAME}); not with --promote"
    )
    admin.add_argument("--phone", help="the new admin's phone, optional; not with --promote")
    admin.add_argument(
        "--promote",
        action="store_true",
        help=(
            "make the existing account with this email an admin and end its sessions; it"
            " keeps its own password. Emails are not verified yet, so anyone may have"
            " registered the address: check the account shown is really theirs"
        ),
    )


COMMAND = Command(
    name="create-admin",
    help="create an admin, or promote an existing account with --promote",
    description=(
        "Create an admin account, or with --promote make an existing account an admin. "
        "An email that already has an account is refused unless --promote is given. "
        "Exit status: 0 done, 1 refused (nothing changed), 2 bad input."
    ),
    configure=configure,
    run=run,
)
