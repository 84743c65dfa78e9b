"""`python -m app create-admin`: creates an admin with the given or typed password; an
existing account is never taken over silently, only promoted with `--promote`.

Each test runs the CLI as a subprocess against the test's migrated database, and checks
what the database holds afterwards, not only the exit status.
"""

import os
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from app.types.enums import UserRole
from tests.cli.helpers import (
    TIMEOUT,
    cli,
    cli_env,
    login_status,
    one_line,
    stored_user,
    user_count,
)
from tests.conftest import ROOT, client_for
from tests.helpers import login, register, signed_in

# Makes the pseudo-terminal argv[1] the controlling terminal of the new session (a session
# leader opening a terminal acquires it), then runs the rest of argv, as a shell would.
ATTACH_TERMINAL = (
    "import os, sys; os.close(os.open(sys.argv[1], os.O_RDWR));"
    " os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


@contextmanager
def pseudo_terminal() -> Iterator[tuple[int, str]]:
    """The master side's fd, and the terminal's path for the process to open."""
    master, slave = os.openpty()
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


def on_terminal(terminal: str, *args: str) -> list[str]:
    """`python -m app *args` with `terminal` as its controlling terminal (its /dev/tty)."""
    return [sys.executable, "-c", ATTACH_TERMINAL, terminal, "-m", "app", *args]


def cli_with_terminal_but_no_stdin(database_url: str, *args: str) -> subprocess.CompletedProcess:
    """The CLI with a controlling terminal but stdin from /dev/null. Anything that waited
    for typing on that terminal would time out (30 s) instead of going unnoticed."""
    with pseudo_terminal() as (_, terminal):
        return subprocess.run(
            on_terminal(terminal, *args),
            cwd=ROOT,
            env=cli_env(database_url),
            capture_output=True,
            encoding="utf-8",
            timeout=30,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            check=False,
        )


def cli_on_terminal(database_url: str, *args: str, typed: list[str]) -> tuple[int, str]:
    """Run the CLI in a terminal of its own (its controlling terminal, stdin, stdout and
    stderr), typing each of `typed` once a password prompt has appeared. Returns the exit
    status and what the terminal showed."""
    with pseudo_terminal() as (master, terminal):
        with open(terminal, "r+b", buffering=0) as tty:
            process = subprocess.Popen(
                on_terminal(terminal, *args),
                cwd=ROOT,
                env=cli_env(database_url),
                stdin=tty,
                stdout=tty,
                stderr=tty,
                start_new_session=True,
            )
        try:
            status, shown = _converse(process, master, typed)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return status, shown.replace("\r\n", "\n")


def _converse(process: subprocess.Popen, master: int, typed: list[str]) -> tuple[int, str]:
    shown = bytearray()
    deadline = time.monotonic() + TIMEOUT

    def read_until(done: Callable[[str], bool]) -> None:
        while not done(shown.decode("utf-8", "replace")):
            if process.poll() is not None and not select.select([master], [], [], 0)[0]:
                return  # it has exited and everything it showed has been read
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; the terminal showed: {shown.decode(errors='replace')!r}"
            if select.select([master], [], [], min(left, 0.1))[0]:
                shown.extend(os.read(master, 4096))

    for n, text in enumerate(typed, start=1):
        read_until(lambda screen, n=n: screen.count("assword: ") >= n)
        os.write(master, f"{text}\n".encode())
    read_until(lambda screen: False)  # to the end of its output
    return process.wait(timeout=TIMEOUT), shown.decode("utf-8")


def shown_date(api_timestamp: str) -> str:
    return datetime.fromisoformat(api_timestamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- an existing account is not taken over ---------------------------------------------


async def test_an_account_registered_first_is_not_taken_over(app, database_url):
    """The attack: someone registers a likely staff address first; the operator then runs
    create-admin for it with a password of their own."""
    async with client_for(app) as attacker:
        squatter = await signed_in(
            attacker, email="boss@example.com", password="attacker password", name="Mallory"
        )
        result = cli(
            database_url,
            "create-admin",
            "--email",
            "boss@example.com",
            "--password",
            "operator password",
        )
        assert result.returncode == 1
        assert result.stdout == ""
        reason = one_line(result.stderr)
        assert reason.startswith("error: boss@example.com already has an account")
        assert "'Mallory'" in reason
        assert shown_date(squatter["created_at"]) in reason
        assert "not verified" in reason
        assert "--promote" in reason

        user = await stored_user(app, "boss@example.com")
        assert user is not None
        assert user.role == UserRole.USER
        assert user.id == uuid.UUID(squatter["id"])
        # the attacker is still a plain user, signed in, with their own password
        assert (await attacker.get("/users/me")).json()["role"] == "user"
        assert (await attacker.get("/admin/users")).status_code == 403
    assert await login_status(app, "boss@example.com", "operator password") == 400
    assert await login_status(app, "boss@example.com", "attacker password") == 204


async def test_an_existing_admin_is_refused_and_keeps_its_password(app, database_url):
    created = cli(
        database_url, "create-admin", "--email", "boss@example.com", "--password", "boss password 1"
    )
    assert created.returncode == 0, created.stderr
    again = cli(
        database_url,
        "create-admin",
        "--email",
        "boss@example.com",
        "--password",
        "boss password 2",
        "--name",
        "Начальник",
    )
    assert again.returncode == 1
    reason = one_line(again.stderr)
    assert reason.startswith("error: boss@example.com is already an admin")
    assert "password was not reset" in reason

    user = await stored_user(app, "boss@example.com")
    assert user is not None and user.name == "Администратор"
    assert await login_status(app, "boss@example.com", "boss password 2") == 400
    assert await login_status(app, "boss@example.com", "boss password 1") == 204


# --- --promote -------------------------------------------------------------------------


async def test_promote_shows_the_account_promotes_it_and_ends_its_sessions(app, database_url):
    async with client_for(app) as client:
        user = await signed_in(client, name="Иван Петров")
        result = cli(database_url, "create-admin", "--email", user["email"], "--promote")
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        assert user["email"] in result.stdout
        assert "'Иван Петров'" in result.stdout
        assert shown_date(user["created_at"]) in result.stdout
        assert "not verified" in result.stdout
        assert "promoted to admin" in result.stdout

        assert (await stored_user(app, user["email"])).role == UserRole.ADMIN
        assert (await client.get("/users/me")).status_code == 401  # a role change ends them
        await login(client, user["email"], user["password"])  # their own password, unchanged
        assert (await client.get("/users/me")).json()["role"] == "admin"
        assert (await client.get("/admin/users")).status_code == 200


async def test_promote_an_admin_changes_nothing(app, database_url):
    async with client_for(app) as client:
        user = await signed_in(client)
        first = cli(database_url, "create-admin", "--email", user["email"], "--promote")
        assert first.returncode == 0, first.stderr
        await login(client, user["email"], user["password"])
        again = cli(database_url, "create-admin", "--email", user["email"], "--promote")
        assert again.returncode == 0, again.stderr
        assert "already an admin; nothing changed" in again.stdout
        assert (await client.get("/users/me")).status_code == 200  # this session was kept


async def test_promote_without_an_account_creates_nothing(app, database_url):
    result = cli(database_url, "create-admin", "--email", "nobody@example.com", "--promote")
    assert result.returncode == 1
    reason = one_line(result.stderr)
    assert "nobody@example.com" in reason and "nothing to promote" in reason
    assert await user_count(app) == 0


async def test_promote_refuses_a_password_or_details_it_would_not_set(app, database_url):
    async with client_for(app) as client:
        user = await register(client)
    for extra in (("--password", "operator password"), ("--name", "Boss"), ("--phone", "")):
        result = cli(database_url, "create-admin", "--email", user["email"], "--promote", *extra)
        assert result.returncode == 2, extra
        reason = one_line(result.stderr)
        assert f"{extra[0]} cannot be used with --promote" in reason
    stored = await stored_user(app, user["email"])
    assert stored.role == UserRole.USER
    assert await login_status(app, user["email"], "operator password") == 400
    assert await login_status(app, user["email"], user["password"]) == 204


# --- creating --------------------------------------------------------------------------


async def test_create_sets_the_given_password(app, database_url):
    result = cli(
        database_url, "create-admin", "--email", "Boss@Example.com", "--password", "boss password 1"
    )
    assert result.returncode == 0, result.stderr
    assert one_line(result.stdout) == "boss@example.com created as admin"
    assert await login_status(app, "boss@example.com", "boss password 2") == 400
    async with client_for(app) as client:
        await login(client, "boss@example.com", "boss password 1")
        me = (await client.get("/users/me")).json()
        assert me["role"] == "admin"
        assert me["name"] == "Администратор"
        assert me["phone"] is None
        assert (await client.get("/admin/users")).status_code == 200


async def test_create_asks_for_the_password_twice_on_a_terminal(app, database_url):
    status, shown = cli_on_terminal(
        database_url,
        "create-admin",
        "--email",
        "boss@example.com",
        typed=["typed password 1", "typed password 1"],
    )
    assert status == 0, shown
    assert "Password: " in shown and "Repeat the password: " in shown
    assert "typed password" not in shown  # not echoed
    assert "boss@example.com created as admin" in shown
    assert await login_status(app, "boss@example.com", "typed password 1") == 204


async def test_create_refuses_two_different_typed_passwords(app, database_url):
    status, shown = cli_on_terminal(
        database_url,
        "create-admin",
        "--email",
        "boss@example.com",
        typed=["typed password 1", "typed password 2"],
    )
    assert status == 2, shown
    assert "error: the two passwords differ" in shown
    assert await user_count(app) == 0


async def test_create_without_a_terminal_or_password_refuses_at_once(app, database_url):
    """stdin is not a terminal, though the process has one (a script run from a shell,
    `make admin < /dev/null`): it must refuse, not wait for someone to type there."""
    result = cli_with_terminal_but_no_stdin(
        database_url, "create-admin", "--email", "boss@example.com"
    )
    assert result.returncode == 2
    reason = one_line(result.stderr)
    assert "not a terminal" in reason and "--password" in reason
    assert await user_count(app) == 0


def test_help_warns_that_a_password_argument_lands_in_shell_history(tmp_path):
    result = cli(f"sqlite+aiosqlite:///{tmp_path}/unused.db", "create-admin", "--help")
    assert result.returncode == 0
    options = result.stdout.split("options:", 1)[1]
    password_help = options.split("--password PASSWORD", 1)[1].split("--name NAME", 1)[0]
    assert "shell history" in " ".join(password_help.split())


async def test_create_rejects_bad_input(app, database_url):
    for args, reason in (
        (("--email", "a@example.com", "--password", "short"), "at least 8"),
        (("--email", "a@example.com", "--password", "A@example.com"), "not be the email"),
        (("--email", "nope", "--password", "long enough"), "invalid email"),
        (("--email", "a@example.com", "--name", "", "--password", "long enough"), "invalid name"),
        (
            ("--email", "a@example.com", "--name", "a\x01b", "--password", "long enough"),
            "invalid name",
        ),
        (
            ("--email", "a@example.com", "--phone", "123", "--password", "long enough"),
            "invalid phone",
        ),
    ):
        result = cli(database_url, "create-admin", *args)
        assert result.returncode == 2, args
        assert reason in one_line(result.stderr), args
    assert await user_count(app) == 0
