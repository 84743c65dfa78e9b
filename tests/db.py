"""A fresh database per test, built by the migrations.

SQLite: migrate one template file per test session, copy it for each test.
PostgreSQL (TEST_DATABASE_URL): migrate one template database, then
`CREATE DATABASE … TEMPLATE …` for each test and drop it afterwards.
"""

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg
from alembic.config import Config
from sqlalchemy.engine import make_url

from alembic import command

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_logger"] = False
    return config


def migrate(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


class SqliteDatabases:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.template = workdir / "template.db"
        migrate(f"sqlite+aiosqlite:///{self.template}")

    async def create(self) -> str:
        path = self.workdir / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite+aiosqlite:///{path}"

    async def drop(self, url: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(make_url(url).database + suffix).unlink(missing_ok=True)


class PostgresDatabases:
    def __init__(self, base_url: str):
        self.base = make_url(base_url)
        self.template = f"shop_tmpl_{os.getpid()}"
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.template}"'))
        asyncio.run(self._admin(f'CREATE DATABASE "{self.template}"'))
        migrate(self._url(self.template))

    def _url(self, name: str) -> str:
        return self.base.set(database=name).render_as_string(hide_password=False)

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(
            host=self.base.host or "127.0.0.1",
            port=self.base.port or 5432,
            user=self.base.username or "postgres",
            password=self.base.password,
            database=self.base.database or "postgres",
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create(self) -> str:
        name = f"shop_t_{uuid.uuid4().hex[:16]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return self._url(name)

    async def drop(self, url: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    def close(self) -> None:
        asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)'))
