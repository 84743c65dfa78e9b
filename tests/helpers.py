"""Small request helpers shared by tests."""

import asyncio
import itertools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, update

from app.auth.cookie import COOKIE_NAME
from app.types.enums import UserRole
from app.users.models import User

PASSWORD = "correct horse battery"
ON_POSTGRESQL = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="PostgreSQL only: set TEST_DATABASE_URL (CI does)",
)
_counter = itertools.count(1)


def new_user_data(**overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    data = {
        "email": f"user{n}@example.com",
        "password": PASSWORD,
        "name": f"Пользователь {n}",
        "phone": f"+7 912 000-{n // 100:02d}-{n % 100:02d}",
    }
    data.update(overrides)
    return data


@contextmanager
def sent_statements(app: Any) -> Iterator[list[str]]:
    """The SQL of every statement the app's engine sends while inside, in order."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def login_form() -> dict[str, str]:
    """A login form for an account that does not exist: refused with 400, counted by the
    per-IP and per-account limits."""
    return {"username": f"nobody-{uuid.uuid4().hex[:12]}@example.com", "password": "x" * 12}


async def register(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    data = new_user_data(**overrides)
    response = await client.post("/auth/register", json=data)
    assert response.status_code == 201, response.text
    return {**response.json(), "password": data["password"]}


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    response = await client.post("/auth/login", data={"username": email, "password": password})
    assert response.status_code == 204, response.text
    return response


async def signed_in(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    """Register and log in; the client now carries the session cookie."""
    user = await register(client, **overrides)
    await login(client, user["email"], user["password"])
    return user


def session_cookie(response: httpx.Response) -> str | None:
    """The Set-Cookie header this response sends for the session cookie, if any."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{COOKIE_NAME}="):
            return header
    return None


async def make_admin(app: Any, email: str) -> None:
    """Give a user the admin role directly in the database (as `create-admin --promote` would)."""
    async with app.state.sessionmaker() as db, db.begin():
        await db.execute(update(User).where(User.email == email).values(role=UserRole.ADMIN))


async def aiosqlite_threads_settle(url: str) -> None:
    """aiosqlite stops the worker thread of a connection that failed to open without waiting
    for it (omnilib/aiosqlite#241): give it a moment to finish while the test's event loop
    is still open, or it reports "Event loop is closed" from its thread."""
    if url.startswith("sqlite"):
        await asyncio.sleep(0.1)


class TcpProxy:
    """Forwards the TCP connections it accepts on a local port to `host:port`.

    The first `drop` connections are closed as soon as they are accepted (a server that
    drops connections). After `silence()`, nothing passes either way and nothing is
    closed (a server, or the network to it, gone silent)."""

    def __init__(self, host: str, port: int, *, drop: int = 0):
        self.target = (host, port)
        self.drop = drop
        self.connections = 0
        self.silent = False
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    def silence(self) -> None:
        self.silent = True

    async def __aenter__(self) -> "TcpProxy":
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._pipes:
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections <= self.drop:
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            self._pipes.add(asyncio.create_task(self._pipe(source, sink)))

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                if not self.silent:
                    sink.write(data)
                    await sink.drain()
        finally:
            sink.close()
