"""The `account_confirmation` table: one row per user, the live code's digest and state."""

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.clock import utcnow
from app.core.db import Base, UTCDateTime


class AccountConfirmation(Base):
    """`confirmation_status`: true once confirmed; null (pending) while a live code awaits
    entry; false once `expires_at` passed unconfirmed or the code was burned by wrong
    entries. Read it through ConfirmationPolicy.status (app.confirmation.service), which
    applies expiry and the attempt cap at read time; the sweep writes the same false into
    the rows later."""

    __tablename__ = "account_confirmation"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    # HMAC-SHA256 (hex) of the code, keyed by SECRET_KEY and bound to the user; never the code.
    confirmation_code: Mapped[str] = mapped_column(String(64))
    confirmation_status: Mapped[bool | None] = mapped_column(Boolean, default=None)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # wrong entries of this code
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # resend cooldown
