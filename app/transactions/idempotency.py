"""`Idempotency-Key` for creating orders, as Stripe does it: the same user sending the same
key with the same body within 24 hours gets the first response again (with
`Idempotent-Replayed: true`) and nothing new is created; the same key with another body
is a 409. Keys are per user.

The key is claimed before the order is written, by one INSERT … ON CONFLICT (which waits
for a concurrent claim of the same key to commit or roll back), in the request's own
transaction: the order and its key commit together or not at all. A claim older than
24 hours is taken over; the sweep deletes old ones.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Header
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import upsert_insert
from app.core.errors import DomainError
from app.transactions.models import IDEMPOTENCY_KEY_MAX_LENGTH, TransactionIdempotencyKey

KEEP = timedelta(hours=24)
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=r"^[\x21-\x7e]+$",  # visible ASCII: a UUID is the usual choice
        description=(
            "Ключ идемпотентности (например, UUID): повтор с тем же ключом и телом вернёт "
            "первый ответ и не создаст второй заказ; ключ живёт 24 часа · Retry safely"
        ),
    ),
]


class IdempotencyKeyReused(DomainError):
    status_code = 409
    code = "IDEMPOTENCY_KEY_REUSED"
    message = "This Idempotency-Key was used with a different request body"
    message_ru = "Этот ключ идемпотентности уже использован с другими данными заказа."


class IdempotencyKeyInUse(DomainError):
    status_code = 409
    code = "IDEMPOTENCY_KEY_IN_USE"
    message = "A request with this Idempotency-Key is still being processed; retry shortly"
    message_ru = "Запрос с этим ключом ещё обрабатывается. Повторите через несколько секунд."


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: Any


def fingerprint(body: Any) -> str:
    """SHA-256 of the validated body, keys sorted: equal requests, equal prints."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def claim(
    db: AsyncSession, user_id: uuid.UUID, key: str, print_: str, now: datetime
) -> StoredResponse | None:
    """None: the key is ours, go on and `remember` the response. A StoredResponse: the
    first response to replay. Raises IdempotencyKeyReused (another body) or
    IdempotencyKeyInUse."""
    insert = upsert_insert(db, TransactionIdempotencyKey).values(
        user_id=user_id, key=key, fingerprint=print_, created_at=now
    )
    claimed = await db.execute(
        insert.on_conflict_do_update(
            index_elements=[TransactionIdempotencyKey.user_id, TransactionIdempotencyKey.key],
            set_={
                "fingerprint": insert.excluded.fingerprint,
                "created_at": insert.excluded.created_at,
                "transaction_id": None,
                "response_status": None,
                "response_body": None,
            },
            where=TransactionIdempotencyKey.created_at <= now - KEEP,  # expired: take over
        ).returning(TransactionIdempotencyKey.key)
    )
    if claimed.first() is not None:
        return None
    row = (
        await db.execute(
            select(
                TransactionIdempotencyKey.fingerprint,
                TransactionIdempotencyKey.response_status,
                TransactionIdempotencyKey.response_body,
            ).where(
                TransactionIdempotencyKey.user_id == user_id, TransactionIdempotencyKey.key == key
            )
        )
    ).first()
    if row is None or row.response_body is None:
        raise IdempotencyKeyInUse(headers={"Retry-After": "1"})
    if row.fingerprint != print_:
        raise IdempotencyKeyReused()
    return StoredResponse(status=row.response_status, body=json.loads(row.response_body))


async def remember(
    db: AsyncSession,
    user_id: uuid.UUID,
    key: str,
    transaction_id: uuid.UUID,
    status: int,
    body: Any,
) -> None:
    await db.execute(
        update(TransactionIdempotencyKey)
        .where(TransactionIdempotencyKey.user_id == user_id, TransactionIdempotencyKey.key == key)
        .values(
            transaction_id=transaction_id,
            response_status=status,
            response_body=json.dumps(body, ensure_ascii=False),
        )
    )


async def purge(db: AsyncSession, now: datetime) -> int:
    result = await db.execute(
        delete(TransactionIdempotencyKey).where(TransactionIdempotencyKey.created_at <= now - KEEP)
    )
    return int(getattr(result, "rowcount", 0) or 0)
