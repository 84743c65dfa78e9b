"""`python -m app serve`, the image's command: WEB_CONCURRENCY workers, refused beyond one
without REDIS_URL, the request-size limits of `make run`, and ACCESS_LOG."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.cli import serve
from app.core.bodylimit import MAX_HEADER_BYTES
from tests.cli.helpers import cli_env, one_line
from tests.server import ROOT, free_port, make_run_flags, send_head

REDIS_URL = os.environ.get("TEST_REDIS_URL")


def refused(database_url: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", "serve", "--port", str(free_port())],
        cwd=ROOT,
        env={**cli_env(database_url), "REDIS_URL": "", **env},
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_more_than_one_worker_without_redis_is_refused_with_the_reason(database_url):
    result = refused(database_url, WEB_CONCURRENCY="2")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert "2 worker processes (WEB_CONCURRENCY) need REDIS_URL" in line
    assert "rate-limit" in line


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the default is one worker per CPU")
def test_the_default_is_one_worker_per_cpu(database_url):
    result = refused(database_url, WEB_CONCURRENCY="")
    assert result.returncode == 1
    assert f"{os.cpu_count()} worker processes (one per CPU by default)" in result.stderr


def test_the_dockerfile_runs_this_command_and_make_run_has_its_flags():
    cmd = next(
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")
    )
    assert cmd.rstrip().endswith('exec python -m app serve --host 0.0.0.0 --port 8000"]')
    flags = make_run_flags()
    assert flags[flags.index("--http") + 1] == serve.HTTP_PROTOCOL
    assert "--no-proxy-headers" in flags


@contextmanager
def serving(
    database_url: str, tmp_path: Path, **env: str
) -> Iterator[tuple[int, Path, subprocess.Popen]]:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            cwd=tmp_path,  # no .env
            env={**cli_env(database_url), "PYTHONPATH": str(ROOT), "REDIS_URL": "", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            yield port, log, proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


@pytest.mark.parametrize("access_log", [True, False])
def test_one_worker_serves_with_the_size_limits_and_access_log_as_set(
    database_url, tmp_path, access_log
):
    with serving(
        database_url, tmp_path, WEB_CONCURRENCY="1", ACCESS_LOG=str(access_log).lower()
    ) as (port, log, _):
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        status, _ = send_head(port, MAX_HEADER_BYTES * 2)
        assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
        time.sleep(0.2)
        text = log.read_text()
    assert ('"GET /readyz HTTP/1.1" 200' in text) is access_log, text


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not REDIS_URL, reason="needs a Redis server: set TEST_REDIS_URL (CI does)")
def test_two_workers_with_redis(database_url, tmp_path):
    with serving(database_url, tmp_path, WEB_CONCURRENCY="2", REDIS_URL=REDIS_URL) as (
        port,
        _,
        proc,
    ):
        workers = [
            p
            for p in _children(proc.pid)
            if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()
        ]
        assert len(workers) == 2, workers
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
