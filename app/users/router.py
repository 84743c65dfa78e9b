"""/users/me: the signed-in user's own account."""

from fastapi import APIRouter, HTTPException, Request, status
from fastapi_users import exceptions
from fastapi_users.router.common import ErrorCode

from app.auth.deps import CurrentUser, UserManagerDep
from app.core.db import SessionDep
from app.users import service
from app.users.schemas import UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me", response_model=UserRead, summary="Мой аккаунт · My account")
async def read_me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.patch(
    "/me",
    response_model=UserRead,
    summary="Изменить мой аккаунт · Update my account",
    description=(
        "Changes name, phone, email or password. Changing the email or the password needs "
        "`current_password`; a new email must be confirmed again; a new password ends every "
        "other session."
    ),
    responses={400: {"description": "Email taken, password rejected, current password wrong"}},
)
async def update_me(
    update: UserUpdate,
    request: Request,
    user: CurrentUser,
    manager: UserManagerDep,
    db: SessionDep,
) -> UserRead:
    try:
        updated = await service.update_me(manager, db, user, update, request)
    except exceptions.InvalidPasswordException as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail={"code": ErrorCode.UPDATE_USER_INVALID_PASSWORD, "reason": exc.reason},
        ) from None
    except exceptions.UserAlreadyExists:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail=ErrorCode.UPDATE_USER_EMAIL_ALREADY_EXISTS
        ) from None
    return UserRead.model_validate(updated)
