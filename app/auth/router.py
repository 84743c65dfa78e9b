"""/auth: register, log in, log out, log out everywhere.

The routes are ours, on fastapi-users' user manager and auth backend: described, with
every response declared, where they are built (fastapi-users' generated routers carried
raw names and a six-field OAuth2 form that QA could not use as it stood).
"""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Form, HTTPException, Request, Response, status
from fastapi_users import exceptions
from fastapi_users.router.common import ErrorCode
from pydantic import BaseModel, ConfigDict, Field

from app.auth import sessions
from app.auth.deps import CookieToken, CurrentUser, UserManagerDep
from app.auth.services import Components, limit_per_ip
from app.auth.strategy import SessionStrategy, auth_backend, get_strategy
from app.core.db import SessionDep
from app.core.errors import define_error
from app.core.openapi import error_responses
from app.users.schemas import REGISTRATION_EXAMPLES, UserCreate, UserRead

Strategy = Annotated[SessionStrategy, Depends(get_strategy)]

REGISTER_USER_ALREADY_EXISTS = define_error(
    ErrorCode.REGISTER_USER_ALREADY_EXISTS,
    400,
    "Аккаунт с таким email уже есть. Войдите или восстановите пароль.",
    "An account with this email already exists. Log in instead.",
    detail=ErrorCode.REGISTER_USER_ALREADY_EXISTS.value,
)
REGISTER_INVALID_PASSWORD = define_error(
    ErrorCode.REGISTER_INVALID_PASSWORD,
    400,
    "Пароль не подходит: нужно от 8 до 128 символов, и он не должен совпадать с email.",
    "The password is not allowed: 8 to 128 characters, not the email.",
    detail={
        "code": ErrorCode.REGISTER_INVALID_PASSWORD.value,
        "reason": "Password must be at least 8 characters",
    },
)
LOGIN_BAD_CREDENTIALS = define_error(
    ErrorCode.LOGIN_BAD_CREDENTIALS,
    400,
    "Неверный email или пароль.",
    "Wrong email or password.",
    detail=ErrorCode.LOGIN_BAD_CREDENTIALS.value,
)

# The registration example's credentials: QA can Execute register, then login, unchanged.
_REGISTRATION = REGISTRATION_EXAMPLES["customer"]["value"]
LOGIN_EXAMPLE = {"username": _REGISTRATION["email"], "password": _REGISTRATION["password"]}


class LoginForm(BaseModel):
    """Only the two fields that matter (not OAuth2's six)."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(
        description="Email, указанный при регистрации · The email you registered with",
        examples=[LOGIN_EXAMPLE["username"]],
        json_schema_extra={"format": "email"},
    )
    password: str = Field(
        description="Пароль · Password",
        examples=[LOGIN_EXAMPLE["password"]],
        json_schema_extra={"format": "password"},
    )


router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserRead,
    summary="Регистрация · Register",
    description=(
        "Создаёт аккаунт покупателя; затем войдите через `POST /auth/login`. "
        "Creates a customer account; then log in with `POST /auth/login`. "
        "Не больше 20 регистраций в час с одного адреса · At most 20 per hour per IP."
    ),
    responses=error_responses(
        REGISTER_USER_ALREADY_EXISTS.code, REGISTER_INVALID_PASSWORD.code, "RATE_LIMITED"
    ),
    dependencies=[Depends(limit_per_ip(lambda limits: limits.register_ip))],
)
async def register(
    request: Request,
    user_create: Annotated[UserCreate, Body(openapi_examples=REGISTRATION_EXAMPLES)],
    manager: UserManagerDep,
) -> UserRead:
    try:
        user = await manager.create(user_create, safe=True, request=request)  # type: ignore[type-var]  # our UserCreate is not BaseUserCreate
    except exceptions.UserAlreadyExists:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail=REGISTER_USER_ALREADY_EXISTS.code
        ) from None
    except exceptions.InvalidPasswordException as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail={"code": REGISTER_INVALID_PASSWORD.code, "reason": exc.reason},
        ) from None
    return UserRead.model_validate(user)


@router.post(
    "/login",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Вход · Log in",
    description=(
        "Поля формы: `username` — это email, и `password`. При успехе (204, пустой ответ) "
        "ставится HttpOnly-cookie сеанса, и все следующие запросы с этой страницы идут от "
        "вашего имени. Form fields: `username` is the email, `password`. On success (204, "
        "empty body) the HttpOnly session cookie is set and every later request from this "
        "page is signed in. Limits: 30 attempts a minute per IP, 5 wrong passwords per "
        "account in 5 minutes."
    ),
    responses={
        204: {
            "description": "Вы вошли · Signed in: the session cookie is set",
            "headers": {
                "Set-Cookie": {
                    "description": "shop_session=…; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=604800",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        },
        **error_responses(LOGIN_BAD_CREDENTIALS.code, "RATE_LIMITED"),
    },
    openapi_extra={
        "requestBody": {
            "content": {"application/x-www-form-urlencoded": {"example": LOGIN_EXAMPLE}}
        }
    },
)
async def login(
    request: Request,
    credentials: Annotated[LoginForm, Form()],
    manager: UserManagerDep,
    strategy: Strategy,
) -> Response:
    user = await manager.authenticate(credentials)  # type: ignore[arg-type]  # duck-typed form
    if user is None or not user.is_active:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, detail=LOGIN_BAD_CREDENTIALS.code)
    response = await auth_backend.login(strategy, user)
    await manager.on_after_login(user, request, response)
    return response


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Выход · Log out",
    description="Завершает этот сеанс и удаляет cookie · Ends this session and clears the cookie.",
    responses={
        204: {"description": "Сеанс завершён · Session ended"},
        **error_responses("UNAUTHORIZED"),
    },
)
async def logout(user: CurrentUser, token: CookieToken, strategy: Strategy) -> Response:
    assert token is not None  # current_user answered 401 without one
    return await auth_backend.logout(strategy, user, token)


@router.post(
    "/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Выйти везде · Log out everywhere",
    description=(
        "Завершает все сеансы пользователя, включая этот · Revokes every session of the "
        "current user, this one included."
    ),
    responses={
        204: {"description": "Все сеансы завершены · All sessions ended"},
        **error_responses("UNAUTHORIZED"),
    },
)
async def logout_all(user: CurrentUser, db: SessionDep, components: Components) -> Response:
    await sessions.revoke_user_sessions(db, user.id)
    return components.cookie.logout_response()
