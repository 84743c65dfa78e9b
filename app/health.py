"""Liveness and readiness probes."""

import asyncio
import logging
from collections.abc import Awaitable
from enum import Enum

from fastapi import FastAPI, Request
from limits.aio.storage import Storage
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import ServiceUnavailable
from app.core.openapi import error_responses
from app.core.unavailable import DATABASE, REDIS

logger = logging.getLogger(__name__)

TAGS: list[str | Enum] = ["health"]


def install(app: FastAPI) -> None:
    """The probes as routes of the app itself, added before any router is included: FastAPI
    matches an included router's routes through an extra node (twice for the one that
    matches), ~6 µs more per probe request in-process (2026-11-27), a sixth of /healthz."""
    app.add_api_route(
        "/healthz",
        healthz,
        methods=["GET"],
        tags=TAGS,
        summary="Процесс работает · The process is up",
        description="Процесс запущен; базу не проверяет · The process is up; checks nothing else.",
    )
    app.add_api_route(
        "/readyz",
        readyz,
        methods=["GET"],
        tags=TAGS,
        summary="База данных и Redis доступны · The database and Redis answer",
        description=(
            "Готов ли сервис принимать запросы: база данных отвечает, и Redis, если лимиты "
            "хранятся в нём. При отказе `detail` называет, что недоступно, например "
            "`database unreachable`. Ready to serve: the database answers, and Redis when the "
            "rate limits use it; on 503, `detail` names what is unreachable."
        ),
        responses=error_responses("SERVICE_UNAVAILABLE"),
    )


async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def readyz(request: Request) -> dict[str, str]:
    """The database answers `SELECT 1`, and Redis a PING when the rate limits use it;
    each within DB_CONNECT_TIMEOUT_SECONDS, checked at the same time."""
    timeout = request.app.state.settings.DB_CONNECT_TIMEOUT_SECONDS
    checks: dict[str, Awaitable[bool]] = {DATABASE: _database_answers(request.app.state.engine)}
    storage = _redis_storage(request.app)
    if storage is not None:
        checks[REDIS] = storage.check()
    results = await asyncio.gather(
        *(_within(name, check, timeout) for name, check in checks.items())
    )
    down = [name for name, ok in zip(checks, results, strict=True) if not ok]
    if down:
        raise ServiceUnavailable(f"{' and '.join(down)} unreachable")
    return {"status": "ok"}


async def _database_answers(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True


async def _within(name: str, check: Awaitable[bool], seconds: float) -> bool:
    try:
        if await asyncio.wait_for(check, seconds):
            return True
        reason = "no answer"
    except TimeoutError:
        reason = f"no answer within {seconds:g} s"
    except Exception as exc:  # any failure means not ready
        reason = type(exc).__name__
    logger.warning("readiness: %s unreachable (%s)", name, reason)
    return False


def _redis_storage(app: FastAPI) -> Storage | None:
    """The rate limits' Redis storage, when they use one (REDIS_URL set, limits on)."""
    settings = app.state.settings
    limits = app.state.auth.limits
    if not settings.REDIS_URL or not limits.enabled:
        return None
    storage: Storage = limits.storage
    return storage
