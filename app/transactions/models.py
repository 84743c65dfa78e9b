"""The `transaction` table (an order), its status history, creation idempotency keys, and
the payment provider's events already handled.

Money is an integer in minor units (kopecks for RUB), never a float. Statuses are stored
as plain strings (app.core.db.StrEnumType). The indexes serve the lists newest first
(keyset on (created_at, id)) for one user, one user and status, one status, flagged
orders, and the deadline sweep, at a million rows.
"""

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.db import Base, StrEnumType, UTCDateTime
from app.types.enums import TransactionActor, TransactionStatus

DESCRIPTION_MAX_LENGTH = 500
NOTE_MAX_LENGTH = 500
IDEMPOTENCY_KEY_MAX_LENGTH = 255
EVENT_ID_MAX_LENGTH = 255
EVENT_TYPE_MAX_LENGTH = 64
# Amounts up to 10^13 minor units (100 billion roubles): inside every integer type.
AMOUNT_MAX = 10**13


class Transaction(Base):
    __tablename__ = "transaction"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_transaction_user_created", "user_id", "created_at", "id"),
        Index("ix_transaction_user_status_created", "user_id", "status", "created_at", "id"),
        Index("ix_transaction_status_created", "status", "created_at", "id"),
        Index("ix_transaction_status_due", "status", "payment_due_at"),
        Index("ix_transaction_flagged_created", "flagged", "created_at", "id"),
        Index("ix_transaction_created", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str] = mapped_column(String(DESCRIPTION_MAX_LENGTH))
    status: Mapped[TransactionStatus] = mapped_column(StrEnumType(TransactionStatus))
    payment_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A payment arrived after the deadline: the order stays not_paid_in_time, the money
    # is to be refunded (staff see these with ?flagged=true).
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class TransactionHistory(Base):
    """One row per status change (and per late payment), appended in the change's own
    database transaction; the first row (from_status null) is the order's creation."""

    __tablename__ = "transaction_status_history"
    __table_args__ = (Index("ix_transaction_status_history_transaction", "transaction_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("transaction.id", ondelete="CASCADE")
    )
    from_status: Mapped[TransactionStatus | None] = mapped_column(
        StrEnumType(TransactionStatus), default=None
    )
    to_status: Mapped[TransactionStatus] = mapped_column(StrEnumType(TransactionStatus))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[TransactionActor] = mapped_column(StrEnumType(TransactionActor))
    # The user or admin who made the change (null for the system and the webhook).
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), default=None
    )
    note: Mapped[str | None] = mapped_column(String(NOTE_MAX_LENGTH), default=None)


class TransactionIdempotencyKey(Base):
    """`Idempotency-Key` of a creation: the first response, replayed for 24 hours to the
    same user sending the same key with the same body."""

    __tablename__ = "transaction_idempotency_key"
    __table_args__ = (Index("ix_transaction_idempotency_key_created", "created_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX_LENGTH), primary_key=True)
    # SHA-256 of the validated request body: the same key with another body is a 409.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Null while the request that claimed the key runs (it commits them with the order).
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("transaction.id", ondelete="CASCADE"), default=None
    )
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PaymentEvent(Base):
    """A payment provider's event already handled: a redelivery changes nothing."""

    __tablename__ = "payment_event"

    id: Mapped[str] = mapped_column(String(EVENT_ID_MAX_LENGTH), primary_key=True)
    type: Mapped[str] = mapped_column(String(EVENT_TYPE_MAX_LENGTH))
    transaction_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What it did: processing, late (flagged), ignored (already paid, unknown type), unknown.
    outcome: Mapped[str] = mapped_column(String(32))
