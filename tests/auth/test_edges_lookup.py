"""The session lookup's driver: a failed first open is forgotten, the next request opens."""

import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.lookup import SessionLookup


async def test_a_failed_open_is_retried_by_the_next_fetch(database_url, tmp_path):
    source = make_url(database_url)
    if source.get_backend_name() != "sqlite":
        pytest.skip("opens a SQLite file that appears later")
    target = tmp_path / "later" / "shop.db"  # its directory does not exist yet
    engine = create_async_engine(f"sqlite+aiosqlite:///{target}")
    lookup = SessionLookup(engine)
    try:
        with pytest.raises(Exception, match="unable to open"):
            await lookup.fetch(uuid.uuid4(), uuid.uuid4())
        target.parent.mkdir()
        shutil.copyfile(Path(source.database), target)
        assert await lookup.fetch(uuid.uuid4(), uuid.uuid4()) is None  # opened: no such row
    finally:
        await lookup.close()
        await engine.dispose()
