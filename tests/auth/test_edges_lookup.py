"""The session lookup's driver: a failed first open is forgotten, the next request opens;
SQLite is read in the event loop, and a lock is waited for in aiosqlite's thread."""

import asyncio
import itertools
import shutil
import sqlite3
import time
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


async def test_sqlite_reads_in_the_loop_and_waits_for_a_lock_only_in_the_thread(
    database_url, tmp_path
):
    """The lookup reads without aiosqlite's thread; when the database is locked it reads
    again there, and the event loop keeps running while that read waits. (In WAL mode, the
    app's, readers are not locked out: this database is put in rollback-journal mode,
    where an exclusive transaction locks them out, to make the lock happen.)"""
    source = make_url(database_url)
    if source.get_backend_name() != "sqlite":
        pytest.skip("the in-loop read is SQLite's")
    target = tmp_path / "rollback-journal.db"
    shutil.copyfile(Path(source.database), target)
    setup = sqlite3.connect(target)
    setup.execute("PRAGMA journal_mode=DELETE")
    setup.close()
    engine = create_async_engine(f"sqlite+aiosqlite:///{target}")
    lookup = SessionLookup(engine)
    locker = sqlite3.connect(target, isolation_level=None)
    try:
        assert await lookup.fetch(uuid.uuid4(), uuid.uuid4()) is None  # opens the driver
        driver = lookup._driver
        threaded: list[str] = []
        original = driver._connection.execute_fetchall

        async def counted(sql, params):
            threaded.append(sql)
            return await original(sql, params)

        driver._connection.execute_fetchall = counted
        assert await lookup.fetch(uuid.uuid4(), uuid.uuid4()) is None
        assert threaded == []  # read in the loop

        locker.execute("BEGIN EXCLUSIVE")
        asyncio.get_running_loop().call_later(0.3, locker.rollback)  # releases the lock
        ticks: list[float] = []

        async def tick() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)  # the first tick
        started = time.monotonic()
        try:
            found = await lookup.fetch(uuid.uuid4(), uuid.uuid4())
        finally:
            ticker.cancel()
        waited = time.monotonic() - started
        ticks.append(time.monotonic())
    finally:
        locker.close()
        await lookup.close()
        await engine.dispose()
    assert found is None
    assert len(threaded) == 1  # the locked read went to the thread and waited there
    assert waited >= 0.25
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert max(gaps) < 0.2  # the loop ran on while the read waited for the lock
