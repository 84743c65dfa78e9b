"""/auth: register, login, logout (fastapi-users routers), logout-all; /users/me/sessions."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel

from app.auth import sessions
from app.auth.deps import CurrentUser, fastapi_users
from app.auth.services import AuthComponents, auth_components, client_ip
from app.auth.strategy import auth_backend, current_claims
from app.core.db import SessionDep
from app.core.errors import NotFound
from app.users.schemas import UserCreate, UserRead

Components = Annotated[AuthComponents, Depends(auth_components)]


async def limit_registrations(request: Request, components: Components) -> None:
    await components.limits.hit(components.limits.register_ip, client_ip(request) or "unknown")


router = APIRouter(prefix="/auth", tags=["auth"])
router.include_router(
    fastapi_users.get_register_router(UserRead, UserCreate),
    dependencies=[Depends(limit_registrations)],
)
router.include_router(fastapi_users.get_auth_router(auth_backend))


@router.post(
    "/logout-all",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Выйти везде · Log out everywhere",
    description="Revokes every session of the current user, this one included.",
)
async def logout_all(user: CurrentUser, db: SessionDep, components: Components) -> Response:
    await sessions.revoke_user_sessions(db, user.id)
    return components.cookie.logout_response()


class SessionRead(BaseModel):
    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool


class SessionList(BaseModel):
    items: list[SessionRead]


sessions_router = APIRouter(prefix="/users/me/sessions", tags=["sessions"])


@sessions_router.get("", summary="Мои сеансы · My active sessions", response_model=SessionList)
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


@sessions_router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Завершить сеанс · End one of my sessions",
    responses={404: {"description": "No such live session of yours"}},
)
async def revoke_my_session(
    session_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    db: SessionDep,
    components: Components,
) -> Response:
    if not await sessions.revoke_session(db, session_id, user.id):
        raise NotFound("No such session")
    claims = current_claims(request)
    if claims is not None and claims.session_id == session_id:
        return components.cookie.logout_response()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
