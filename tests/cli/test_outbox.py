"""`python -m app outbox run|status` and `python -m app sweep`, run as a deployment runs
them: a subprocess on the test's database, sending to a real SMTP server."""

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.confirmation.models import AccountConfirmation
from tests.cli.helpers import TIMEOUT, cli_env
from tests.confirmation.helpers import confirmation_row, queued
from tests.conftest import ROOT, client_for
from tests.helpers import register


def smtp_env(database_url, server, **extra):
    env = cli_env(database_url)
    env.update({k: str(v) for k, v in server.settings_values().items()})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


async def test_status_then_run_once_delivers_what_is_queued(app, database_url, smtp_server):
    async with client_for(app) as client:
        first = await register(client)
        second = await register(client)
    env = smtp_env(database_url, smtp_server)

    status = run(env, "outbox", "status")
    assert status.returncode == 0, status.stderr
    assert "pending: 2" in status.stdout and "sent: 0" in status.stdout
    assert "oldest pending:" in status.stdout

    delivered = run(env, "outbox", "run", "--once")
    assert delivered.returncode == 0, delivered.stderr
    assert delivered.stdout.strip() == "sent 2, deferred 0, failed 0"
    assert sorted(e.rcpt_tos[0] for e in smtp_server.envelopes) == sorted(
        [first["email"], second["email"]]
    )
    after = run(env, "outbox", "status").stdout
    assert "pending: 0" in after and "sent: 2" in after and "oldest" not in after


async def test_run_once_with_the_server_down_defers(app, database_url, smtp_server):
    async with client_for(app) as client:
        await register(client)
    smtp_server.stop()
    result = run(smtp_env(database_url, smtp_server), "outbox", "run", "--once")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "sent 0, deferred 1, failed 0"
    [row] = await queued(app)
    assert row.attempts == 1 and "unreachable" in row.last_error


async def test_the_worker_delivers_until_sigterm(app, database_url, smtp_server):
    env = smtp_env(database_url, smtp_server, OUTBOX_POLL_SECONDS=0.2)
    worker = subprocess.Popen(  # noqa: ASYNC220  (returns at once; the worker runs beside)
        [sys.executable, "-m", "app", "outbox", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        encoding="utf-8",
    )
    try:
        async with client_for(app) as client:
            user = await register(client)
        await smtp_server.wait_for_messages(1, within=20)
        assert smtp_server.envelopes[0].rcpt_tos == [user["email"]]
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=TIMEOUT)
    assert worker.returncode == 0, err
    assert out.strip() == "stopped"


async def test_sweep_marks_expired_codes_false(app, database_url):
    async with client_for(app) as client:
        expired = await register(client)
        live = await register(client)
    async with app.state.sessionmaker.begin() as db:
        row = await confirmation_row(app, expired["email"])
        await db.execute(
            update(AccountConfirmation)
            .where(AccountConfirmation.user_id == row.user_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    result = run(cli_env(database_url), "sweep")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "1 expired confirmation(s) marked false; 0 unpaid order(s) marked not_paid_in_time; "
        "0 newsletter(s) finished; 0 old email(s) deleted; 0 expired idempotency key(s) deleted"
    )
    assert (await confirmation_row(app, expired["email"])).confirmation_status is False
    assert (await confirmation_row(app, live["email"])).confirmation_status is None
