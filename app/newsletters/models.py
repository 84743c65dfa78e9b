"""The `newsletter` table: one campaign, its content and its delivery figures.

Per-recipient state lives in the email outbox (one row per recipient, `newsletter_id`
set); the figures here are final once the campaign is `sent` (written by the sweep when
no row is left pending), and read from the outbox while it is `sending`.
"""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.db import Base, StrEnumType, UTCDateTime
from app.types.enums import NewsletterStatus

SUBJECT_MAX_LENGTH = 200
HTML_MAX_LENGTH = 200_000
TEXT_MAX_LENGTH = 100_000


class Newsletter(Base):
    __tablename__ = "newsletter"
    __table_args__ = (Index("ix_newsletter_created", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Staff-written Jinja2 source, rendered per recipient in the sandbox.
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX_LENGTH))
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[NewsletterStatus] = mapped_column(
        StrEnumType(NewsletterStatus), default=NewsletterStatus.DRAFT
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set by `send`: when it was queued, and for how many recipients.
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    # Final figures, written when the last recipient's email left the queue.
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
