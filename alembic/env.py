"""Alembic environment: the URL comes from settings (or `-x url=...` / the caller's config)."""

import asyncio
import logging.config

from sqlalchemy.engine import Connection, make_url

from alembic import context
from app.core.config import load_database_settings
from app.core.db import Base, create_engine
from app.models import load_all_models

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

load_all_models()
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if url:
        return url
    return load_database_settings().DATABASE_URL


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url = _url()
    # Migrations may build indexes for minutes: no statement timeout; connecting is bounded.
    connect_timeout = load_database_settings().DB_CONNECT_TIMEOUT_SECONDS
    engine = create_engine(url, connect_timeout=connect_timeout, statement_timeout=None)
    connected = False
    try:
        async with engine.connect() as connection:
            connected = True
            await connection.run_sync(_run)
            await connection.commit()
    except Exception as exc:
        if connected:  # a migration failed: its traceback is what to read
            raise
        where = make_url(url).render_as_string(hide_password=True)
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split()) or type(exc).__name__
        raise SystemExit(f"Database error: cannot connect to {where}: {reason}") from None
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
