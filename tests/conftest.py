"""Every test gets its own database built by the migrations, its own app and client."""

import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# app.main builds a module-level app from the environment at import time.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(48))

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings, load_settings
from app.main import close_app, create_app
from tests.db import PostgresDatabases, SqliteDatabases
from tests.server import serve

# The SMTP test server's fixtures (smtp_server, smtp_server_with_auth, silent_smtp_server).
pytest_plugins = ["tests.smtp"]

if os.environ.get("SHOP_TEST_CHEAP_HASHING") == "1":
    # `make mutate` only (scripts/mutate.py sets it): argon2 at its cheapest, 0.6 instead
    # of ~190 ms of CPU per hash here, so each mutant's tests take a fraction of the time.
    # Where hashing runs (threads, queueing, upgrades) is what the tests check, not its
    # cost; the regular suite and every served app keep the real parameters.
    from fastapi_users.password import PasswordHelper
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher
    from pwdlib.hashers.bcrypt import BcryptHasher

    import app.core.security as security_module

    # The same policy as fastapi-users' default (argon2 now, bcrypt still verified), cheaper.
    _CHEAP = PasswordHash(
        (Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1), BcryptHasher())
    )
    security_module.PasswordHelper = lambda: PasswordHelper(_CHEAP)  # type: ignore[assignment]

TEST_SECRET = secrets.token_urlsafe(48)
BASE_URL = "https://shop.test"


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        dbs = PostgresDatabases(url)
        yield dbs
        dbs.close()
    else:
        yield SqliteDatabases(tmp_path_factory.mktemp("db"))


@pytest.fixture
async def database_url(databases: Any) -> AsyncIterator[str]:
    url = await databases.create()
    yield url
    await databases.drop(url)


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "SECRET_KEY": TEST_SECRET,
            "DATABASE_URL": database_url,
            "TRUSTED_ORIGINS": "https://app.shop.test",
            # Compose email in a thread: a process per test app would cost a second each;
            # the process path has tests of its own (tests/newsletters/test_delivery.py).
            "OUTBOX_COMPOSE_PROCESSES": 0,
        }
        values.update(overrides)
        return load_settings(env_file=None, **values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def make_app(make_settings: Callable[..., Settings]) -> AsyncIterator[Callable[..., FastAPI]]:
    """Apps with other settings, closed at teardown whatever the test's assertions did: a
    close after a failed assertion never ran, and aiosqlite's thread then kept pytest alive."""
    built: list[FastAPI] = []

    def make(settings: Settings | None = None, **overrides: Any) -> FastAPI:
        application = create_app(settings or make_settings(**overrides))
        built.append(application)
        return application

    yield make
    for application in built:
        await close_app(application)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    try:
        yield application
    finally:
        await close_app(application)


def client_for(app: FastAPI, ip: str = "203.0.113.10") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@dataclass(frozen=True)
class LiveServer:
    origin: str
    settings: Settings
    log: Path | None = None  # the server's stdout and stderr


@pytest.fixture
def live_server_settings(make_settings: Callable[..., Settings]) -> Settings:
    """Override in a test module to serve different settings."""
    return make_settings()


@pytest.fixture
def live_server(
    live_server_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The service the way `make run` serves it (tests/server.py): `uvicorn app.main:app`
    with the Makefile's flags, in a subprocess on a free 127.0.0.1 port, in an empty
    directory, configured by these settings as environment variables. Stopped at teardown."""
    with serve(live_server_settings, tmp_path_factory.mktemp("live_server")) as served:
        yield LiveServer(served.base, live_server_settings, served.log)


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel completes them) and never answers."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def unreachable_port() -> Iterator[int]:
    """A port whose connections never complete, as with an address that drops packets: a
    listener with a backlog of one, filled and never accepted, so the kernel drops every
    further SYN and a connect waits for its own timeout."""
    listener = socket.socket()
    filler = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        filler.connect(("127.0.0.1", port))
        probe = socket.socket()
        probe.settimeout(0.3)
        with probe, pytest.raises(TimeoutError):  # the port really does not answer
            probe.connect(("127.0.0.1", port))
        yield port
    finally:
        filler.close()
        listener.close()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but not listening (so no one else takes it): connections are refused."""
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()
