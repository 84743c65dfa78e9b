"""The service under test: a fresh SQLite database, migrated, served by one uvicorn process."""

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from app.core.config import Settings

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


class BenchError(RuntimeError):
    """A setup step failed; the bench stops and exits non-zero."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def server_env(database_url: str, password_hash_threads: int) -> dict[str, str]:
    """The caller's environment without any app setting, plus the bench's settings.

    COOKIE_SECURE stays at its default (true), as users run it: the bench sends the
    cookie as a header, so the Secure attribute does not matter over plain http.
    """
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.update(
        SECRET_KEY=secrets.token_urlsafe(48),
        DATABASE_URL=database_url,
        RATE_LIMIT_ENABLED="false",  # the login storm would be throttled (429) otherwise
        PASSWORD_HASH_THREADS=str(password_hash_threads),
        DB_ECHO="false",
    )
    return env


def migrate(database_url: str, env: dict[str, str]) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(REPO / "alembic.ini"),
            "-x",
            f"url={database_url}",
            "upgrade",
            "head",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise BenchError(f"migration failed:\n{result.stdout}{result.stderr}")


def uvicorn_command(app: str) -> Callable[[int], list[str]]:
    """`uvicorn <app>`, one worker (uvloop, httptools, no access log) on a port."""

    def command(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--app-dir",
            str(REPO),
            "--host",
            HOST,
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]

    return command


def serve_command(port: int) -> list[str]:
    """The image's command, `python -m app serve` (app/cli/serve.py): WEB_CONCURRENCY
    workers, the access log as ACCESS_LOG says (the image sets it to false)."""
    return [sys.executable, "-m", "app", "serve", "--host", HOST, "--port", str(port)]


class Server:
    """A server process started in `workdir` (so no `.env` is read); by default
    `uvicorn app.main:app`, one worker."""

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str],
        cpus: str | None,
        command: Callable[[int], list[str]] | None = None,
        name: str = "server",
    ):
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log_path = workdir / f"{name}.log"
        cmd = (command or uvicorn_command("app.main:app"))(self.port)
        env = {
            **env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        }
        if cpus is not None:
            cmd = ["taskset", "-c", cpus, *cmd]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the server process (all its threads) and of
        its live descendants (uvicorn's worker processes, the email composing process)."""
        ticks: dict[int, int] = {}
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended meanwhile
                continue
            pid = int(stat.parent.name)
            parents[pid] = int(fields[1])
            ticks[pid] = int(fields[11]) + int(fields[12])
        total = 0
        for pid, ticks_used in ticks.items():
            ancestor = pid
            while ancestor > 1 and ancestor != self.proc.pid:
                ancestor = parents.get(ancestor, 0)
            if ancestor == self.proc.pid:
                total += ticks_used
        return total / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float = 30.0, path: str = "/healthz", expect: int = 200) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, _, _ = request(self.port, "GET", path)
                if status == expect:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"server not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Always called (try/finally): SIGTERM, then SIGKILL after 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its workers too
                self.proc.wait(timeout=10)
        self._log.close()


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def register(port: int, email: str, password: str, phone: str) -> None:
    body = json.dumps({"email": email, "password": password, "name": "Bench", "phone": phone})
    status, _, data = request(
        port, "POST", "/auth/register", body.encode(), {"Content-Type": "application/json"}
    )
    if status != 201:
        raise BenchError(f"register {email}: HTTP {status} {data[:300]!r}")


def login_form(email: str, password: str) -> bytes:
    return urllib.parse.urlencode({"username": email, "password": password}).encode()


def login_cookie(port: int, email: str, password: str, cookie_name: str) -> str:
    """Log in and return the session cookie's value from Set-Cookie."""
    status, headers, data = request(
        port,
        "POST",
        "/auth/login",
        login_form(email, password),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    if status != 204:
        raise BenchError(f"login {email}: HTTP {status} {data[:300]!r}")
    prefix = f"{cookie_name}="
    for value in headers.get_all("set-cookie") or []:
        if value.startswith(prefix):
            return value[len(prefix) :].split(";", 1)[0]
    raise BenchError(f"login {email}: no {cookie_name} cookie in the response")
