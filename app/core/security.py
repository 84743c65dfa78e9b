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
from jwt.algorithms import HMACAlgorithm

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


class _CheckedKeyHMAC(HMACAlgorithm):
    """PyJWT's HS256, with the app's one secret checked once instead of on every call.

    PyJWT's prepare_key re-checks an HMAC secret on every encode and decode (that it is
    not a PEM, SSH or DER key: attempts to load it as each), ~20 µs of the ~60 µs a
    decode costs here. The secret is checked once, by that same prepare_key, when the
    codec is built; the key object it returned is then used as it is. Any other key still
    goes through the full check. Signing and verifying stay PyJWT's own.
    """

    def __init__(self, secret: str):
        super().__init__(HMACAlgorithm.SHA256)
        self.key = super().prepare_key(secret)

    def prepare_key(self, key: str | bytes) -> bytes:
        if key is self.key:
            return self.key
        return super().prepare_key(key)


class SessionTokenCodec:
    """HS256 JWT naming a server-side session: `sub`, `sid`, `iat`, `exp`, `aud`."""

    def __init__(self, secret: str, lifetime_seconds: int):
        self._lifetime = timedelta(seconds=lifetime_seconds)
        algorithm = _CheckedKeyHMAC(secret)
        self._key = algorithm.key
        # Options set once, not merged on every call.
        self._jwt = jwt.PyJWT(options={"require": ["sub", "sid", "iat", "exp", "aud"]})
        # PyJWT takes no algorithm table of ours; its own JWS object gets the HS256 above
        # through its public (un)register methods, and keeps no other algorithm.
        jws = self._jwt._jws
        for name in jws.get_algorithms():
            jws.unregister_algorithm(name)
        jws.register_algorithm(JWT_ALGORITHM, algorithm)

    def encode(self, claims: SessionClaims, now: datetime) -> str:
        payload = {
            "sub": str(claims.user_id),
            "sid": str(claims.session_id),
            "aud": SESSION_AUDIENCE,
            "iat": int(now.timestamp()),
            "exp": int((now + self._lifetime).timestamp()),
        }
        return self._jwt.encode(payload, self._key, algorithm=JWT_ALGORITHM)

    def decode(self, token: str) -> SessionClaims | None:
        try:
            payload = self._jwt.decode(
                token, self._key, algorithms=[JWT_ALGORITHM], audience=SESSION_AUDIENCE
            )
            return SessionClaims(uuid.UUID(payload["sub"]), uuid.UUID(payload["sid"]))
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
            return None
