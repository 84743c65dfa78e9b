"""The one clock of the service: tests move it (time-machine) instead of sleeping."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
