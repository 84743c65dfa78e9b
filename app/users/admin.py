"""Staff routes over users; mounted under the gated /admin router."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query
from fastapi import Path as PathParam
from pydantic import AfterValidator

from app.auth.deps import AdminUser
from app.core.cursor import PageCursor, PageSize
from app.core.db import SessionDep
from app.core.openapi import error_responses
from app.types.enums import UserRole
from app.users import service
from app.users.schemas import (
    ADMIN_UPDATE_EXAMPLES,
    AdminUserUpdate,
    UserPage,
    UserRead,
    printable,
)

router = APIRouter(prefix="/users", tags=["admin: users"])


def _printable_or_none(value: str | None) -> str | None:
    return None if value is None else printable(value)


UserId = Annotated[uuid.UUID, PathParam(description="Идентификатор пользователя · User id")]


@router.get(
    "",
    response_model=UserPage,
    summary="Список пользователей · List users",
    description=(
        "Сначала новые, по `limit` на странице. Следующая страница — с `cursor` из "
        "`next_cursor` предыдущего ответа; `null` значит, что страниц больше нет. "
        "Newest first, `limit` per page; pass the previous page's `next_cursor` as `cursor`."
    ),
    responses=error_responses("INVALID_CURSOR"),
)
async def list_users(
    db: SessionDep,
    limit: PageSize = 50,
    cursor: PageCursor = None,
    role: Annotated[
        UserRole | None, Query(description="Только с этой ролью · Only this role")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100,
            description=(
                "Поиск по email, имени и телефону · Search in email, name and phone "
                "(case-insensitive)"
            ),
        ),
        AfterValidator(_printable_or_none),
    ] = None,
) -> UserPage:
    users, next_cursor = await service.list_users(db, limit=limit, cursor=cursor, role=role, q=q)
    return UserPage(items=[UserRead.model_validate(u) for u in users], next_cursor=next_cursor)


@router.get(
    "/{user_id}",
    response_model=UserRead,
    summary="Пользователь · One user",
    description="Один пользователь по идентификатору · One user by id.",
    responses=error_responses("USER_NOT_FOUND"),
)
async def get_user(user_id: UserId, db: SessionDep) -> UserRead:
    return UserRead.model_validate(await service.get_user(db, user_id))


@router.patch(
    "/{user_id}",
    response_model=UserRead,
    summary="Роль и активность пользователя · Change a user's role or activity",
    description=(
        "Меняет роль и/или активность; любое изменение завершает все сеансы пользователя. "
        "Свою роль и активность менять нельзя. Either change ends all of the user's "
        "sessions; not on yourself."
    ),
    responses=error_responses("USER_NOT_FOUND", "ADMIN_CANNOT_CHANGE_OWN_ACCESS"),
)
async def update_user(
    user_id: UserId,
    update: Annotated[AdminUserUpdate, Body(openapi_examples=ADMIN_UPDATE_EXAMPLES)],
    admin: AdminUser,
    db: SessionDep,
) -> UserRead:
    return UserRead.model_validate(await service.admin_update_user(db, admin, user_id, update))
