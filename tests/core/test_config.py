"""Settings refuse unsafe values at start-up with a one-line reason."""

import os
import subprocess
import sys

import pytest

from app.core.config import ConfigurationError, load_settings
from tests.conftest import ROOT, TEST_SECRET

GOOD_KEY = "0123456789abcdef" * 2  # 32 characters, as `openssl rand -hex 16` gives


def start_app(tmp_path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DATABASE_URL")}
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", "import app.main"],
        cwd=tmp_path,  # no .env there
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "SECRET_KEY is required; run `make env` or set it in .env"),
        ({"SECRET_KEY": "short-secret-value"}, "SECRET_KEY must be at least 32 characters; run"),
        ({"SECRET_KEY": " " * 40}, "SECRET_KEY must be at least 32 characters"),
        ({"SECRET_KEY": "k" * 40}, "SECRET_KEY looks typed, not generated"),
        ({"SECRET_KEY": "ab" * 20}, "SECRET_KEY looks typed, not generated"),
        (
            {"SECRET_KEY": GOOD_KEY, "DATABASE_URL": "foo://bar"},
            "DATABASE_URL 'foo' is not supported",
        ),
        (
            {"SECRET_KEY": GOOD_KEY, "DATABASE_URL": "nonsense"},
            "DATABASE_URL is not a database URL",
        ),
    ],
)
def test_the_service_refuses_to_start_without_a_good_secret(tmp_path, env, needle):
    result = start_app(tmp_path, **env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Configuration error: ")
    assert needle in lines[0]
    if env.get("SECRET_KEY", "").strip():
        assert env["SECRET_KEY"] not in result.stderr


def test_a_generated_secret_starts(tmp_path):
    result = start_app(tmp_path, SECRET_KEY=GOOD_KEY)
    assert result.returncode == 0, result.stderr


def test_settings_parse_lists_and_limits():
    settings = load_settings(
        env_file=None,
        SECRET_KEY=GOOD_KEY,
        TRUSTED_ORIGINS="https://a.example, https://b.example/ ,",
        REDIS_URL="",
    )
    assert settings.TRUSTED_ORIGINS == ["https://a.example", "https://b.example"]
    assert settings.TRUSTED_PROXIES == []
    assert settings.REDIS_URL is None
    with pytest.raises(ConfigurationError, match="RATE_LIMIT_LOGIN_IP"):
        load_settings(env_file=None, SECRET_KEY=GOOD_KEY, RATE_LIMIT_LOGIN_IP="lots")


@pytest.mark.parametrize(
    "origins", ["*", "https://*.example.com", "example.com", "https://a.example/path", "ftp://x"]
)
def test_trusted_origins_must_be_exact(origins):
    with pytest.raises(ConfigurationError, match="TRUSTED_ORIGINS"):
        load_settings(env_file=None, SECRET_KEY=GOOD_KEY, TRUSTED_ORIGINS=origins)


def test_origins_and_proxies_are_normalised_once():
    settings = load_settings(
        env_file=None,
        SECRET_KEY=GOOD_KEY,
        TRUSTED_ORIGINS="HTTPS://App.Example.COM/,http://localhost:3000",
        TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8,::1",
    )
    # Browsers send Origin in lower case: CORS compares these as they are.
    assert settings.TRUSTED_ORIGINS == ["https://app.example.com", "http://localhost:3000"]
    assert [str(n) for n in settings.TRUSTED_PROXIES] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    with pytest.raises(ConfigurationError, match="TRUSTED_PROXIES"):
        load_settings(env_file=None, SECRET_KEY=GOOD_KEY, TRUSTED_PROXIES="proxy.local")


def test_the_signing_key_stays_out_of_reprs(app):
    assert TEST_SECRET not in repr(app.state.auth)
    assert TEST_SECRET not in repr(app.state.settings)


def test_every_setting_is_documented_in_env_example():
    from app.core.config import Settings

    documented = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert documented - set(Settings.model_fields) == {"POSTGRES_PASSWORD"}  # compose only
    assert set(Settings.model_fields) <= documented


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (
            {"SMTP_SSL": "true", "SMTP_STARTTLS": "true"},
            "SMTP_SSL and SMTP_STARTTLS exclude each other",
        ),
        ({"EMAIL_BACKEND": "smtp"}, "SMTP_HOST is required when EMAIL_BACKEND=smtp"),
        ({"SMTP_USERNAME": "shop@example.com"}, "SMTP_USERNAME and SMTP_PASSWORD go together"),
        ({"EMAIL_FROM_NAME": "Shop\r\nBcc: x@example.com"}, "EMAIL_FROM_NAME must be one line"),
        ({"EMAIL_FROM": "not an address"}, "EMAIL_FROM 'not an address' is not an email"),
        ({"PUBLIC_BASE_URL": "shop.example.com"}, "is not an http(s) address"),
        (
            {"SMTP_TIMEOUT": "30", "OUTBOX_LEASE_SECONDS": "120"},
            "OUTBOX_LEASE_SECONDS must be at least 10 × SMTP_TIMEOUT (300)",
        ),
    ],
)
def test_email_settings_refuse_bad_combinations_in_one_line(values, reason):
    with pytest.raises(ConfigurationError) as refused:
        load_settings(env_file=None, SECRET_KEY=TEST_SECRET, **values)
    message = str(refused.value)
    assert message.startswith("Configuration error: ") and reason in message
    assert "\n" not in message


def test_email_settings_defaults_need_no_mail_server():
    settings = load_settings(env_file=None, SECRET_KEY=TEST_SECRET)
    assert settings.EMAIL_BACKEND == "console" and settings.SMTP_HOST is None
    trailing = load_settings(
        env_file=None, SECRET_KEY=TEST_SECRET, PUBLIC_BASE_URL="https://shop.example.com/"
    )
    assert trailing.PUBLIC_BASE_URL == "https://shop.example.com"
