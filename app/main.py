"""Application factory: settings, database, auth components, middleware, routers."""

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import admin, health
from app.auth.csrf import CrossOriginProtectionMiddleware
from app.auth.renewal import SessionRenewalMiddleware
from app.auth.reset_router import router as reset_router
from app.auth.router import router as auth_router
from app.auth.services import AuthComponents
from app.auth.sessions_router import router as sessions_router
from app.confirmation.router import me_router as confirmation_me_router
from app.confirmation.router import router as confirmation_router
from app.confirmation.service import ConfirmationPolicy
from app.core.bodylimit import BodyLimitMiddleware
from app.core.config import Settings, get_settings
from app.core.db import create_engine, create_sessionmaker
from app.core.errors import install_error_handlers
from app.core.logs import configure_logging
from app.docs import install_docs
from app.newsletters import service as newsletters
from app.newsletters.router import router as unsubscribe_router
from app.newsletters.service import Newsletters
from app.periodic import run_background_work
from app.services.email.dispatcher import Dispatcher
from app.services.email.outbox import Outbox
from app.services.email.service import EmailService
from app.transactions.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER
from app.transactions.router import router as transactions_router
from app.transactions.service import Transactions
from app.transactions.webhook import router as payments_router
from app.users.router import router as users_router

OPENAPI_TAGS = [
    {"name": "auth", "description": "Регистрация, вход и выход · Registration, login, logout"},
    {"name": "users", "description": "Мой аккаунт · My account"},
    {"name": "sessions", "description": "Мои сеансы · My sessions"},
    {"name": "transactions", "description": "Мои заказы · My orders"},
    {"name": "admin: users", "description": "Пользователи (для персонала) · Users (staff)"},
    {"name": "admin: emails", "description": "Письма (для персонала) · Emails (staff)"},
    {
        "name": "admin: newsletters",
        "description": "Рассылки (для персонала) · Newsletters (staff)",
    },
    {
        "name": "admin: transactions",
        "description": "Заказы (для персонала) · Orders (staff)",
    },
    {"name": "newsletters", "description": "Отписка от рассылки · Unsubscribe"},
    {
        "name": "payments",
        "description": "Уведомления платёжной системы · Payment provider webhooks",
    },
    {"name": "health", "description": "Проверки работоспособности · Health probes"},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(access_log=settings.ACCESS_LOG)
    engine = create_engine(
        settings.DATABASE_URL,
        echo=settings.DB_ECHO,
        connect_timeout=settings.DB_CONNECT_TIMEOUT_SECONDS,
        statement_timeout=settings.DB_STATEMENT_TIMEOUT_SECONDS,
    )
    auth = AuthComponents.build(settings, engine)
    sessionmaker = create_sessionmaker(engine)
    email = EmailService(settings)
    dispatcher = Dispatcher(sessionmaker, email, settings, load_content=newsletters.load_content)
    outbox = Outbox(settings.EMAIL_FROM, settings.EMAIL_LOCALE, wake=dispatcher.wake)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        background = asyncio.create_task(run_background_work(app, stop))
        try:
            yield
        finally:
            stop.set()
            await background
            await close_app(app)

    app = FastAPI(
        title="Shop API",
        version="0.1.0",
        description=(
            "Бэкенд интернет-магазина · Online shop backend. "
            "Sign in with `POST /auth/login` (the session cookie is set for you), "
            "then call any route."
        ),
        openapi_tags=OPENAPI_TAGS,
        docs_url=None,  # app.docs serves /docs and /redoc with local assets
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    app.state.auth = auth
    app.state.email = email
    app.state.outbox = outbox
    app.state.dispatcher = dispatcher
    app.state.confirmation = ConfirmationPolicy.from_settings(settings, outbox)
    app.state.newsletters = Newsletters.from_settings(settings, outbox)
    app.state.transactions = Transactions.from_settings(settings, outbox)

    install_error_handlers(app)
    # Added innermost first: renewal runs closest to the routes, CORS outermost.
    app.add_middleware(SessionRenewalMiddleware, cookie=auth.cookie, codec=auth.codec)
    app.add_middleware(CrossOriginProtectionMiddleware, trusted_origins=settings.TRUSTED_ORIGINS)
    # Outside everything that could read the body; inside CORS so a 413 carries its headers.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.MAX_BODY_BYTES)
    if settings.TRUSTED_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.TRUSTED_ORIGINS,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=["Content-Type", IDEMPOTENCY_HEADER],
            expose_headers=[REPLAYED_HEADER],
        )

    # FastAPI matches a request against the routes in the order they were included (an
    # included router is walked route by route, twice for the one that matches): the
    # probes and the per-request routes of a signed-in user come first. Measured: /healthz
    # last cost ~80 µs of CPU more per request than /healthz first (2026-11-27).
    health.install(app)
    app.include_router(users_router)
    app.include_router(confirmation_me_router)
    app.include_router(sessions_router)
    app.include_router(auth_router)
    app.include_router(reset_router)
    app.include_router(confirmation_router)
    app.include_router(transactions_router)
    app.include_router(payments_router)
    app.include_router(admin.router)
    app.include_router(unsubscribe_router)
    install_docs(app)
    return app


async def close_app(app: FastAPI) -> None:
    """Release what create_app opened (the lifespan calls this; so do tests)."""
    await app.state.auth.close()
    app.state.dispatcher.close()
    await app.state.engine.dispose()


app = create_app()
# Everything built so far (modules, routes, the app, its settings and engine) lives as long
# as the process: frozen, the garbage collector's full collections no longer walk it. On
# PostgreSQL, objects of requests waiting on the database survive young collections and
# pile up until a full one; each walked the ~10^5 objects of the app too, a 60-70 ms stop
# of the event loop (measured 2026-11-28, Intel Xeon, wrk -c16 on /users/me, one worker:
# p99 64 ms, and 6 ms with the collector off). Frozen: p99 7.0 ms, and 3 490 requests/s
# against 3 260 (CPU per request 292 µs against 313).
gc.freeze()
