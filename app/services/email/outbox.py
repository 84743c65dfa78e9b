"""The email outbox: every email the product sends is first a row in `email_outbox`.

Why a table rather than a broker (or sending inside the request): the row is written in
the same database transaction as the change that causes the email (a registration, a new
code, a password reset), so the two commit or roll back together. A crash can never leave
a registered user without their confirmation email, nor send an email for a registration
that rolled back; and an SMTP server that is down costs the request nothing — the
dispatcher (app.services.email.dispatcher) delivers the row when the server is back. A
broker would be a second system that has to agree with the database; this needs none.

The row holds what the template needs (`data`), not the rendered message: rendering is
the dispatcher's CPU work, off the request. The data may hold a secret (a confirmation
code, a reset link), so it is erased once the row is sent or has failed.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    CursorResult,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    delete,
    insert,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.db import Base, StrEnumType, UTCDateTime, call_after_commit

# Header and SMTP-command fields are bounded before they are stored.
ADDRESS_MAX_LENGTH = 320
ERROR_MAX_LENGTH = 500


class OutboxState(StrEnum):
    PENDING = "pending"  # waiting to be sent (claimed while `lease_until` is in the future)
    SENT = "sent"  # handed to the SMTP server
    FAILED = "failed"  # refused for good (5xx) or given up after OUTBOX_GIVE_UP_SECONDS
    # Not sent because its recipient no longer wants it (a newsletter after an unsubscribe).
    WITHDRAWN = "withdrawn"


class OutboxMessage(Base):
    __tablename__ = "email_outbox"
    __table_args__ = (
        Index("ix_email_outbox_due", "state", "next_attempt_at"),
        Index("ix_email_outbox_newsletter", "newsletter_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Fixed when queued, so a retry after a lost reply carries the same Message-ID.
    message_id: Mapped[str] = mapped_column(String(255))
    to_address: Mapped[str] = mapped_column(String(ADDRESS_MAX_LENGTH))
    template: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The account it concerns, if any (for support: "what did we send this user?").
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True, default=None
    )
    # Bulk mail: the newsletter whose content this row renders (see `ContentLoader` in
    # app.services.email.bulk); such rows carry an unsubscribe link and can be withdrawn.
    newsletter_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("newsletter.id", ondelete="CASCADE"), default=None
    )
    state: Mapped[OutboxState] = mapped_column(
        StrEnumType(OutboxState), default=OutboxState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A dispatcher's claim: the row is theirs until lease_until; then anyone's again.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    claim_token: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_MAX_LENGTH), default=None)


@dataclass(frozen=True, slots=True)
class Recipient:
    to: str
    data: dict[str, Any]
    user_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class Outbox:
    """Queues emails in the caller's transaction. One per app (`app.state.outbox`);
    `wake` tells the app's dispatcher that a request committed new rows."""

    sender_address: str
    default_locale: str
    wake: Callable[[], None] = lambda: None

    def add(
        self,
        db: AsyncSession,
        *,
        to: str,
        template: str,
        data: dict[str, Any],
        locale: str | None = None,
        user_id: uuid.UUID | None = None,
        newsletter_id: uuid.UUID | None = None,
    ) -> OutboxMessage:
        """Queue one email; it leaves only if the caller's transaction commits."""
        from app.services.email.sender import new_message_id  # noqa: PLC0415  (light import)

        if len(to) > ADDRESS_MAX_LENGTH:
            raise ValueError("recipient address too long")
        now = utcnow()
        row = OutboxMessage(  # pending, no attempts yet: the model's defaults
            message_id=new_message_id(self.sender_address),
            to_address=to,
            template=template,
            locale=locale or self.default_locale,
            data=data,
            user_id=user_id,
            newsletter_id=newsletter_id,
            created_at=now,
            next_attempt_at=now,
        )
        db.add(row)
        call_after_commit(db, self.wake)
        return row

    async def add_many(
        self,
        db: AsyncSession,
        *,
        template: str,
        recipients: Sequence[Recipient],
        locale: str | None = None,
        newsletter_id: uuid.UUID | None = None,
    ) -> int:
        """Queue one email per recipient with one multi-row INSERT (no ORM objects: a
        newsletter queues thousands); it leaves only if the caller's transaction commits."""
        from app.services.email.sender import new_message_id  # noqa: PLC0415  (light import)

        if not recipients:
            return 0
        now = utcnow()
        rows = []
        for recipient in recipients:
            if len(recipient.to) > ADDRESS_MAX_LENGTH:
                raise ValueError("recipient address too long")
            rows.append(
                {
                    "message_id": new_message_id(self.sender_address),
                    "to_address": recipient.to,
                    "template": template,
                    "locale": locale or self.default_locale,
                    "data": recipient.data,
                    "user_id": recipient.user_id,
                    "newsletter_id": newsletter_id,
                    "state": OutboxState.PENDING,
                    "attempts": 0,
                    "created_at": now,
                    "next_attempt_at": now,
                }
            )
        await db.execute(insert(OutboxMessage), rows)
        call_after_commit(db, self.wake)
        return len(rows)


async def withdraw_bulk(db: AsyncSession, user_id: uuid.UUID) -> int:
    """Withdraw the user's bulk emails not yet sent (they unsubscribed, or may no longer
    receive them); returns how many. A row a dispatcher holds is taken back too: the
    dispatcher checks its claim before each group of bulk sends (Dispatcher._still_ours)."""
    result = await db.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.user_id == user_id,
            OutboxMessage.newsletter_id.is_not(None),
            OutboxMessage.state == OutboxState.PENDING,
        )
        .values(
            state=OutboxState.WITHDRAWN,
            data={},
            lease_until=None,
            claim_token=None,
            last_error="withdrawn: the recipient no longer receives newsletters",
        )
    )
    return cast(CursorResult[Any], result).rowcount


async def purge(db: AsyncSession, *, older_than: datetime) -> int:
    """Delete sent and failed rows queued before `older_than`; returns how many."""
    result = await db.execute(
        delete(OutboxMessage).where(
            OutboxMessage.state.in_([OutboxState.SENT, OutboxState.FAILED]),
            OutboxMessage.created_at < older_than,
        )
    )
    return cast(CursorResult[Any], result).rowcount
