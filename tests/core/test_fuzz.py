"""Schemathesis over the OpenAPI schema, against the real server: whatever the input —
valid, invalid, odd bytes — no operation answers with a 5xx.

It runs the `st` CLI (a separate process) against uvicorn on 127.0.0.1, signed in as an
admin, so the gated and authenticated routes are explored too. The suite runs it on
SQLite and, in CI, on PostgreSQL (where e.g. NUL characters in text used to be a 500).
"""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.auth.cookie import COOKIE_NAME
from tests.conftest import ROOT, LiveServer
from tests.helpers import new_user_data, session_cookie

ST = Path(sys.executable).with_name("st")
# Operations that end the fuzzer's own session; their behaviour has tests of its own.
SESSION_ENDING = ("/auth/logout", "/auth/logout-all", "/users/me/sessions/{session_id}")


@pytest.fixture
def live_server_settings(make_settings):
    return make_settings(RATE_LIMIT_ENABLED=False)


def sign_in_as_admin(server: LiveServer) -> str:
    """Create an admin with the CLI, log in; the session cookie's value."""
    user = new_user_data()
    with httpx.Client(base_url=server.origin) as http:
        env = {
            **os.environ,
            "DATABASE_URL": server.settings.DATABASE_URL,
            "SECRET_KEY": server.settings.SECRET_KEY.get_secret_value(),
        }
        created = subprocess.run(
            [sys.executable, "-m", "app", "create-admin", "--email", user["email"],
             "--password", user["password"], "--name", user["name"]],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert created.returncode == 0, created.stderr
        response = http.post(
            "/auth/login", data={"username": user["email"], "password": user["password"]}
        )
        assert response.status_code == 204
    header = session_cookie(response)
    return header.split(";", 1)[0].removeprefix(f"{COOKIE_NAME}=")


def test_no_operation_answers_with_a_server_error(live_server, tmp_path):
    token = sign_in_as_admin(live_server)
    command = [
        str(ST), "run", f"{live_server.origin}/openapi.json",
        "--checks", "not_a_server_error",
        "--header", f"Cookie: {COOKIE_NAME}={token}",
        "--max-examples", "30",
        "--seed", "20261126",
        "--no-color",
    ]
    for path in SESSION_ENDING:
        command += ["--exclude-path", path]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=900,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
    # the fuzzer really was signed in: the admin routes were exercised, not just refused
    response = httpx.get(
        f"{live_server.origin}/admin/users", headers={"Cookie": f"{COOKIE_NAME}={token}"}
    )
    assert response.status_code == 200
