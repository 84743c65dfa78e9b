"""`python -m app check-config`, and `make migrate` and the image running it before the
migrations: a bad setting stops them with its one-line reason before anything is migrated.

Everything here runs in a temporary directory (no .env unless the test writes one) with
every setting removed from the environment, as on a fresh machine.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import Settings
from tests.conftest import ROOT

GOOD_KEY = "0123456789abcdef" * 2  # 32 characters, as `openssl rand -hex 16` gives
BIN = Path(sys.executable).parent  # the virtualenv's: python, alembic, uvicorn
TIMEOUT = 60


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", **settings)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        args,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def check_config(cwd: Path, **settings: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "app", "check-config"], cwd, clean_env(**settings))


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def migrated_tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({}, "SECRET_KEY is required"),
        ({"SECRET_KEY": "short-secret-value"}, "SECRET_KEY must be at least 32 characters"),
        ({"SECRET_KEY": "k" * 40}, "SECRET_KEY looks typed, not generated"),
        (
            {"SECRET_KEY": GOOD_KEY, "DATABASE_URL": "nonsense"},
            "DATABASE_URL is not a database URL",
        ),
        (
            {"SECRET_KEY": GOOD_KEY, "DATABASE_URL": "foo://bar"},
            "DATABASE_URL 'foo' is not supported",
        ),
        # not a database setting: the whole of the service's settings are checked
        ({"SECRET_KEY": GOOD_KEY, "TRUSTED_ORIGINS": "*"}, "TRUSTED_ORIGINS"),
    ],
)
def test_a_bad_setting_is_one_line_and_status_1(tmp_path, settings, needle):
    result = check_config(tmp_path, **settings)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Configuration error: ")
    assert needle in lines[0]
    if settings.get("SECRET_KEY"):
        assert settings["SECRET_KEY"] not in result.stderr


def test_good_settings_print_nothing_and_touch_no_database(tmp_path):
    database = tmp_path / "app.db"
    result = check_config(tmp_path, SECRET_KEY=GOOD_KEY, DATABASE_URL=sqlite_url(database))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not database.exists()


def test_settings_come_from_dot_env_too(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"SECRET_KEY={GOOD_KEY}\nDATABASE_URL={sqlite_url(tmp_path / 'a.db')}\n")
    assert check_config(tmp_path).returncode == 0
    env_file.write_text("SECRET_KEY=too short\n")
    result = check_config(tmp_path)
    assert result.returncode == 1
    assert "SECRET_KEY must be at least 32 characters" in result.stderr


# --- before the migrations ---------------------------------------------------------------


def deployment(tmp_path: Path) -> Path:
    """A directory laid out like the image's /srv: alembic.ini and alembic/ (the app
    package comes from PYTHONPATH)."""
    workdir = tmp_path / "srv"
    workdir.mkdir()
    for name in ("alembic.ini", "alembic"):
        (workdir / name).symlink_to(ROOT / name)
    return workdir


def make_migrate(workdir: Path, **settings: str) -> subprocess.CompletedProcess:
    """The real Makefile's `migrate` in `workdir`, with the virtualenv's tools and without
    its `install` and `.env` prerequisites (-o: taken as up to date, never remade)."""
    return run(
        [
            "make",
            "-s",
            "-f",
            str(ROOT / "Makefile"),
            "-o",
            "install",
            "-o",
            ".env",
            f"BIN={BIN}",
            "migrate",
        ],
        workdir,
        clean_env(**settings),
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_migrate_stops_at_a_bad_setting_before_migrating(tmp_path):
    workdir = deployment(tmp_path)
    database = tmp_path / "app.db"
    result = make_migrate(
        workdir, SECRET_KEY="short-secret-value", DATABASE_URL=sqlite_url(database)
    )
    assert result.returncode != 0
    first = result.stderr.splitlines()[0]
    assert first.startswith("Configuration error: SECRET_KEY must be at least 32 characters")
    assert "alembic" not in result.stderr.lower()
    assert not database.exists()  # alembic never ran

    # the same command with a good key migrates: what stopped it was the check
    result = make_migrate(workdir, SECRET_KEY=GOOD_KEY, DATABASE_URL=sqlite_url(database))
    assert result.returncode == 0, result.stderr
    assert {"user", "auth_session", "alembic_version"} <= migrated_tables(database)


def image_command() -> str:
    """The shell command of the Dockerfile's CMD ["sh", "-c", "..."]."""
    cmd = [
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")
    ]
    assert len(cmd) == 1
    argv = json.loads(cmd[0].removeprefix("CMD "))
    assert argv[:2] == ["sh", "-c"]
    return argv[2]


def start_image_command(
    tmp_path: Path, **settings: str
) -> tuple[subprocess.CompletedProcess, Path]:
    """Runs the CMD in a copy of the image's layout; `uvicorn` is a stand-in that records its
    arguments and exits, so nothing listens. Returns the result and the record's path."""
    workdir = deployment(tmp_path)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    record = tmp_path / "uvicorn-args"
    uvicorn = stubs / "uvicorn"
    uvicorn.write_text(f'#!/bin/sh\necho "$@" > {record}\n')
    uvicorn.chmod(0o755)
    env = clean_env(**settings)
    env["PATH"] = os.pathsep.join([str(stubs), str(BIN), env.get("PATH", "")])
    return run(["sh", "-c", image_command()], workdir, env), record


def test_the_image_stops_at_a_bad_setting_before_migrating(tmp_path):
    database = tmp_path / "app.db"
    result, uvicorn_args = start_image_command(
        tmp_path, SECRET_KEY="short-secret-value", DATABASE_URL=sqlite_url(database)
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Configuration error: SECRET_KEY must be at least 32 characters")
    assert not database.exists()  # alembic never ran
    assert not uvicorn_args.exists()


def test_the_image_with_good_settings_migrates_then_serves(tmp_path):
    """After the check and the migrations comes `python -m app serve`: seen here by its
    refusal of two workers without REDIS_URL (tests/cli/test_serve.py starts it for real)."""
    database = tmp_path / "app.db"
    result, _ = start_image_command(
        tmp_path,
        SECRET_KEY=GOOD_KEY,
        DATABASE_URL=sqlite_url(database),
        WEB_CONCURRENCY="2",
        REDIS_URL="",
    )
    assert result.returncode == 1
    assert {"user", "auth_session", "alembic_version"} <= migrated_tables(database)
    assert result.stderr.splitlines()[-1].startswith(
        "error: 2 worker processes (WEB_CONCURRENCY) need REDIS_URL"
    )
