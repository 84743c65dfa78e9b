"""Security notices: emails to an account's address when its password or email changes."""

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.services.email.outbox import Outbox


def mask_email(address: str) -> str:
    """`nikolai@example.com` → `n***@example.com`: enough to recognise, not to harvest."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def _when(moment: datetime) -> str:
    return moment.strftime("%d.%m.%Y %H:%M UTC")


def password_changed(
    outbox: Outbox, db: AsyncSession, *, to: str, name: str, user_id: uuid.UUID, at: datetime
) -> None:
    outbox.add(
        db,
        to=to,
        template="password_changed",
        data={"name": name, "changed_at": _when(at)},
        user_id=user_id,
    )


def email_changed(
    outbox: Outbox,
    db: AsyncSession,
    *,
    old_address: str,
    new_address: str,
    name: str,
    user_id: uuid.UUID,
    at: datetime,
) -> None:
    outbox.add(
        db,
        to=old_address,
        template="email_changed",
        data={"name": name, "new_email_masked": mask_email(new_address), "changed_at": _when(at)},
        user_id=user_id,
    )
