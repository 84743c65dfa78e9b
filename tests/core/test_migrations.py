"""Alembic owns the schema: models and migrations agree; down and up work."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from app.core.db import Base, create_engine
from app.models import load_all_models
from tests.db import downgrade, migrate


def _diff(connection):
    load_all_models()
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


def _tables(connection):
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _model_tables():
    load_all_models()
    return set(Base.metadata.tables)


async def test_models_and_migrations_agree(database_url):
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        assert await conn.run_sync(_diff) == []
    await engine.dispose()


async def test_downgrade_and_upgrade_again(database_url):
    assert {"user", "auth_session", "account_confirmation", "email_outbox"} <= _model_tables()
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == _model_tables()
    await engine.dispose()

    await asyncio.to_thread(downgrade, database_url)  # alembic runs its own event loop
    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()
    await engine.dispose()

    await asyncio.to_thread(migrate, database_url)
    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == _model_tables()
        assert await conn.run_sync(_diff) == []
    await engine.dispose()
