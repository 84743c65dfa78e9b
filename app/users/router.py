"""/users/me: the signed-in user's own account."""

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Request, status
from fastapi_users import exceptions
from fastapi_users.router.common import ErrorCode

from app.auth.deps import CurrentUser, UserInSession, UserManagerDep
from app.core.db import SessionDep
from app.core.errors import define_error
from app.core.openapi import error_responses
from app.users import service
from app.users.schemas import UPDATE_EXAMPLES, UserRead, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])

UPDATE_USER_EMAIL_ALREADY_EXISTS = define_error(
    ErrorCode.UPDATE_USER_EMAIL_ALREADY_EXISTS,
    400,
    "Этот email уже занят другим аккаунтом.",
    "This email is already used by another account.",
    detail=ErrorCode.UPDATE_USER_EMAIL_ALREADY_EXISTS.value,
)
UPDATE_USER_INVALID_PASSWORD = define_error(
    ErrorCode.UPDATE_USER_INVALID_PASSWORD,
    400,
    "Новый пароль не подходит: нужно от 8 до 128 символов, и он не должен совпадать с email.",
    "The new password is not allowed: 8 to 128 characters, not the email.",
    detail={
        "code": ErrorCode.UPDATE_USER_INVALID_PASSWORD.value,
        "reason": "Password must be at least 8 characters",
    },
)


@router.get(
    "/me",
    response_model=UserRead,
    summary="Мой аккаунт · My account",
    description="Аккаунт, под которым вы вошли · The account you are signed in as.",
    responses=error_responses("UNAUTHORIZED"),
)
async def read_me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.patch(
    "/me",
    response_model=UserRead,
    summary="Изменить мой аккаунт · Update my account",
    description=(
        "Меняет имя, телефон, email или пароль; не переданные поля не меняются. Для смены "
        "email или пароля нужен `current_password`; новый email нужно подтвердить заново; "
        "новый пароль завершает все остальные сеансы. Changes name, phone, email or "
        "password. Changing the email or the password needs `current_password` (5 wrong "
        "tries in 5 minutes, then 429); a new email must be confirmed again; a new password "
        "ends every other session."
    ),
    responses=error_responses(
        "UNAUTHORIZED",
        "CURRENT_PASSWORD_REQUIRED",
        "CURRENT_PASSWORD_INVALID",
        UPDATE_USER_EMAIL_ALREADY_EXISTS.code,
        UPDATE_USER_INVALID_PASSWORD.code,
        "RATE_LIMITED",
    ),
)
async def update_me(
    update: Annotated[UserUpdate, Body(openapi_examples=UPDATE_EXAMPLES)],
    request: Request,
    user: UserInSession,
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
