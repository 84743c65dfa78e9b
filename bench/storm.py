"""The login storm: N threads, each POSTing correct credentials to /auth/login back to back.

The clients mostly wait for the server (argon2 costs ~0.13 s of server CPU per login), so
threads with the standard library's http.client are cheap. Every loop is bounded by a stop
event, a deadline and a maximum count, and talks only to 127.0.0.1.
"""

import http.client
import threading
import time

from bench.server import HOST, login_form

MAX_LOGINS_PER_CLIENT = 100_000
MAX_FAILURES = 20  # a misconfigured server (e.g. 429s) stops the storm early


class LoginStorm:
    def __init__(self, port: int, credentials: list[tuple[str, str]], max_seconds: float):
        self.port = port
        self.credentials = credentials
        self.max_seconds = max_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.ok = 0
        self.failures: list[str] = []

    def __enter__(self) -> "LoginStorm":
        deadline = time.monotonic() + self.max_seconds
        for i, (email, password) in enumerate(self.credentials):
            t = threading.Thread(
                target=self._loop, args=(email, password, deadline), name=f"login-{i}", daemon=True
            )
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def count(self) -> int:
        with self._lock:
            return self.ok

    def _loop(self, email: str, password: str, deadline: float) -> None:
        body = login_form(email, password)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        conn: http.client.HTTPConnection | None = None
        for _ in range(MAX_LOGINS_PER_CLIENT):
            if self._stop.is_set() or time.monotonic() >= deadline:
                break
            if len(self.failures) >= MAX_FAILURES:
                break
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
                conn.request("POST", "/auth/login", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 204:
                    with self._lock:
                        self.ok += 1
                else:
                    with self._lock:
                        self.failures.append(f"{email}: HTTP {resp.status}")
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.failures.append(f"{email}: {exc!r}")
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.1)
        if conn is not None:
            conn.close()
