"""Running `python -m app` as a subprocess against a test's database, and looking at what
the database holds afterwards."""

import os
import subprocess
import sys

from fastapi import FastAPI
from sqlalchemy import select as sql_select

from app.users.models import User
from tests.conftest import ROOT, TEST_SECRET, client_for

TIMEOUT = 60


def cli_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "PYTHONIOENCODING": "utf-8",
    }


def cli(database_url: str, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """No terminal at all: stdin is /dev/null and, in a new session, the process has no
    controlling terminal either, so it can never read the terminal pytest runs in."""
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=cli_env(database_url),
        capture_output=True,
        encoding="utf-8",
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        check=False,
    )


async def stored_user(app: FastAPI, email: str) -> User | None:
    async with app.state.sessionmaker() as db:
        return await db.scalar(sql_select(User).where(User.email == email))


async def user_count(app: FastAPI) -> int:
    async with app.state.sessionmaker() as db:
        return len((await db.scalars(sql_select(User))).all())


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


async def login_status(app: FastAPI, email: str, password: str) -> int:
    async with client_for(app) as client:
        response = await client.post("/auth/login", data={"username": email, "password": password})
        return response.status_code
