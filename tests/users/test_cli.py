"""`python -m app create-admin`: non-interactive, idempotent, exit code 0."""

import os
import subprocess
import sys

from tests.conftest import ROOT, TEST_SECRET, client_for
from tests.helpers import login, signed_in


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": TEST_SECRET}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


async def test_create_admin_is_idempotent_and_can_log_in(app, database_url):
    args = ("create-admin", "--email", "Boss@Example.com", "--password", "boss password 1")
    first = cli(database_url, *args)
    assert first.returncode == 0, first.stderr
    assert "created as admin" in first.stdout
    second = cli(database_url, *args, "--name", "Начальник")
    assert second.returncode == 0, second.stderr
    assert "already an admin" in second.stdout
    async with client_for(app) as client:
        await login(client, "boss@example.com", "boss password 1")
        me = (await client.get("/users/me")).json()
        assert me["role"] == "admin"
        assert me["phone"] is None
        assert (await client.get("/admin/users")).status_code == 200


async def test_create_admin_promotes_an_existing_user_and_ends_their_sessions(app, database_url):
    async with client_for(app) as client:
        user = await signed_in(client)
        result = cli(database_url, "create-admin", "--email", user["email"], "--password", "x" * 10)
        assert result.returncode == 0, result.stderr
        assert "promoted" in result.stdout
        assert (await client.get("/users/me")).status_code == 401  # a role change ends them
        await login(client, user["email"], user["password"])  # the password is unchanged
        assert (await client.get("/users/me")).json()["role"] == "admin"


def test_create_admin_rejects_bad_input(database_url):
    result = cli(database_url, "create-admin", "--email", "a@example.com", "--password", "short")
    assert result.returncode == 2
    assert "at least 8" in result.stderr
    result = cli(database_url, "create-admin", "--email", "nope", "--password", "long enough")
    assert result.returncode == 2
    assert "email" in result.stderr
