"""Staff routes over users; mounted under the gated /admin router."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.auth.deps import AdminUser
from app.core.cursor import CURSOR_MAX_LENGTH
from app.core.db import SessionDep
from app.types.enums import UserRole
from app.users import service
from app.users.schemas import PRINTABLE, AdminUserUpdate, UserPage, UserRead

router = APIRouter(prefix="/users", tags=["admin: users"])


@router.get("", response_model=UserPage, summary="Список пользователей · List users")
async def list_users(
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=CURSOR_MAX_LENGTH)] = None,
    role: UserRole | None = None,
    q: Annotated[
        str | None,
        Query(max_length=100, pattern=PRINTABLE, description="Search in email, name and phone"),
    ] = None,
) -> UserPage:
    users, next_cursor = await service.list_users(
        db, limit=limit, cursor=cursor, role=role, q=q
    )
    return UserPage(items=[UserRead.model_validate(u) for u in users], next_cursor=next_cursor)


@router.get("/{user_id}", response_model=UserRead, summary="Пользователь · One user")
async def get_user(user_id: uuid.UUID, db: SessionDep) -> UserRead:
    return UserRead.model_validate(await service.get_user(db, user_id))


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    summary="Роль и активность пользователя · Change a user's role or activity",
    description="Either change ends all of the user's sessions.",
)
async def update_user(
    user_id: uuid.UUID, update: AdminUserUpdate, admin: AdminUser, db: SessionDep
) -> UserRead:
    return UserRead.model_validate(await service.admin_update_user(db, admin, user_id, update))
