"""Password hashing off the event loop, and the session JWT codec.

fastapi-users hashes synchronously; argon2 costs ~100 ms of CPU, which would stall every
other request. Hashes run in worker threads bounded by a capacity limiter sized by
PASSWORD_HASH_THREADS, so a login storm queues on its own instead of starving the loop.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
import jwt
from fastapi_users.password import PasswordHelper

SESSION_AUDIENCE = "shop:session"
JWT_ALGORITHM = "HS256"


class PasswordHasher:
    """Async facade over fastapi-users' PasswordHelper (argon2 via pwdlib)."""

    def __init__(self, threads: int = 1):
        self.helper = PasswordHelper()
        self._limiter = anyio.CapacityLimiter(threads)

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self.helper.hash, password, limiter=self._limiter)

    async def verify_and_update(self, password: str, hashed: str) -> tuple[bool, str | None]:
        return await anyio.to_thread.run_sync(
            self.helper.verify_and_update, password, hashed, limiter=self._limiter
        )


@dataclass(frozen=True, slots=True)
class SessionClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID


class SessionTokenCodec:
    """HS256 JWT naming a server-side session: `sub`, `sid`, `iat`, `exp`, `aud`."""

    def __init__(self, secret: str, lifetime_seconds: int):
        self._secret = secret
        self._lifetime = timedelta(seconds=lifetime_seconds)

    def encode(self, claims: SessionClaims, now: datetime) -> str:
        payload = {
            "sub": str(claims.user_id),
            "sid": str(claims.session_id),
            "aud": SESSION_AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int((now + self._lifetime).timestamp()),
        }
        return jwt.encode(payload, self._secret, algorithm=JWT_ALGORITHM)

    def decode(self, token: str) -> SessionClaims | None:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                audience=SESSION_AUDIENCE,
                options={"require": ["sub", "sid", "iat", "exp", "aud"]},
            )
            return SessionClaims(uuid.UUID(payload["sub"]), uuid.UUID(payload["sid"]))
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
            return None
