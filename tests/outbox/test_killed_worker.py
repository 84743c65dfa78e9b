"""A dispatcher killed mid-batch (SIGKILL, a real `python -m app outbox run` process):
its claimed rows wait for the lease, then another dispatcher sends them."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import BrokenExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from app.services.email.composer import Composer
from app.services.email.dispatcher import SENT_RECORD_EVERY
from app.services.email.outbox import OutboxState
from app.services.email.service import EmailService
from tests.cli.helpers import TIMEOUT
from tests.cli.test_outbox import smtp_env
from tests.confirmation.helpers import queued
from tests.conftest import ROOT
from tests.services.email.test_composer import compose_job

COUNT = 20


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def spawned_workers() -> list[int]:
    """This process's children started by multiprocessing's spawn: composing processes."""
    return [
        pid
        for pid in children_of(os.getpid())
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


async def test_rows_of_a_killed_worker_go_out_after_the_lease(
    make_app, make_settings, database_url, smtp_server
):
    settings = make_settings(**smtp_server.settings_values(), OUTBOX_LEASE_SECONDS=60)
    app = make_app(settings)
    async with app.state.sessionmaker.begin() as db:
        for n in range(COUNT):
            app.state.outbox.add(
                db,
                to=f"u{n}@example.com",
                template="password_changed",
                data={"name": "Анна", "changed_at": "x"},
            )
    smtp_server.data_delay = 0.2
    env = smtp_env(database_url, smtp_server, OUTBOX_BATCH_SIZE=COUNT, OUTBOX_LEASE_SECONDS=60)
    worker = subprocess.Popen(  # noqa: ASYNC220  (returns at once; the worker runs beside)
        [sys.executable, "-m", "app", "outbox", "run"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await smtp_server.wait_for_messages(3, within=TIMEOUT)
        composers = children_of(worker.pid)  # the worker's email-composing process
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=TIMEOUT)
    assert composers, "the worker composes in a process of its own by default"
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in composers):
        assert time.monotonic() < deadline, "the composing process outlived its dead parent"
        await asyncio.sleep(0.1)
    smtp_server.data_delay = 0
    before_kill = {e.rcpt_tos[0] for e in smtp_server.envelopes}
    assert 3 <= len(before_kill) < COUNT

    # The rest is still leased to the dead worker: nobody may take it yet.
    rows = await queued(app)
    assert {r.state for r in rows} == {OutboxState.PENDING}
    assert all(r.lease_until is not None for r in rows)
    assert (await app.state.dispatcher.run_once()).claimed == 0

    lease_end = max(r.lease_until for r in rows)
    with time_machine.travel(lease_end + timedelta(seconds=1), tick=False):
        while (await app.state.dispatcher.run_once()).claimed:
            pass
    assert datetime.now(UTC) < lease_end  # real time never moved that far

    received = [e.rcpt_tos[0] for e in smtp_server.envelopes]
    assert set(received) == {f"u{n}@example.com" for n in range(COUNT)}
    # Sent again: only what the dead worker sent but had not yet recorded (at most a group).
    again = len(received) - COUNT
    assert again <= min(len(before_kill), SENT_RECORD_EVERY)
    assert {r.state for r in await queued(app)} == {OutboxState.SENT}


def test_a_composing_process_ends_when_the_composer_closes(settings):
    """The parent-watch thread must not keep a worker alive once its pool tells it to
    stop (it is a daemon thread): closing the composer ends its processes."""
    composer = Composer(EmailService(settings), processes=1)
    try:
        executor = composer._executor_now()
        busy = [executor.submit(time.sleep, 0.3) for _ in range(2)]  # work for two
        worker = executor.submit(os.getpid).result(timeout=TIMEOUT)
        assert all(future.done() for future in busy)  # done one after the other, before it
        # Exactly the one process asked for, started fresh (spawn: no fork of a process
        # with threads and open connections).
        assert spawned_workers() == [worker]
    finally:
        composer.close()
    deadline = time.monotonic() + 10
    try:
        while worker in children_of(os.getpid()):
            assert time.monotonic() < deadline, "a composing process outlived its composer"
            time.sleep(0.1)
    finally:  # one that outlived it would keep pytest from exiting: a red test, not a hang
        if worker in children_of(os.getpid()):
            os.kill(worker, signal.SIGKILL)


def kill_and_wait(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid in children_of(os.getpid()):  # reaped by its pool
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("when", ["between batches", "during a batch"])
async def test_a_composing_process_that_died_is_replaced_at_the_next_batch(settings, when):
    """Killed (out of memory, by hand) between batches or during one: a batch reading a
    dead process fails, and the next batch gets a fresh process, rather than every later
    batch failing on a broken pool until the dispatcher restarts."""
    composer = Composer(EmailService(settings), processes=1)
    try:
        first = composer._executor_now().submit(os.getpid).result(timeout=TIMEOUT)
        if when == "during a batch":
            stream = composer.stream([compose_job(n) for n in range(1, 4)])
            kill_and_wait(first)
            with pytest.raises(BrokenExecutor):
                await stream.get(3)
        else:
            kill_and_wait(first)
        emails = composer.stream([compose_job(4), compose_job(5)])
        assert [(await emails.get(n)).to for n in (4, 5)] == ["u4@example.com", "u5@example.com"]
        second = composer._executor_now().submit(os.getpid).result(timeout=TIMEOUT)
        assert second != first
    finally:
        composer.close()
        for pid in spawned_workers():
            os.kill(pid, signal.SIGKILL)
