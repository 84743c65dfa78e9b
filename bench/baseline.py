"""The two apps `make bench` measures the service against, each served by the bench itself
with the same uvicorn configuration as the service.

- `bare_app`: FastAPI with one `/healthz` endpoint returning the same JSON as the
  service's: the framework's own cost per request, the floor for `/healthz`.
- `plain_app`: fastapi-users set up the way its documentation shows (SQLAlchemy user
  table, `CookieTransport` + `JWTStrategy`, the register, login and users routers):
  the plain cookie-auth setup the service's `/users/me` is compared with.

Configuration: BASELINE_DATABASE_URL (an SQLite file; the tables are created at start)
and BASELINE_SECRET, both set by the bench.
"""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, CookieTransport, JWTStrategy
from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

bare_app = FastAPI()


@bare_app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


SECRET = os.environ.get("BASELINE_SECRET", "")
DATABASE_URL = os.environ.get("BASELINE_DATABASE_URL", "sqlite+aiosqlite:///baseline.db")
LIFETIME_SECONDS = 7 * 24 * 3600


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


engine = create_async_engine(DATABASE_URL)
sessionmaker = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        yield session


async def get_user_db(
    session: Annotated[AsyncSession, Depends(get_session)],
) -> AsyncIterator[SQLAlchemyUserDatabase]:
    yield SQLAlchemyUserDatabase(session, User)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


async def get_user_manager(
    user_db: Annotated[SQLAlchemyUserDatabase, Depends(get_user_db)],
) -> AsyncIterator[UserManager]:
    yield UserManager(user_db)


def get_jwt_strategy() -> JWTStrategy:
    return JWTStrategy(secret=SECRET, lifetime_seconds=LIFETIME_SECONDS)


backend = AuthenticationBackend(
    name="cookie",
    transport=CookieTransport(cookie_name="plain_session", cookie_max_age=LIFETIME_SECONDS),
    get_strategy=get_jwt_strategy,
)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [backend])


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield
    await engine.dispose()


plain_app = FastAPI(lifespan=lifespan)
plain_app.include_router(fastapi_users.get_auth_router(backend), prefix="/auth")
plain_app.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth")
plain_app.include_router(
    fastapi_users.get_users_router(UserRead, schemas.BaseUserUpdate), prefix="/users"
)
