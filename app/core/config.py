"""Settings from the environment and `.env`; unsafe values refuse to start."""

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SECRET_KEY_MIN_LENGTH = 32
# A real key (secrets.token_urlsafe, openssl rand -hex) has dozens of distinct characters;
# "aaaa…", 32 spaces or "abab…" are typed, not generated.
SECRET_KEY_MIN_DISTINCT = 8
SUPPORTED_DATABASES = ("sqlite+aiosqlite", "postgresql+asyncpg")
# An outbox lease must outlast a whole SMTP send several times over (see
# app.services.email.dispatcher): OUTBOX_LEASE_SECONDS >= this × SMTP_TIMEOUT.
OUTBOX_LEASE_MIN_TIMEOUTS = 10
WEBHOOK_SECRET_MIN_LENGTH = 16
# What to do about a missing or refused setting, shown after the reason.
HINTS = {
    "SECRET_KEY": "run `make env` or set it in .env",
    "DATABASE_URL": "e.g. sqlite+aiosqlite:///./app.db or postgresql+asyncpg://user:pass@host:5432/db",
    "PUBLIC_BASE_URL": "the address users open, e.g. https://shop.example.com",
}


class ConfigurationError(SystemExit):
    """Raised at start-up with a one-line reason; exits the process with status 1."""


class DatabaseSettings(BaseSettings):
    """What migrations need: only the database, no secret."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    DATABASE_URL: str = "sqlite+aiosqlite:///./app.db"
    DB_CONNECT_TIMEOUT_SECONDS: float = Field(default=5, gt=0, le=300)
    DB_STATEMENT_TIMEOUT_SECONDS: float = Field(default=10, gt=0, le=3600)

    @field_validator("DATABASE_URL")
    @classmethod
    def _supported_database(cls, url: str) -> str:
        from sqlalchemy.engine import make_url  # noqa: PLC0415  (keeps config import light)
        from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

        try:
            driver = make_url(url).drivername
        except ArgumentError:
            raise ValueError("is not a database URL") from None
        if driver not in SUPPORTED_DATABASES:
            raise ValueError(f"{driver!r} is not supported: use {' or '.join(SUPPORTED_DATABASES)}")
        return url


ProxyNetwork = IPv4Network | IPv6Network
S = TypeVar("S", bound=BaseSettings)


class Settings(DatabaseSettings):
    SECRET_KEY: SecretStr
    COOKIE_SECURE: bool = True
    SESSION_LIFETIME_SECONDS: int = Field(default=604800, gt=0)
    SESSION_MAX_AGE_SECONDS: int = Field(default=2592000, gt=0)
    TRUSTED_ORIGINS: Annotated[list[str], NoDecode] = []
    TRUSTED_PROXIES: Annotated[list[ProxyNetwork], NoDecode] = []
    REDIS_URL: str | None = None

    RATE_LIMIT_ENABLED: bool = True
    RATE_LIMIT_LOGIN_ACCOUNT: str = "5/5 minutes"
    RATE_LIMIT_LOGIN_IP: str = "30/minute"
    RATE_LIMIT_REGISTER_IP: str = "20/hour"
    RATE_LIMIT_FORGOT_PASSWORD_IP: str = "10/hour"
    RATE_LIMIT_FORGOT_PASSWORD_ACCOUNT: str = "3/hour"
    RATE_LIMIT_CONFIRM_IP: str = "30/minute"
    RATE_LIMIT_CONFIRM_RESEND_ACCOUNT: str = "5/hour"

    MAX_BODY_BYTES: int = Field(default=1_048_576, gt=0)
    # uvicorn's access log (one line per request). The image turns it off: the reverse
    # proxy in front logs requests, and this line costs ~70 µs of CPU per request here.
    ACCESS_LOG: bool = True
    # Worker processes of `python -m app serve` (app/cli/serve.py); None: one per CPU.
    WEB_CONCURRENCY: int | None = Field(default=None, ge=1, le=64)

    PASSWORD_HASH_THREADS: int = Field(default=1, ge=1, le=64)
    DB_ECHO: bool = False

    # Email (app/services/email). `console` writes each message to the log instead.
    EMAIL_BACKEND: Literal["console", "smtp"] = "console"
    SMTP_HOST: str | None = None
    SMTP_PORT: int = Field(default=587, ge=1, le=65535)
    SMTP_USERNAME: str | None = None
    SMTP_PASSWORD: SecretStr | None = None
    SMTP_STARTTLS: bool = True
    SMTP_SSL: bool = False
    SMTP_TIMEOUT: float = Field(default=10, gt=0, le=300)
    EMAIL_FROM: str = Field(default="shop@example.com", max_length=320)
    EMAIL_FROM_NAME: str = Field(default="Магазин", max_length=100)
    EMAIL_LOCALE: Literal["ru", "en"] = "ru"
    PUBLIC_BASE_URL: str = "http://localhost:8000"
    # DKIM signing of every email (optional; all three or none). The file holds the PEM
    # private key whose public half is published at <selector>._domainkey.<domain>.
    DKIM_DOMAIN: str | None = Field(default=None, max_length=253)
    DKIM_SELECTOR: str | None = Field(default=None, max_length=63)
    DKIM_PRIVATE_KEY_FILE: Path | None = None

    # The outbox dispatcher (app/services/email/outbox.py).
    OUTBOX_DISPATCHER_ENABLED: bool = True
    OUTBOX_POLL_SECONDS: float = Field(default=5, gt=0, le=3600)
    OUTBOX_BATCH_SIZE: int = Field(default=50, ge=1, le=1000)
    OUTBOX_LEASE_SECONDS: float = Field(default=120, gt=0, le=86400)
    OUTBOX_RETRY_MAX_SECONDS: float = Field(default=300, gt=0, le=86400)
    OUTBOX_GIVE_UP_SECONDS: float = Field(default=86400, gt=0)
    OUTBOX_KEEP_DAYS: int = Field(default=30, ge=1, le=3650)
    # Processes that compose emails beside the dispatcher (0: a thread of this process).
    OUTBOX_COMPOSE_PROCESSES: int = Field(default=1, ge=0, le=32)

    # Account confirmation codes (app/confirmation).
    CONFIRMATION_CODE_TTL_SECONDS: int = Field(default=600, ge=60, le=86400)
    CONFIRMATION_MAX_ATTEMPTS: int = Field(default=5, ge=1, le=20)
    CONFIRMATION_RESEND_COOLDOWN_SECONDS: int = Field(default=60, ge=0, le=3600)
    SWEEP_INTERVAL_SECONDS: float = Field(default=60, gt=0, le=86400)

    # Password reset links (app/auth/reset_router.py): how long one works.
    RESET_PASSWORD_TOKEN_TTL_SECONDS: int = Field(default=1800, ge=300, le=86400)

    # Orders (app/transactions): how long a new order may be paid, and the payment
    # provider's webhook signing secret (unset: POST /payments/webhook answers 503).
    PAYMENT_TIMEOUT_SECONDS: int = Field(default=1800, ge=60, le=604800)
    PAYMENT_WEBHOOK_SECRET: SecretStr | None = None

    @field_validator("SECRET_KEY")
    @classmethod
    def _real_secret(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if len(key.strip()) < SECRET_KEY_MIN_LENGTH:
            raise ValueError(f"must be at least {SECRET_KEY_MIN_LENGTH} characters")
        if len(set(key)) < SECRET_KEY_MIN_DISTINCT:
            raise ValueError("looks typed, not generated (too few distinct characters)")
        return value

    @field_validator("PAYMENT_WEBHOOK_SECRET")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < WEBHOOK_SECRET_MIN_LENGTH:
            raise ValueError(
                f"must be at least {WEBHOOK_SECRET_MIN_LENGTH} characters: paste the secret "
                "the payment provider shows"
            )
        return value

    @field_validator("TRUSTED_ORIGINS", "TRUSTED_PROXIES", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("TRUSTED_ORIGINS")
    @classmethod
    def _exact_origins(cls, origins: list[str]) -> list[str]:
        """Each an exact origin, scheme://host[:port], normalised once here (lower case, no
        trailing slash) the way browsers send `Origin`: CORS and the CSRF check compare
        these as they are. A wildcard with credentials would let any site read signed-in
        responses."""
        normalised = []
        for origin in origins:
            parts = urlsplit(origin.rstrip("/"))
            if (
                parts.scheme not in ("http", "https")
                or not parts.netloc
                or "*" in origin
                or parts.path
                or parts.query
                or parts.fragment
            ):
                raise ValueError(f"{origin!r} is not an origin like https://shop.example.com")
            normalised.append(f"{parts.scheme}://{parts.netloc}".lower())
        return normalised

    @field_validator("TRUSTED_PROXIES", mode="before")
    @classmethod
    def _networks(cls, values: object) -> object:
        if isinstance(values, list):
            return [ip_network(v, strict=False) if isinstance(v, str) else v for v in values]
        return values

    @field_validator(
        "RATE_LIMIT_LOGIN_ACCOUNT",
        "RATE_LIMIT_LOGIN_IP",
        "RATE_LIMIT_REGISTER_IP",
        "RATE_LIMIT_FORGOT_PASSWORD_IP",
        "RATE_LIMIT_FORGOT_PASSWORD_ACCOUNT",
        "RATE_LIMIT_CONFIRM_IP",
        "RATE_LIMIT_CONFIRM_RESEND_ACCOUNT",
    )
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        from limits import parse  # noqa: PLC0415  (keeps config import light)

        parse(value)
        return value

    @field_validator(
        "REDIS_URL",
        "SMTP_HOST",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "PAYMENT_WEBHOOK_SECRET",
        "WEB_CONCURRENCY",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None

    @field_validator("EMAIL_FROM")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        from email_validator import EmailNotValidError, validate_email  # noqa: PLC0415

        try:
            validate_email(value, check_deliverability=False, test_environment=True)
        except EmailNotValidError:
            raise ValueError(f"{value!r} is not an email address") from None
        return value

    @field_validator("EMAIL_FROM_NAME", "SMTP_HOST", "SMTP_USERNAME")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        # These end up in message headers and SMTP commands: no line breaks, ever.
        if value is not None and any(c in value for c in "\r\n\x00"):
            raise ValueError("must be one line")
        return value

    @field_validator("PUBLIC_BASE_URL")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError(f"{value!r} is not an http(s) address")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _smtp_combination(self) -> Self:
        if self.SMTP_SSL and self.SMTP_STARTTLS:
            raise ValueError(
                "SMTP_SSL and SMTP_STARTTLS exclude each other: "
                "SMTP_SSL=true for port 465, SMTP_STARTTLS=true for 587"
            )
        if self.EMAIL_BACKEND == "smtp" and not self.SMTP_HOST:
            raise ValueError("SMTP_HOST is required when EMAIL_BACKEND=smtp")
        if self.OUTBOX_LEASE_SECONDS < OUTBOX_LEASE_MIN_TIMEOUTS * self.SMTP_TIMEOUT:
            raise ValueError(
                f"OUTBOX_LEASE_SECONDS must be at least {OUTBOX_LEASE_MIN_TIMEOUTS} × "
                f"SMTP_TIMEOUT ({OUTBOX_LEASE_MIN_TIMEOUTS * self.SMTP_TIMEOUT:g}): a send "
                "can take several timeouts"
            )
        if (self.SMTP_USERNAME is None) != (self.SMTP_PASSWORD is None):
            raise ValueError("SMTP_USERNAME and SMTP_PASSWORD go together: set both or neither")
        return self

    @field_validator("DKIM_DOMAIN", "DKIM_SELECTOR", "DKIM_PRIVATE_KEY_FILE", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value  # `DKIM_DOMAIN=` in .env means "no DKIM"

    @model_validator(mode="after")
    def _dkim(self) -> Self:
        dkim = (self.DKIM_DOMAIN, self.DKIM_SELECTOR, self.DKIM_PRIVATE_KEY_FILE)
        if any(dkim) and not all(dkim):
            raise ValueError(
                "DKIM_DOMAIN, DKIM_SELECTOR and DKIM_PRIVATE_KEY_FILE go together: set all "
                "three to sign emails, or none"
            )
        if self.DKIM_PRIVATE_KEY_FILE is not None:
            self.dkim_private_key()  # unreadable or not a key: refused at start-up
        return self

    def dkim_private_key(self) -> bytes | None:
        """The DKIM key's PEM bytes, checked; None when DKIM is off."""
        if self.DKIM_PRIVATE_KEY_FILE is None:
            return None
        import dkim.crypto  # noqa: PLC0415  (only when DKIM is configured)

        try:
            key = self.DKIM_PRIVATE_KEY_FILE.read_bytes()
            dkim.crypto.parse_pem_private_key(key)
        except OSError as exc:
            raise ValueError(f"DKIM_PRIVATE_KEY_FILE cannot be read: {exc.strerror}") from None
        except Exception:
            raise ValueError("DKIM_PRIVATE_KEY_FILE holds no PEM private key") from None
        return key


def _reason(error: Any) -> str:
    name = ".".join(str(p) for p in error["loc"])
    if not name:  # a rule across settings: its message names them
        return str(error["ctx"]["error"]) if error["type"] == "value_error" else error["msg"]
    if error["type"] == "missing":
        message = "is required"
    elif error["type"] == "value_error":
        message = str(error["ctx"]["error"])
    else:
        message = error["msg"]
    hint = HINTS.get(name)
    return f"{name} {message}" + (f"; {hint}" if hint else "")


def load_settings(*, env_file: str | None = ".env", **overrides: object) -> Settings:
    """Build settings or exit with a one-line reason naming the bad setting."""
    return _load(Settings, env_file, overrides)


def load_database_settings(*, env_file: str | None = ".env") -> DatabaseSettings:
    return _load(DatabaseSettings, env_file, {})


def _load(kind: type[S], env_file: str | None, overrides: dict[str, Any]) -> S:
    try:
        return kind(_env_file=env_file, **overrides)
    except ValidationError as exc:
        reasons = "; ".join(_reason(err) for err in exc.errors())
        raise ConfigurationError(f"Configuration error: {reasons}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
