"""Session rows: create, load with their user in one query, revoke."""

import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import AuthSession
from app.core.clock import utcnow
from app.users.models import User

LAST_SEEN_RESOLUTION = timedelta(minutes=1)


async def create_session(
    db: AsyncSession, user_id: uuid.UUID, *, ip: str | None, user_agent: str | None
) -> AuthSession:
    now = utcnow()
    row = AuthSession(
        user_id=user_id,
        created_at=now,
        last_seen_at=now,
        ip=ip,
        user_agent=(user_agent or None) and user_agent[:512],
    )
    db.add(row)
    await db.flush()
    return row


async def load_live_session(
    db: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID, max_age: timedelta
) -> tuple[AuthSession, User] | None:
    """The session and its user in one round trip, if the session may still be used."""
    row = (
        await db.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == session_id, AuthSession.user_id == user_id)
        )
    ).first()
    if row is None:
        return None
    auth_session, user = row
    now = utcnow()
    if auth_session.revoked_at is not None or not user.is_active:
        return None
    if now >= auth_session.created_at + max_age:
        return None
    if now - auth_session.last_seen_at >= LAST_SEEN_RESOLUTION:
        auth_session.last_seen_at = now
    return auth_session, user


async def list_live_sessions(
    db: AsyncSession, user_id: uuid.UUID, max_age: timedelta
) -> list[AuthSession]:
    oldest = utcnow() - max_age
    rows = await db.scalars(
        select(AuthSession)
        .where(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.created_at > oldest,
        )
        .order_by(AuthSession.last_seen_at.desc(), AuthSession.id)
    )
    return list(rows)


async def revoke_session(db: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Revoke one of the user's sessions; False when there is no such live session."""
    result = await db.execute(
        update(AuthSession)
        .where(
            AuthSession.id == session_id,
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return result.rowcount > 0


async def revoke_user_sessions(
    db: AsyncSession, user_id: uuid.UUID, *, keep: uuid.UUID | None = None
) -> int:
    """Revoke all of the user's live sessions, except `keep` when given."""
    stmt = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    result = await db.execute(stmt.values(revoked_at=utcnow()))
    return result.rowcount

