"""Login and registration throttling on the `limits` library.

In memory by default; in Redis when REDIS_URL is set, so several instances share counts.
Defaults follow django-allauth: 5 failed logins per account per 5 minutes, 30 login
attempts per IP per minute, 20 registrations per IP per hour; password reset emails: 10
requests per IP and 3 per account an hour.
"""

import hashlib
import math
import time
import uuid

from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.retry import ConstantRetryPolicy
from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from app.core.config import Settings
from app.core.errors import RateLimited


class RateLimits:
    def __init__(self, settings: Settings):
        self.enabled = settings.RATE_LIMIT_ENABLED
        if settings.REDIS_URL:
            # A Redis that never answers fails the request (503) within the timeout, not
            # after coredis's default retries (5 × the timeout); a dropped connection is
            # retried once, at once.
            timeout = settings.DB_CONNECT_TIMEOUT_SECONDS
            storage = storage_from_string(
                f"async+{settings.REDIS_URL}",
                connect_timeout=timeout,
                stream_timeout=timeout,
                # limits types its pass-through options as scalars; coredis takes the policy.
                retry_policy=ConstantRetryPolicy((RedisConnectionError,), retries=2, delay=0),  # type: ignore[arg-type]
            )
        else:
            storage = storage_from_string("async+memory://")
        self.storage = storage  # /readyz pings it
        self._limiter = MovingWindowRateLimiter(storage)
        self.login_account = _namespaced(settings.RATE_LIMIT_LOGIN_ACCOUNT, "login-account")
        self.login_ip = _namespaced(settings.RATE_LIMIT_LOGIN_IP, "login-ip")
        self.register_ip = _namespaced(settings.RATE_LIMIT_REGISTER_IP, "register-ip")
        # Reset emails: per IP (every request) and per account (every request naming it,
        # whether or not the account exists), so no inbox can be flooded.
        self.forgot_password_ip = _namespaced(
            settings.RATE_LIMIT_FORGOT_PASSWORD_IP, "forgot-password-ip"
        )
        self.forgot_password_account = _namespaced(
            settings.RATE_LIMIT_FORGOT_PASSWORD_ACCOUNT, "forgot-password-account"
        )
        # Confirmation: codes tried per IP; new codes per account (a code allows 5 wrong
        # entries, so this bounds how many guesses an account's code can get in an hour).
        self.confirm_ip = _namespaced(settings.RATE_LIMIT_CONFIRM_IP, "confirm-ip")
        self.confirm_resend_account = _namespaced(
            settings.RATE_LIMIT_CONFIRM_RESEND_ACCOUNT, "confirm-resend-account"
        )
        # A signed-in user re-entering their password (PATCH /users/me) has a budget of its
        # own: anonymous guesses at their email must not lock them out of their own account.
        self.current_password = _namespaced(settings.RATE_LIMIT_LOGIN_ACCOUNT, "current-password")
        # Keyed, so the storage (Redis) holds no unkeyed hash of who tried to log in.
        self._key = hashlib.sha256(
            b"rate-limit-account:" + settings.SECRET_KEY.get_secret_value().encode()
        ).digest()

    def account_key(self, canonical_email: str) -> str:
        """A fixed-size key for an account's counter: whatever was typed as the login name,
        the limiter stores 32 hex characters, never the input itself."""
        data = canonical_email.encode("utf-8", "surrogatepass")
        return hashlib.blake2b(data, key=self._key, digest_size=16).hexdigest()

    @staticmethod
    def user_key(user_id: uuid.UUID) -> str:
        return user_id.hex

    async def hit(self, item: RateLimitItem, key: str) -> None:
        """Count one event; raise RateLimited when it goes over the limit."""
        if self.enabled and not await self._limiter.hit(item, key):
            raise RateLimited(await self._retry_after(item, key))

    async def available(self, item: RateLimitItem, key: str) -> bool:
        """Whether one more event would stay within the limit (nothing is counted)."""
        return not self.enabled or await self._limiter.test(item, key)

    async def count(self, item: RateLimitItem, key: str) -> None:
        """Count one event that happened, over the limit or not."""
        if self.enabled:
            await self._limiter.hit(item, key)

    async def reset(self, item: RateLimitItem, key: str) -> None:
        """Forget the key's events (e.g. the failures before a successful login)."""
        if self.enabled:
            await self._limiter.clear(item, key)

    async def _retry_after(self, item: RateLimitItem, key: str) -> int:
        stats = await self._limiter.get_window_stats(item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))


def _namespaced(spec: str, namespace: str) -> RateLimitItem:
    item = parse(spec)
    return type(item)(item.amount, item.multiples, namespace=namespace)
