"""/users/me/sessions: the signed-in user's own sessions (logins), listed and ended."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field

from app.auth import sessions
from app.auth.deps import CurrentUser
from app.auth.services import AuthComponents, auth_components
from app.auth.strategy import current_claims
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.core.openapi import error_responses

Components = Annotated[AuthComponents, Depends(auth_components)]


class SessionNotFound(NotFound):
    code = "SESSION_NOT_FOUND"
    message = "No such live session of yours"
    message_ru = "Такого действующего сеанса у вас нет."


class SessionRead(BaseModel):
    id: uuid.UUID = Field(description="Идентификатор сеанса · Session id")
    created_at: datetime = Field(description="Когда начат (вход) · When it started (login)")
    last_seen_at: datetime = Field(
        description="Последняя активность, с точностью до минуты · Last activity, to the minute"
    )
    user_agent: str | None = Field(description="Браузер или программа · Browser or program")
    ip: str | None = Field(description="IP-адрес при входе, если известен · IP at login, if known")
    current: bool = Field(description="Это текущий сеанс · This is the session of this request")


class SessionList(BaseModel):
    items: list[SessionRead] = Field(description="Сначала недавно активные · Most recent first")


router = APIRouter(prefix="/users/me/sessions", tags=["sessions"])


@router.get(
    "",
    summary="Мои сеансы · My active sessions",
    description=(
        "Действующие сеансы (входы) пользователя, сначала недавно активные · The user's live "
        "sessions, most recently active first."
    ),
    response_model=SessionList,
    responses=error_responses("UNAUTHORIZED"),
)
async def list_my_sessions(
    request: Request, user: CurrentUser, db: SessionDep, components: Components
) -> SessionList:
    claims = current_claims(request)
    rows = await sessions.list_live_sessions(db, user.id, components.session_max_age)
    return SessionList(
        items=[
            SessionRead(
                id=row.id,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                user_agent=row.user_agent,
                ip=row.ip,
                current=claims is not None and row.id == claims.session_id,
            )
            for row in rows
        ]
    )


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Завершить сеанс · End one of my sessions",
    description=(
        "Завершает один из ваших сеансов (например, забытый на чужом компьютере); текущий "
        "сеанс — с удалением cookie · Ends one of your sessions; ending the current one "
        "clears the cookie."
    ),
    responses={
        204: {"description": "Сеанс завершён · Session ended"},
        **error_responses("UNAUTHORIZED", "SESSION_NOT_FOUND"),
    },
)
async def revoke_my_session(
    session_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    components: Components,
) -> Response:
    if not await sessions.revoke_session(db, session_id, user.id):
        raise SessionNotFound()
    claims = current_claims(request)
    if claims is not None and claims.session_id == session_id:
        return components.cookie.logout_response()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
