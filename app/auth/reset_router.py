"""/auth/forgot-password and /auth/reset-password: a forgotten password, reset by a link
sent to the account's address.

On fastapi-users' reset machinery (UserManager.forgot_password / reset_password and their
hooks, see app.users.manager): the link's token is a JWT that expires after
RESET_PASSWORD_TOKEN_TTL_SECONDS and carries a fingerprint of the password, so it stops
working as soon as the password changes. Routes are ours, documented where they are built.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request, Response, status
from fastapi_users import exceptions
from fastapi_users.router.common import ErrorCode
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.auth.deps import UserManagerDep
from app.auth.services import limit_per_ip
from app.core.errors import define_error
from app.core.openapi import error_responses
from app.users.schemas import Email, Password, UserRead

# A real token is ~300 characters (three base64 parts, an argon2 fingerprint inside).
RESET_TOKEN_MAX_LENGTH = 2048

RESET_PASSWORD_BAD_TOKEN = define_error(
    ErrorCode.RESET_PASSWORD_BAD_TOKEN,
    400,
    "Ссылка для восстановления пароля недействительна: она устарела или уже использована. "
    "Запросите новую.",
    "The reset link is invalid, expired or already used: request a new one.",
    detail=ErrorCode.RESET_PASSWORD_BAD_TOKEN.value,
)
RESET_PASSWORD_INVALID_PASSWORD = define_error(
    ErrorCode.RESET_PASSWORD_INVALID_PASSWORD,
    400,
    "Пароль не подходит: нужно от 8 до 128 символов, и он не должен совпадать с email.",
    "The password is not allowed: 8 to 128 characters, not the email.",
    detail={
        "code": ErrorCode.RESET_PASSWORD_INVALID_PASSWORD.value,
        "reason": "Password must be at least 8 characters",
    },
)

ResetToken = Annotated[
    str,
    StringConstraints(min_length=1, max_length=RESET_TOKEN_MAX_LENGTH),
    Field(
        description=(
            "Значение параметра `token` из ссылки в письме · The `token` parameter of the "
            "link in the email"
        ),
        examples=["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI…"],
    ),
]


class ForgotPasswordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class ResetPasswordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: ResetToken
    password: Password


FORGOT_EXAMPLES: dict[str, dict[str, Any]] = {
    "forgot": {
        "summary": "Забыл пароль · I forgot my password",
        "value": {"email": "ivan@example.com"},
    },
    "other": {
        "summary": "Другой аккаунт · Another account",
        "value": {"email": "anna@example.com"},
    },
}
RESET_EXAMPLES: dict[str, dict[str, Any]] = {
    "reset": {
        "summary": "Новый пароль по ссылке из письма · A new password with the emailed link",
        "value": {
            "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI…",
            "password": "a new long passphrase",
        },
    },
    "russian": {
        "summary": "Пароль по-русски · A password in Russian",
        "value": {
            "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI…",
            "password": "новый длинный пароль",
        },
    },
}


router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/forgot-password",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    summary="Забыли пароль · Forgot the password",
    description=(
        "202, без тела (429 сверх лимитов). Если аккаунт с этим email есть и активен, на него уходит "
        "письмо со ссылкой `{PUBLIC_BASE_URL}/reset-password?token=…`; ссылка действует "
        "30 минут и перестаёт работать, как только пароль изменён. Не больше 10 запросов в "
        "час с одного адреса и 3 в час на один email (по умолчанию). 202, no body (429 beyond the limits): an existing "
        "active account gets an email with a link `{PUBLIC_BASE_URL}/reset-password?token=…`, "
        "valid 30 minutes and useless once the password changed; the answer does not tell "
        "whether the account exists. By default at most 10 requests an hour per IP and 3 per email."
    ),
    responses={
        202: {"description": "Принято · Accepted"},
        **error_responses("RATE_LIMITED"),
    },
    dependencies=[Depends(limit_per_ip(lambda limits: limits.forgot_password_ip))],
)
async def forgot_password(
    request: Request,
    body: Annotated[ForgotPasswordRequest, Body(openapi_examples=FORGOT_EXAMPLES)],
    manager: UserManagerDep,
) -> Response:
    await manager.request_password_reset(body.email, request)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@router.post(
    "/reset-password",
    response_model=UserRead,
    summary="Новый пароль по ссылке · Reset the password",
    description=(
        "`token` — из ссылки в письме (`POST /auth/forgot-password`). Пароль — по правилам "
        "регистрации. После смены все сеансы аккаунта завершаются (войдите заново), а на "
        "email аккаунта уходит уведомление. Ссылка одноразовая. `token` comes from the "
        "emailed link; the password follows the registration rules. Afterwards every "
        "session of the account has ended (log in again) and a notice goes to the "
        "account's address. A link works once."
    ),
    responses=error_responses(RESET_PASSWORD_BAD_TOKEN.code, RESET_PASSWORD_INVALID_PASSWORD.code),
)
async def reset_password(
    request: Request,
    body: Annotated[ResetPasswordRequest, Body(openapi_examples=RESET_EXAMPLES)],
    manager: UserManagerDep,
) -> UserRead:
    try:
        user = await manager.reset_password(body.token, body.password, request)
    except (
        exceptions.InvalidResetPasswordToken,
        exceptions.UserNotExists,
        exceptions.UserInactive,
    ):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail=RESET_PASSWORD_BAD_TOKEN.code
        ) from None
    except exceptions.InvalidPasswordException as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail={"code": RESET_PASSWORD_INVALID_PASSWORD.code, "reason": exc.reason},
        ) from None
    return UserRead.model_validate(user)
