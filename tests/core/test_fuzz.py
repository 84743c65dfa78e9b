"""Schemathesis over the OpenAPI schema the served app publishes, against that server:
whatever the input — valid, invalid, odd bytes — no operation answers with a 5xx, and
every answer is one the schema declares: its status, its content type, its headers and a
body that matches the declared schema (every error `{code, detail, message}`).

It runs the `st` CLI (a separate process) against `live_server` — `uvicorn app.main:app`
with the flags of `make run`, in a subprocess on 127.0.0.1 (tests/server.py) — signed in as
an admin, so the gated and authenticated routes are explored too. The suite runs it on
SQLite and, in CI, on PostgreSQL (where e.g. NUL characters in text used to be a 500).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import app.main
from app.auth.cookie import COOKIE_NAME
from app.core.bodylimit import MAX_HEADER_BYTES
from app.users.schemas import REGISTRATION_EXAMPLES
from tests.conftest import LiveServer
from tests.helpers import new_user_data, session_cookie
from tests.server import send_head, service_env

ST = Path(sys.executable).with_name("st")
# Operations that end the fuzzer's own session; their behaviour has tests of its own.
SESSION_ENDING = ("/auth/logout", "/auth/logout-all", "/users/me/sessions/{session_id}")
CHECKS = (
    "not_a_server_error",
    # Each response's status is one the operation declares (shared errors included) ...
    "status_code_conformance",
    # ... with the declared media type ...
    "content_type_conformance",
    # ... the declared headers (Set-Cookie, Retry-After) as declared ...
    "response_headers_conformance",
    # ... and a body that validates against the declared schema (ErrorBody for errors).
    "response_schema_conformance",
)
# Bounded: about 800 requests signed in and 450 without, 30-60 s on two busy cores in all;
# the seed makes a failure replayable (`st run ... --seed`).
MAX_EXAMPLES = 30
MAX_EXAMPLES_ANONYMOUS = 10
SEED = 20261126
# An admin route answered 2xx to the fuzzer (uvicorn's access log): it really was signed in.
ADMIN_SUCCESS = re.compile(r'"(GET|PATCH) /admin/users\S* HTTP/1\.1" 2\d\d ')


@pytest.fixture
def live_server_settings(make_settings):
    # With a webhook secret, the webhook answers what it would in production (400 to an
    # unsigned call), not the 503 of an unconfigured one.
    return make_settings(
        RATE_LIMIT_ENABLED=False, PAYMENT_WEBHOOK_SECRET="whsec_fuzz_0123456789abcdef"
    )


def server_log(server: LiveServer, tail: int = 4000) -> str:
    return server.log.read_text(errors="replace")[-tail:] if server.log else ""


def sign_in_as_admin(server: LiveServer, workdir: Path) -> str:
    """Create an admin with the CLI (as `make admin` does, on the server's settings, in a
    directory without .env), log in; the session cookie's value."""
    user = new_user_data()
    created = subprocess.run(
        [sys.executable, "-m", "app", "create-admin", "--email", user["email"],
         "--password", user["password"], "--name", user["name"]],
        cwd=workdir, env=service_env(server.settings), capture_output=True, text=True,
        timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    response = httpx.post(
        f"{server.origin}/auth/login",
        data={"username": user["email"], "password": user["password"]},
    )
    assert response.status_code == 204, response.text
    header = session_cookie(response)
    assert header is not None
    return header.split(";", 1)[0].removeprefix(f"{COOKIE_NAME}=")


def run_schemathesis(server: LiveServer, workdir: Path, max_examples: int, *options: str) -> str:
    """`st run` with CHECKS against the server's /openapi.json; its report. Fails the test
    (with the report and the server's log) on any failed check."""
    command = [
        str(ST), "run", f"{server.origin}/openapi.json",
        "--checks", ",".join(CHECKS),
        "--max-examples", str(max_examples),
        "--seed", str(SEED),
        "--request-timeout", "10",
        "--generation-database", "none",
        "--no-color",
        *options,
    ]  # fmt: skip
    for path in SESSION_ENDING:
        command += ["--exclude-path", path]
    result = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL, env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )  # fmt: skip
    # The failures (from the top: the first ones tell most), else the end of the output.
    start = result.stdout.find(" FAILURES ")
    report = result.stdout[start : start + 12000] if start >= 0 else result.stdout[-6000:]
    report += result.stderr[-2000:]
    assert result.returncode == 0, f"{report}\n--- server log ---\n{server_log(server, 2000)}"
    assert re.search(r"\d+ passed", result.stdout), report
    return result.stdout


def test_every_answer_to_an_admin_is_declared_and_none_is_a_server_error(live_server, tmp_path):
    token = sign_in_as_admin(live_server, tmp_path)
    # The documented login example then signs in (204 with its Set-Cookie, checked against
    # the declared header), as it does for QA after they run the registration example.
    registration = REGISTRATION_EXAMPLES["customer"]["value"]
    assert httpx.post(f"{live_server.origin}/auth/register", json=registration).status_code == 201
    run_schemathesis(
        live_server, tmp_path, MAX_EXAMPLES, "--header", f"Cookie: {COOKIE_NAME}={token}"
    )
    # The fuzzer really was signed in as an admin: the admin routes answered it.
    log = server_log(live_server, tail=10**9)
    assert ADMIN_SUCCESS.search(log), f"no admin route answered 2xx:\n{server_log(live_server)}"
    response = httpx.get(
        f"{live_server.origin}/admin/users", headers={"Cookie": f"{COOKIE_NAME}={token}"}
    )
    assert response.status_code == 200


def test_every_answer_to_an_anonymous_client_is_declared(live_server, tmp_path):
    """Without a session: the 401s (and what is checked before them) conform too."""
    run_schemathesis(live_server, tmp_path, MAX_EXAMPLES_ANONYMOUS)


def test_the_live_server_is_the_app_make_run_serves(live_server):
    """What the fuzzer and the browser tests reach: app.main:app under `make run`'s flags."""
    origin = live_server.origin
    # The module-level app, the one `make run` and the Dockerfile serve: the same schema.
    assert httpx.get(f"{origin}/openapi.json").json() == app.main.app.openapi()
    # --http app.core.bodylimit:LimitedHttpToolsProtocol: an oversized head gets 431.
    port = int(origin.rsplit(":", 1)[1])
    status, _ = send_head(port, 2 * MAX_HEADER_BYTES)
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"
    # --no-proxy-headers: a client on 127.0.0.1 (uvicorn's default trusted proxy) cannot
    # pass itself off as another address with X-Forwarded-For.
    user = new_user_data()
    spoofed = {"X-Forwarded-For": "203.0.113.77"}
    with httpx.Client(base_url=origin, headers=spoofed) as http:
        assert http.post("/auth/register", json=user).status_code == 201
        login = {"username": user["email"], "password": user["password"]}
        response = http.post("/auth/login", data=login)
        assert response.status_code == 204
        # (the cookie is Secure: httpx would not send it back to http://127.0.0.1 itself)
        cookie = (session_cookie(response) or "").split(";", 1)[0]
        sessions = http.get("/users/me/sessions", headers={"Cookie": cookie}).json()["items"]
    assert [s["ip"] for s in sessions] == ["127.0.0.1"], sessions
