"""Session rows: create, load with their user in one query, revoke."""

import uuid
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.lookup import SessionLookup
from app.auth.models import AuthSession
from app.core.clock import utcnow
from app.users.models import User

LAST_SEEN_RESOLUTION = timedelta(minutes=1)
USER_AGENT_MAX_LENGTH = 512  # the column's size


def _printable(text: str) -> str | None:
    """Control characters (NUL above all: PostgreSQL can't store it) are dropped."""
    return "".join(ch for ch in text if ch.isprintable()) or None


async def create_session(
    db: AsyncSession, user_id: uuid.UUID, *, ip: str | None, user_agent: str | None
) -> AuthSession:
    now = utcnow()
    row = AuthSession(
        user_id=user_id,
        created_at=now,
        last_seen_at=now,
        ip=ip,
        user_agent=_printable(user_agent[:USER_AGENT_MAX_LENGTH]) if user_agent else None,
    )
    db.add(row)
    await db.flush()
    return row


async def load_live_session(
    sessionmaker: async_sessionmaker[AsyncSession],
    lookup: SessionLookup,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    max_age: timedelta,
) -> User | None:
    """The session's user, detached (in no ORM session), if the session may still be used.

    One database round trip (see app.auth.lookup). At most once a minute the session's
    `last_seen_at` is moved on, in a short transaction of its own: bookkeeping that holds
    whether or not the route then succeeds, and that leaves the route's own session
    untouched (a read neither merges nor commits anything).
    """
    found = await lookup.fetch(session_id, user_id)
    if found is None:
        return None
    state, user = found
    now = utcnow()
    if state.revoked_at is not None or not user.is_active:
        return None
    if now >= state.created_at + max_age:
        return None
    if now - state.last_seen_at >= LAST_SEEN_RESOLUTION:
        async with sessionmaker() as db:
            await db.execute(
                update(AuthSession).where(AuthSession.id == session_id).values(last_seen_at=now)
            )
            await db.commit()
    return user


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
    return cast(CursorResult[Any], result).rowcount > 0


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
    return cast(CursorResult[Any], result).rowcount
