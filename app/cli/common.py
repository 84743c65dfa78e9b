"""What the commands share: the command record, errors with their exit status, one
transaction against the configured database, input validation, the email lookup."""

import argparse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import get_settings
from app.core.db import create_engine, create_sessionmaker
from app.users.models import User
from app.users.schemas import canonical_email

# Exit statuses shared by all commands (0: done). A configuration error also exits with 1.
REFUSED = 1  # because of what is in the database; nothing changed
BAD_INPUT = 2  # like argparse's usage errors
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Command:
    """One subcommand of `python -m app`.

    `run` returns what to print on stdout (None: nothing) or raises CommandError.
    """

    name: str
    help: str  # one line in `python -m app --help`
    description: str  # `python -m app NAME --help`
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], str | None]


class CommandError(Exception):
    """A one-line reason for stderr and the exit status that goes with it."""

    def __init__(self, reason: str, status: int):
        super().__init__(reason)
        self.status = status


def validated(model: type[M], **values: object) -> M:
    """`values` checked by the same field rules as the API; a bad one is BAD_INPUT."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        reasons = "; ".join(
            f"invalid {'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise CommandError(" ".join(reasons.split()), BAD_INPUT) from None


@asynccontextmanager
async def database() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the configured database, with the service's timeouts; the engine is
    disposed when the block ends. Settings errors exit with their one-line reason."""
    settings = get_settings()
    engine = create_engine(
        settings.DATABASE_URL,
        connect_timeout=settings.DB_CONNECT_TIMEOUT_SECONDS,
        statement_timeout=settings.DB_STATEMENT_TIMEOUT_SECONDS,
    )
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def transaction() -> AsyncIterator[AsyncSession]:
    """One session, committed when the block ends without an exception and rolled back
    otherwise."""
    async with database() as sessionmaker, sessionmaker() as db, db.begin():
        yield db


async def find_user(db: AsyncSession, email: str) -> User | None:
    """The account with this email, in the canonical spelling it is stored under."""
    return await db.scalar(select(User).where(User.email == canonical_email(email)))
