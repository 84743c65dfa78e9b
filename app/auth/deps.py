"""Typed dependencies for routes: who is calling, and may they."""

import uuid
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi_users import FastAPIUsers

from app.auth.strategy import auth_backend
from app.core.errors import define_error
from app.types.enums import UserRole
from app.users.manager import UserManager, get_user_manager
from app.users.models import User

fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])  # type: ignore[type-var]  # see app.users.models.User

current_user = fastapi_users.current_user(active=True)

CurrentUser = Annotated[User, Depends(current_user)]
UserManagerDep = Annotated[UserManager, Depends(get_user_manager)]


ADMIN_ROLE_REQUIRED = define_error(
    "ADMIN_ROLE_REQUIRED",
    403,
    "Раздел только для администраторов.",
    "This section is for administrators only.",
    detail="ADMIN_ROLE_REQUIRED",
)


async def require_admin(user: CurrentUser) -> User:
    """Anonymous → 401 (from current_user); signed in without the admin role → 403."""
    if user.role != UserRole.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=ADMIN_ROLE_REQUIRED.code)
    return user


AdminUser = Annotated[User, Depends(require_admin)]


EMAIL_NOT_CONFIRMED = define_error(
    "EMAIL_NOT_CONFIRMED",
    403,
    "Сначала подтвердите email: введите код из письма (POST /auth/confirm) или запросите "
    "новый (POST /auth/confirm/resend).",
    "Confirm your email first: enter the code we sent (POST /auth/confirm) or ask for a new "
    "one (POST /auth/confirm/resend).",
    detail="EMAIL_NOT_CONFIRMED",
)


async def require_verified(user: CurrentUser) -> User:
    """Anonymous → 401; signed in with an unconfirmed email → 403 EMAIL_NOT_CONFIRMED."""
    if not user.is_verified:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail=EMAIL_NOT_CONFIRMED.code)
    return user


VerifiedUser = Annotated[User, Depends(require_verified)]
