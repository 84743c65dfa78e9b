"""Settings from the environment and `.env`; unsafe values refuse to start."""

from functools import lru_cache
from urllib.parse import urlsplit
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ConfigurationError(SystemExit):
    """Raised at start-up with a one-line reason; exits the process with status 1."""


class DatabaseSettings(BaseSettings):
    """What migrations need: only the database, no secret."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    DATABASE_URL: str = "sqlite+aiosqlite:///./app.db"


class Settings(DatabaseSettings):
    SECRET_KEY: SecretStr = Field(min_length=32)
    COOKIE_SECURE: bool = True
    SESSION_LIFETIME_SECONDS: int = Field(default=604800, gt=0)
    SESSION_MAX_AGE_SECONDS: int = Field(default=2592000, gt=0)
    TRUSTED_ORIGINS: Annotated[list[str], NoDecode] = []
    REDIS_URL: str | None = None

    RATE_LIMIT_ENABLED: bool = True
    RATE_LIMIT_LOGIN_ACCOUNT: str = "5/5 minutes"
    RATE_LIMIT_LOGIN_IP: str = "30/minute"
    RATE_LIMIT_REGISTER_IP: str = "20/hour"

    PASSWORD_HASH_THREADS: int = Field(default=1, ge=1, le=64)
    DB_ECHO: bool = False

    @field_validator("TRUSTED_ORIGINS", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @field_validator("TRUSTED_ORIGINS")
    @classmethod
    def _exact_origins(cls, origins: list[str]) -> list[str]:
        """Each an exact origin, scheme://host[:port]: a wildcard with credentials would let
        any site read signed-in responses."""
        for origin in origins:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.netloc
                or "*" in origin
                or parts.path
                or parts.query
                or parts.fragment
            ):
                raise ValueError(f"{origin!r} is not an origin like https://shop.example.com")
        return origins

    @field_validator("RATE_LIMIT_LOGIN_ACCOUNT", "RATE_LIMIT_LOGIN_IP", "RATE_LIMIT_REGISTER_IP")
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        from limits import parse  # noqa: PLC0415  (keeps config import light)

        parse(value)
        return value

    @field_validator("REDIS_URL", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None


def load_settings(*, env_file: str | None = ".env", **overrides: object) -> Settings:
    """Build settings or exit with a one-line reason naming the bad setting."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"Configuration error: {reasons}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
