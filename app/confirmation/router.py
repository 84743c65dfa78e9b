"""/auth/confirm, /auth/confirm/resend and /users/me/confirmation."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response, status

from app.auth.deps import CurrentUser, UserManagerDep
from app.auth.services import Components, limit_per_ip
from app.confirmation import service
from app.confirmation.schemas import (
    CONFIRM_EXAMPLES,
    RESEND_EXAMPLES,
    ConfirmationState,
    ConfirmRequest,
    ResendRequest,
)
from app.confirmation.service import ConfirmationPolicy, Outcome
from app.core.db import SessionDep
from app.core.openapi import error_responses

router = APIRouter(prefix="/auth/confirm", tags=["auth"])
me_router = APIRouter(prefix="/users/me", tags=["users"])


def _policy(request: Request) -> ConfirmationPolicy:
    return request.app.state.confirmation


@router.post(
    "",
    response_model=ConfirmationState,
    summary="Подтвердить email кодом · Confirm the email with the code",
    description=(
        "Вход не нужен. Код из 6 цифр живёт 10 минут; после 5 неверных попыток он "
        "перестаёт действовать — запросите новый (значения по умолчанию). Ответ не зависит "
        "от того, есть ли такой аккаунт. No login needed. By default the 6-digit code lives "
        "10 minutes and dies after 5 wrong entries. A wrong code, or an email with no account, answers "
        "`CONFIRMATION_CODE_INVALID`; only the right code tells that it expired, was used "
        "or was burned. By default at most 30 codes a minute per IP."
    ),
    responses=error_responses(
        *(error.code for error in service.ERRORS.values()),
        "RATE_LIMITED",
    ),
    dependencies=[Depends(limit_per_ip(lambda limits: limits.confirm_ip))],
)
async def confirm(
    request: Request,
    body: Annotated[ConfirmRequest, Body(openapi_examples=CONFIRM_EXAMPLES)],
    manager: UserManagerDep,
    db: SessionDep,
) -> ConfirmationState:
    user = await manager.user_db.get_by_email(body.email)
    outcome = await _policy(request).confirm(db, user, body.code)
    if outcome is not Outcome.CONFIRMED:
        # The wrong entry was counted: keep that count although the answer is an error
        # (the session dependency rolls back on errors).
        await db.commit()
        raise service.ERRORS[outcome]()
    return ConfirmationState(confirmation_status=True)


@router.post(
    "/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_class=Response,
    summary="Прислать код ещё раз · Send a new code",
    description=(
        "Всегда 202. Новый код уходит, только если аккаунт есть и ещё не подтверждён, не "
        "чаще раза в минуту и не больше 5 раз в час (по умолчанию); старый код перестаёт "
        "действовать. Always 202: a new code goes only to an existing unconfirmed account, "
        "by default at most once a minute and 5 times an hour; it replaces the old code."
    ),
    responses={202: {"description": "Принято · Accepted"}},
)
async def resend(
    request: Request,
    body: Annotated[ResendRequest, Body(openapi_examples=RESEND_EXAMPLES)],
    manager: UserManagerDep,
    db: SessionDep,
    components: Components,
) -> Response:
    limits = components.limits
    key = limits.account_key(body.email)
    # Only codes actually sent count against the budget: clicks within the cooldown,
    # which send nothing, cannot use it up.
    if not await limits.available(limits.confirm_resend_account, key):
        return Response(status_code=status.HTTP_202_ACCEPTED)
    user = await manager.user_db.get_by_email(body.email)
    if user is None or not user.is_active or user.is_verified:
        return Response(status_code=status.HTTP_202_ACCEPTED)
    if await _policy(request).issue(db, user, respect_cooldown=True):
        await limits.count(limits.confirm_resend_account, key)
    return Response(status_code=status.HTTP_202_ACCEPTED)


@me_router.get(
    "/confirmation",
    response_model=ConfirmationState,
    summary="Статус подтверждения email · My email confirmation status",
    description=(
        "Статус с учётом срока кода: истёкший код сразу даёт false. The status with expiry "
        "applied: an expired code reads false at once."
    ),
    responses=error_responses("UNAUTHORIZED"),
)
async def my_confirmation(request: Request, user: CurrentUser, db: SessionDep) -> ConfirmationState:
    confirmation_status, expires_at = await _policy(request).status_of(db, user)
    return ConfirmationState(confirmation_status=confirmation_status, expires_at=expires_at)
