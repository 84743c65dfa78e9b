"""The service as `make run` serves it, for tests that need a real server.

`uvicorn app.main:app` in a subprocess, with the flags of the Makefile's `run:` recipe, on
a free 127.0.0.1 port, in a directory without `.env`, configured only by environment
variables: the module-level app that `make run` and the Dockerfile serve, not an app a
test built (a test-built app once showed the right docs while the served one did not).
"""

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr

from app.core.config import Settings

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_SECONDS = 20
STOP_TIMEOUT_SECONDS = 5


def uvicorn_flags(command: str) -> list[str]:
    """The flags after `uvicorn app.main:app`, without --host/--port and their values."""
    words = shlex.split(command.split("uvicorn app.main:app", 1)[1])
    flags = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word in ("--host", "--port"):
            skip = True
        else:
            flags.append(word)
    return flags


def make_run_flags() -> list[str]:
    """The uvicorn flags of the Makefile's `run:` recipe."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun:", 1)[1].split("\n")[1]
    return uvicorn_flags(recipe)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return "" if value is None else str(value)


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as the environment variable the service reads it from (lists
    comma-separated), checked to read back as the very same settings."""
    # Unset ones (None) stay out: an empty WEB_CONCURRENCY, say, is an error to uvicorn.
    env = {
        name: _env_value(value)
        for name in Settings.model_fields
        if (value := getattr(settings, name)) is not None
    }
    assert Settings(_env_file=None, **env) == settings, "settings do not survive the environment"  # type: ignore[call-arg]
    return env


def service_env(settings: Settings) -> dict[str, str]:
    """This process's environment without any setting of its own, plus `settings`, with
    the project importable from anywhere."""
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.update(settings_env(settings), PYTHONPATH=str(ROOT))
    return env


@dataclass(frozen=True)
class Served:
    base: str
    port: int
    pid: int
    log: Path  # the server's stdout and stderr

    def memory_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM): resident now, and the most it has ever been."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        kib = dict(line.split(":", 1) for line in status.splitlines())
        return int(kib["VmRSS"].split()[0]) / 1024, int(kib["VmHWM"].split()[0]) / 1024

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uvicorn's lifespan shutdown closes the app's connections), SIGKILL if it
    has not exited within a few seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT_SECONDS)


@contextmanager
def serve(settings: Settings, workdir: Path) -> Iterator[Served]:
    """`uvicorn app.main:app --host 127.0.0.1 --port <free> <make run's flags>` in
    `workdir` (which must hold no `.env`), configured by `settings` through the
    environment; up once /healthz answers 200. Stopped on the way out, whatever happened."""
    assert not (workdir / ".env").exists(), f"{workdir} has a .env: the server would read it"
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "app.main:app",
        "--host", "127.0.0.1", "--port", str(port), *make_run_flags(),
    ]  # fmt: skip
    log_path = workdir / f"uvicorn-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=workdir, env=service_env(settings), stdin=subprocess.DEVNULL,
            stdout=log, stderr=log,
        )  # fmt: skip
    served = Served(f"http://127.0.0.1:{port}", port, proc.pid, log_path)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"uvicorn exited with {proc.returncode}: {shlex.join(command)}\n"
                    f"{served.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"uvicorn did not answer /healthz in {START_TIMEOUT_SECONDS} s: "
                    f"{shlex.join(command)}\n{served.output()}"
                )
            try:
                if httpx.get(f"{served.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        yield served
        assert proc.poll() is None, f"uvicorn died during the test:\n{served.output()}"
    finally:
        stop(proc)


_MIB = 1024 * 1024


def send_head(port: int, header_size: int) -> tuple[bytes | None, int]:
    """A GET whose X-Big header is `header_size` bytes, sent 1 MiB at a time; returns the
    status line (None when the server closed without one) and how much was sent."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            block = b"a" * _MIB
            while sent < header_size:
                sent += sock.send(block[: min(_MIB, header_size - sent)])
            sock.sendall(b"\r\n\r\n")
        except OSError:
            pass  # closed by the server while sending: read what it answered
        try:
            answer = sock.recv(4096)
        except OSError:
            answer = b""
    return (answer.split(b"\r\n", 1)[0] or None), sent
