"""The composer's stream (app.services.email.composer), in thread mode: jobs are composed
in chunks of CHUNK, and any row can be read in any order."""

import asyncio
from datetime import UTC, datetime

import pytest

from app.services.email.composer import CHUNK, ComposeJob, Composer
from app.services.email.service import EmailService


def compose_job(row_id: int) -> ComposeJob:
    return ComposeJob(
        row_id=row_id,
        to=f"u{row_id}@example.com",
        template="password_changed",
        locale="ru",
        data={"name": "Анна", "changed_at": "x"},
        message_id=f"<{row_id}@shop.test>",
        date=datetime.now(UTC),
    )


async def test_rows_are_read_in_any_order_across_chunks(settings):
    composer = Composer(EmailService(settings), processes=0)
    try:
        last = 2 * CHUNK + 5  # three chunks
        stream = composer.stream([compose_job(n) for n in range(1, last + 1)])
        for row_id in (last, CHUNK + 1, 1, CHUNK):  # the third chunk first, then back
            email = await asyncio.wait_for(stream.get(row_id), 10)
            assert email.to == f"u{row_id}@example.com"
        with pytest.raises(KeyError) as caught:  # a row this stream never had
            await stream.get(last + 1)
        assert caught.value.args == (last + 1,)
    finally:
        composer.close()
