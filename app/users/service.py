"""User rules that are not fastapi-users' own: self-service updates, the admin listing."""

import uuid

from fastapi import Request
from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import sessions
from app.auth.strategy import current_claims
from app.core.clock import utcnow
from app.core.cursor import newest_first_page
from app.core.errors import DomainError, NotFound
from app.services.email.outbox import withdraw_bulk
from app.types.enums import UserRole
from app.users import notices
from app.users.manager import UserManager
from app.users.models import User
from app.users.schemas import AdminUserUpdate, UserUpdate


class CurrentPasswordRequired(DomainError):
    code = "CURRENT_PASSWORD_REQUIRED"
    message = "Changing the email or the password needs current_password"
    message_ru = "Чтобы сменить email или пароль, введите текущий пароль."


class CurrentPasswordInvalid(DomainError):
    code = "CURRENT_PASSWORD_INVALID"
    message = "current_password is wrong"
    message_ru = "Текущий пароль введён неверно."


class UserNotFound(NotFound):
    code = "USER_NOT_FOUND"
    message = "No such user"
    message_ru = "Такого пользователя нет."


class CannotChangeOwnAccess(DomainError):
    code = "ADMIN_CANNOT_CHANGE_OWN_ACCESS"
    message = "An admin cannot change their own role or deactivate themselves"
    message_ru = (
        "Нельзя менять свою роль или отключать свой аккаунт: попросите другого администратора."
    )


async def update_me(
    manager: UserManager, db: AsyncSession, user: User, update: UserUpdate, request: Request
) -> User:
    """Apply a self-service update. Email and password changes need the current password;
    a password change ends every other session of the user."""
    changes = update.create_update_dict()
    current_password = changes.pop("current_password", None)
    if "email" in changes or "password" in changes:
        if current_password is None:
            raise CurrentPasswordRequired()
        # A budget of its own, keyed by the user: anonymous guesses at this email (the
        # login budget) can't lock the owner out of changing their own password.
        limits = manager.components.limits
        key = limits.user_key(user.id)
        await limits.hit(limits.current_password, key)
        if not await manager.verify_password(user, current_password):
            raise CurrentPasswordInvalid()
        await limits.reset(limits.current_password, key)
    if not changes:
        return user
    password_changed = "password" in changes
    old_email = user.email
    updated = await manager._update(user, changes)  # a new email also unverifies (fastapi-users)
    now = utcnow()
    outbox = request.app.state.outbox
    if password_changed:
        claims = current_claims(request)
        await sessions.revoke_user_sessions(db, user.id, keep=claims.session_id if claims else None)
        notices.password_changed(
            outbox, db, to=old_email, name=updated.name, user_id=user.id, at=now
        )
    if updated.email != old_email:
        await request.app.state.confirmation.issue(db, updated)
        notices.email_changed(
            outbox,
            db,
            old_address=old_email,
            new_address=updated.email,
            name=updated.name,
            user_id=user.id,
            at=now,
        )
    if changes.get("newsletter_opt_in") is False or updated.email != old_email:
        # Newsletters not yet sent stop at once (to the old address, too).
        await withdraw_bulk(db, user.id)
    await manager.on_after_update(updated, changes, request)
    return updated


# --- admin ---------------------------------------------------------------------------


async def list_users(
    db: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    role: UserRole | None,
    q: str | None,
) -> tuple[list[User], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    stmt: Select[tuple[User]] = select(User)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if q:
        needle = q.strip().lower()
        stmt = stmt.where(
            or_(
                func.lower(User.email).contains(needle, autoescape=True),
                func.lower(User.name).contains(needle, autoescape=True),
                User.phone.contains(needle, autoescape=True),
            )
        )
    return await newest_first_page(db, stmt, User, limit=limit, cursor=cursor)


async def get_user(db: AsyncSession, user_id: uuid.UUID) -> User:
    user = await db.get(User, user_id)
    if user is None:
        raise UserNotFound()
    return user


async def admin_update_user(
    db: AsyncSession, admin: User, user_id: uuid.UUID, update: AdminUserUpdate
) -> User:
    """Change role or activity; either change ends all of the user's sessions."""
    user = await get_user(db, user_id)
    changes = update.model_dump(exclude_unset=True)
    changed = {k: v for k, v in changes.items() if getattr(user, k) != v}
    if not changed:
        return user
    if user.id == admin.id:
        raise CannotChangeOwnAccess()
    for key, value in changed.items():
        setattr(user, key, value)
    await sessions.revoke_user_sessions(db, user.id)
    if changed.get("is_active") is False:  # only active users receive newsletters
        await withdraw_bulk(db, user.id)
    await db.flush()
    return user
