"""fastapi-users strategy: a JWT that names a server-side session row.

`authenticate` verifies the JWT, loads the session and its user in one query, and records
the session on `request.state` for the renewal middleware; the routes' `current_user`
(app.auth.deps) and the strategy's read_token both use it.
"""

import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi_users.authentication import AuthenticationBackend, CookieTransport
from fastapi_users.authentication.strategy import Strategy
from fastapi_users.manager import BaseUserManager
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import sessions
from app.auth.cookie import COOKIE_NAME
from app.auth.services import AuthComponents, auth_components, client_ip
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.core.security import SessionClaims
from app.users.models import User

AUTH_STATE_KEY = "auth_claims"


def current_claims(request: Request) -> SessionClaims | None:
    """The session that authenticated this request, if any."""
    return getattr(request.state, AUTH_STATE_KEY, None)


async def authenticate(request: Request, token: str | None) -> User | None:
    """The user of the live session `token` names (detached: in no ORM session), or None.

    Records the session's claims on the request for the renewal middleware.
    """
    if not token:
        return None
    components: AuthComponents = request.app.state.auth
    claims = components.codec.decode(token)
    if claims is None:
        return None
    user = await sessions.load_live_session(
        request.app.state.sessionmaker,
        components.lookup,
        claims.session_id,
        claims.user_id,
        components.session_max_age,
    )
    if user is None:
        return None
    setattr(request.state, AUTH_STATE_KEY, claims)
    return user


class SessionStrategy(Strategy[User, uuid.UUID]):  # type: ignore[type-var]  # see app.users.models.User
    def __init__(self, request: Request, db: AsyncSession, components: AuthComponents):
        self.request = request
        self.db = db
        self.components = components

    async def read_token(
        self,
        token: str | None,
        user_manager: BaseUserManager[User, uuid.UUID],  # type: ignore[type-var]  # see app.users.models.User
    ) -> User | None:
        return await authenticate(self.request, token)

    async def write_token(self, user: User) -> str:
        row = await sessions.create_session(
            self.db,
            user.id,
            ip=client_ip(self.request),
            user_agent=self.request.headers.get("user-agent"),
        )
        return self.components.codec.encode(SessionClaims(user.id, row.id), utcnow())

    async def destroy_token(self, token: str, user: User) -> None:
        claims = self.components.codec.decode(token)
        if claims is not None:
            await sessions.revoke_session(self.db, claims.session_id, user.id)


async def get_strategy(
    request: Request,
    db: SessionDep,
    components: Annotated[AuthComponents, Depends(auth_components)],
) -> SessionStrategy:
    return SessionStrategy(request, db, components)


class SessionBackend(AuthenticationBackend[User, uuid.UUID]):  # type: ignore[type-var]  # see app.users.models.User
    """Login and logout answer with the app's own cookie policy (built from settings).

    The module-level transport only names the cookie, for reading it and for OpenAPI.
    """

    async def login(self, strategy: SessionStrategy, user: User):  # type: ignore[override]
        token = await strategy.write_token(user)
        return await strategy.components.cookie.get_login_response(token)

    async def logout(self, strategy: SessionStrategy, user: User, token: str):  # type: ignore[override]
        await strategy.destroy_token(token, user)
        return strategy.components.cookie.logout_response()


auth_backend = SessionBackend(
    name="cookie",
    transport=CookieTransport(cookie_name=COOKIE_NAME),
    get_strategy=get_strategy,
)
