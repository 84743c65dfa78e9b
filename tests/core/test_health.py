import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI

from app.core.errors import CATALOGUE
from tests.conftest import client_for
from tests.helpers import aiosqlite_threads_settle

PROMPTLY = 2.0  # seconds


@pytest.fixture
def make_app(make_app: Callable[..., FastAPI]) -> Callable[..., FastAPI]:
    """Apps with a small connect timeout (closed by the conftest fixture)."""
    return lambda **overrides: make_app(**{"DB_CONNECT_TIMEOUT_SECONDS": 0.5, **overrides})


async def readyz(application: FastAPI) -> tuple[int, dict[str, Any], str | None, float]:
    async with client_for(application) as client:
        started = time.monotonic()
        response = await asyncio.wait_for(client.get("/readyz"), PROMPTLY * 3)
        elapsed = time.monotonic() - started
    if response.status_code != 200:
        await aiosqlite_threads_settle(application.state.settings.DATABASE_URL)
    return response.status_code, response.json(), response.headers.get("retry-after"), elapsed


def assert_not_ready(result: tuple[int, dict[str, Any], str | None, float], what: str) -> None:
    status, body, retry_after, elapsed = result
    assert status == 503
    assert (body["code"], body["detail"]) == ("SERVICE_UNAVAILABLE", f"{what} unreachable")
    assert body["message"] == CATALOGUE["SERVICE_UNAVAILABLE"].ru
    assert retry_after is not None and int(retry_after) > 0
    assert elapsed < PROMPTLY, f"answered after {elapsed:.2f} s"


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_the_database(client, make_app, tmp_path):
    assert (await client.get("/readyz")).status_code == 200
    url = f"sqlite+aiosqlite:///{tmp_path}/missing/x.db"
    result = await readyz(make_app(DATABASE_URL=url))
    assert_not_ready(result, "database")


async def test_readyz_is_bounded_by_the_connect_timeout(make_app, silent_port):
    # Probe: 60 s against a database that accepts connections and never answers.
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{silent_port}/x"
    assert_not_ready(await readyz(make_app(DATABASE_URL=url)), "database")


@pytest.mark.parametrize("kind", ["refused", "silent"])
async def test_readyz_checks_redis(make_app, request, kind):
    port = request.getfixturevalue(f"{kind}_port")
    result = await readyz(make_app(REDIS_URL=f"redis://127.0.0.1:{port}"))
    assert_not_ready(result, "redis")


async def test_readyz_names_both_when_both_are_down(make_app, refused_port, tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/missing/x.db"
    redis_url = f"redis://127.0.0.1:{refused_port}"
    result = await readyz(make_app(DATABASE_URL=url, REDIS_URL=redis_url))
    assert_not_ready(result, "database and redis")


async def test_readyz_ignores_redis_the_rate_limits_do_not_use(make_app, refused_port):
    redis_url = f"redis://127.0.0.1:{refused_port}"
    application = make_app(REDIS_URL=redis_url, RATE_LIMIT_ENABLED=False)
    assert (await readyz(application))[:2] == (200, {"status": "ok"})


@pytest.mark.skipif(
    not os.environ.get("TEST_REDIS_URL"),
    reason="needs a Redis server: set TEST_REDIS_URL (CI does, see .ci/run)",
)
async def test_readyz_with_redis_up(make_app):
    application = make_app(REDIS_URL=os.environ["TEST_REDIS_URL"])
    assert (await readyz(application))[:2] == (200, {"status": "ok"})
