"""Per-app auth components, built once from settings and kept on `app.state.auth`."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from limits import RateLimitItem
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.clientip import ClientAddress
from app.auth.cookie import SessionCookie, build_session_cookie
from app.auth.lookup import SessionLookup
from app.auth.ratelimit import RateLimits
from app.core.config import Settings
from app.core.security import PasswordHasher, SessionTokenCodec


@dataclass(frozen=True)
class AuthComponents:
    cookie: SessionCookie
    codec: SessionTokenCodec
    hasher: PasswordHasher
    limits: RateLimits
    lookup: SessionLookup
    client_address: ClientAddress
    session_max_age: timedelta
    secret: str = field(repr=False)

    @classmethod
    def build(cls, settings: Settings, engine: AsyncEngine) -> "AuthComponents":
        secret = settings.SECRET_KEY.get_secret_value()
        return cls(
            cookie=build_session_cookie(settings),
            codec=SessionTokenCodec(secret, settings.SESSION_LIFETIME_SECONDS),
            hasher=PasswordHasher(settings.PASSWORD_HASH_THREADS),
            limits=RateLimits(settings),
            lookup=SessionLookup(engine),
            client_address=ClientAddress(settings.TRUSTED_PROXIES),
            session_max_age=timedelta(seconds=settings.SESSION_MAX_AGE_SECONDS),
            secret=secret,
        )

    async def close(self) -> None:
        await self.lookup.close()


async def auth_components(request: Request) -> AuthComponents:
    # async: FastAPI would run a plain `def` dependency in a worker thread, a costly hop.
    return request.app.state.auth


Components = Annotated[AuthComponents, Depends(auth_components)]


def limit_per_ip(item: Callable[[RateLimits], RateLimitItem]) -> Callable[..., Awaitable[None]]:
    """A route dependency counting each request against the client IP's budget of the
    limit `item` picks (429 beyond it): registrations, reset emails, confirmation codes."""

    async def limit(request: Request, components: Components) -> None:
        limits = components.limits
        await limits.hit(item(limits), client_ip(request) or "unknown")

    return limit


def client_ip(request: Request) -> str | None:
    """The client's address, or None when unknown (see app.auth.clientip)."""
    components: AuthComponents = request.app.state.auth
    return components.client_address(request.scope)
