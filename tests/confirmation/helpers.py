"""Reading what the app queued: the outbox row holds a message's data until it is sent."""

from typing import Any

from sqlalchemy import select

from app.confirmation.models import AccountConfirmation
from app.services.email.outbox import OutboxMessage
from app.users.models import User


async def queued(
    app: Any, to: str | None = None, template: str | None = None
) -> list[OutboxMessage]:
    async with app.state.sessionmaker() as db:
        stmt = select(OutboxMessage).order_by(OutboxMessage.id)
        if to is not None:
            stmt = stmt.where(OutboxMessage.to_address == to)
        if template is not None:
            stmt = stmt.where(OutboxMessage.template == template)
        return list(await db.scalars(stmt))


async def latest_code(app: Any, email: str) -> str:
    rows = await queued(app, to=email, template="confirmation_code")
    assert rows, f"no confirmation code was queued for {email}"
    return str(rows[-1].data["code"])


async def confirmation_row(app: Any, email: str) -> AccountConfirmation | None:
    async with app.state.sessionmaker() as db:
        return await db.scalar(
            select(AccountConfirmation)
            .join(User, User.id == AccountConfirmation.user_id)
            .where(User.email == email)
        )


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"
