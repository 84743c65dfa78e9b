"""The one cursor codec: what it hands out decodes to the same key; nothing else does."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.core.cursor import CURSOR_MAX_LENGTH, CreatedCursor, InvalidCursor


def test_round_trip_in_utc():
    key = (
        datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=3))),
        uuid.uuid4(),
    )
    cursor = CreatedCursor.encode(key)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor  # URL-safe as is
    created_at, user_id = CreatedCursor.decode(cursor)
    assert created_at == key[0] and created_at.tzinfo == UTC
    assert user_id == key[1]
    assert (
        len(CreatedCursor.encode((datetime.max.replace(tzinfo=UTC), uuid.uuid4())))
        < CURSOR_MAX_LENGTH
    )


@pytest.mark.parametrize("cursor", ["", "A" * (CURSOR_MAX_LENGTH + 1), "////", "\u0436"])
def test_garbage_is_invalid(cursor):
    with pytest.raises(InvalidCursor):
        CreatedCursor.decode(cursor)
