"""fastapi-users' UserManager, adapted: hashing off the event loop, login throttling,
password rules, password reset, and a database adapter that leaves committing to the
request."""

import uuid
from typing import Annotated, Any, cast

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users import BaseUserManager, UUIDIDMixin, exceptions, schemas
from fastapi_users.jwt import decode_jwt, generate_jwt
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from app.auth import sessions
from app.auth.services import AuthComponents, auth_components, client_ip
from app.core.clock import utcnow
from app.core.db import SessionDep
from app.users import notices
from app.users.models import User
from app.users.schemas import EMAIL_MAX_LENGTH, canonical_email

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128


def check_password(password: str, email: str) -> None:
    """OWASP ASVS 5.0 §6.2: length only, no composition rules, not the email."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise exceptions.InvalidPasswordException(
            f"Password must be at least {PASSWORD_MIN_LENGTH} characters"
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise exceptions.InvalidPasswordException(
            f"Password must be at most {PASSWORD_MAX_LENGTH} characters"
        )
    if password.strip().lower() == email.strip().lower():
        raise exceptions.InvalidPasswordException("Password must not be the email")


class UserDatabase(SQLAlchemyUserDatabase[User, uuid.UUID]):  # type: ignore[type-var]  # see app.users.models.User
    """Flushes instead of committing: the request's session dependency commits once."""

    async def get_by_email(self, email: str) -> User | None:
        email = canonical_email(email)
        if len(email) > EMAIL_MAX_LENGTH or "\x00" in email:
            return None  # no stored (validated) email is like that; PostgreSQL can't take NUL
        # Emails are stored canonical, so the unique index serves this lookup.
        return await self._get_user(select(User).where(User.email == email))

    async def create(self, create_dict: dict[str, Any]) -> User:
        user = User(**create_dict)
        self.session.add(user)
        await self._flush()
        return user

    async def update(self, user: User, update_dict: dict[str, Any]) -> User:
        for key, value in update_dict.items():
            setattr(user, key, value)
        await self._flush()
        return user

    async def replace_password(self, user: User, old_hash: str, new_hash: str) -> bool:
        """Compare-and-set: store `new_hash` only if the stored hash is still `old_hash`.
        False when another request changed it first (a reset link used twice at once)."""
        result = await self.session.execute(
            update(User)
            .where(User.id == user.id, User.hashed_password == old_hash)
            .values(hashed_password=new_hash)
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            return False
        set_committed_value(user, "hashed_password", new_hash)
        return True

    async def _flush(self) -> None:
        try:
            await self.session.flush()
        except IntegrityError:  # a concurrent request took the email; the request rolls back
            raise exceptions.UserAlreadyExists() from None


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):  # type: ignore[type-var]  # see app.users.models.User
    def __init__(self, user_db: UserDatabase, request: Request, components: AuthComponents):
        super().__init__(user_db, components.hasher.helper)
        self.request = request
        self.components = components
        self.reset_password_token_secret = components.secret
        self.reset_password_token_lifetime_seconds = (
            request.app.state.settings.RESET_PASSWORD_TOKEN_TTL_SECONDS
        )
        self.verification_token_secret = components.secret

    @property
    def database(self) -> UserDatabase:
        """The adapter as ours (fastapi-users types it as its base class): the request's
        session and the compare-and-set password write."""
        assert isinstance(self.user_db, UserDatabase)
        return self.user_db

    async def validate_password(self, password: str, user: schemas.UC | User) -> None:
        check_password(password, str(user.email))

    async def create(
        self, user_create: schemas.UC, safe: bool = False, request: Request | None = None
    ) -> User:
        await self.validate_password(user_create.password, user_create)
        if await self.user_db.get_by_email(user_create.email) is not None:
            raise exceptions.UserAlreadyExists()
        user_dict = (
            user_create.create_update_dict() if safe else user_create.create_update_dict_superuser()
        )
        user_dict["hashed_password"] = await self.components.hasher.hash(user_dict.pop("password"))
        user = await self.user_db.create(user_dict)
        await self.on_after_register(user, request)
        return user

    async def authenticate(self, credentials: OAuth2PasswordRequestForm) -> User | None:
        """Throttled per IP (every attempt) and per account (every guess, forgotten after a
        login that succeeds in full: see on_after_login)."""
        limits = self.components.limits
        await limits.hit(limits.login_ip, client_ip(self.request) or "unknown")
        # Input no account can have is refused before it reaches any storage or the hasher:
        # no stored email is longer, no stored password was allowed to be.
        account = canonical_email(credentials.username[: EMAIL_MAX_LENGTH * 4])
        if len(account) > EMAIL_MAX_LENGTH:
            return None
        # Counted before the password is checked, so parallel guesses can't all slip in
        # while the first ones are still hashing. The key is a fixed-size digest.
        await limits.hit(limits.login_account, limits.account_key(account))
        if len(credentials.password) > PASSWORD_MAX_LENGTH:
            return None

        user = await self.user_db.get_by_email(account)
        if user is None:
            # Hash anyway so an unknown email costs the same time as a wrong password.
            await self.components.hasher.hash(credentials.password)
            return None
        if not await self.verify_password(user, credentials.password):
            return None
        return user

    async def on_after_register(self, user: User, request: Request | None = None) -> None:
        """A new account gets its confirmation code by email, queued in the registration's
        own transaction (see app.services.email.outbox)."""
        if request is not None:
            await request.app.state.confirmation.issue(self.database.session, user)

    async def on_after_login(
        self, user: User, request: Request | None = None, response: Any = None
    ) -> None:
        """Only now — right password, active account, session issued — are the account's
        earlier guesses forgotten. Resetting on a right password alone told an attacker the
        password of a deactivated account (its logins answer 400 either way)."""
        await self._forget_failed_logins(user)

    async def _forget_failed_logins(self, user: User) -> None:
        limits = self.components.limits
        await limits.reset(limits.login_account, limits.account_key(user.email))

    # --- password reset -------------------------------------------------------------
    # fastapi-users' reset token, unchanged: a JWT (audience "fastapi-users:reset") with the
    # user id and a fingerprint, an argon2 hash of the stored password hash. A changed
    # password — by this reset or any other way — no longer matches the fingerprint, so a
    # link is useless once used. Its methods are restated here only to run the argon2 work
    # (~100-200 ms of CPU each) in the hashing threads instead of on the event loop, and to
    # store the new password by compare-and-set, so one link used twice at once resets once.

    async def request_password_reset(self, email: str, request: Request) -> None:
        """POST /auth/forgot-password after its per-IP limit: counted per account (known
        or not), then a reset email to an existing active account. Any other address
        costs the same hash, so the time taken does not tell whether the account exists."""
        limits = self.components.limits
        await limits.hit(limits.forgot_password_account, limits.account_key(email))
        user = await self.user_db.get_by_email(email)
        if user is None or not user.is_active:
            await self.components.hasher.hash(email)
            return
        await self.forgot_password(user, request)

    async def forgot_password(self, user: User, request: Request | None = None) -> None:
        if not user.is_active:
            raise exceptions.UserInactive()
        token_data = {
            "sub": str(user.id),
            "password_fgpt": await self.components.hasher.hash(user.hashed_password),
            "aud": self.reset_password_token_audience,
        }
        token = generate_jwt(
            token_data,
            self.reset_password_token_secret,
            self.reset_password_token_lifetime_seconds,
        )
        await self.on_after_forgot_password(user, token, request)

    async def reset_password(
        self, token: str, password: str, request: Request | None = None
    ) -> User:
        """Raises InvalidResetPasswordToken (bad, expired or used token), UserNotExists,
        UserInactive, InvalidPasswordException — as fastapi-users' does."""
        try:
            data = decode_jwt(
                token, self.reset_password_token_secret, [self.reset_password_token_audience]
            )
            user_id, fingerprint = str(data["sub"]), data["password_fgpt"]
            parsed_id = self.parse_id(user_id)
        except (jwt.PyJWTError, KeyError, exceptions.InvalidID):
            raise exceptions.InvalidResetPasswordToken() from None
        if not isinstance(fingerprint, str):
            raise exceptions.InvalidResetPasswordToken()
        user = await self.get(parsed_id)
        old_hash = user.hashed_password
        valid, _ = await self.components.hasher.verify_and_update(old_hash, fingerprint)
        if not valid:
            raise exceptions.InvalidResetPasswordToken()
        if not user.is_active:
            raise exceptions.UserInactive()
        await self.validate_password(password, user)
        new_hash = await self.components.hasher.hash(password)
        if not await self.database.replace_password(user, old_hash, new_hash):
            raise exceptions.InvalidResetPasswordToken()  # used by a parallel request
        await self.on_after_reset_password(user, request)
        return user

    async def on_after_forgot_password(
        self, user: User, token: str, request: Request | None = None
    ) -> None:
        """The reset link goes out by email, queued in this request's transaction."""
        if request is None:
            return
        base_url = request.app.state.settings.PUBLIC_BASE_URL
        request.app.state.outbox.add(
            self.database.session,
            to=user.email,
            template="password_reset",
            data={
                "name": user.name,
                "reset_url": f"{base_url}/reset-password?token={token}",
                "ttl_minutes": self.reset_password_token_lifetime_seconds // 60,
            },
            user_id=user.id,
        )

    async def on_after_reset_password(self, user: User, request: Request | None = None) -> None:
        """Whoever held the old password is signed out everywhere; the account's address
        hears of the change; failed logins counted against the account are forgotten, so
        the owner can sign in with the new password at once."""
        db = self.database.session
        await sessions.revoke_user_sessions(db, user.id)
        if request is not None:
            notices.password_changed(
                request.app.state.outbox,
                db,
                to=user.email,
                name=user.name,
                user_id=user.id,
                at=utcnow(),
            )
        await self._forget_failed_logins(user)

    async def verify_password(self, user: User, password: str) -> bool:
        """Check a password; upgrade the stored hash when the hasher's policy changed."""
        verified, new_hash = await self.components.hasher.verify_and_update(
            password, user.hashed_password
        )
        if verified and new_hash is not None:
            await self.user_db.update(user, {"hashed_password": new_hash})
        return verified

    async def _update(self, user: User, update_dict: dict[str, Any]) -> User:
        password = update_dict.pop("password", None)
        if password is not None:
            await self.validate_password(password, user)
            update_dict["hashed_password"] = await self.components.hasher.hash(password)
        return await super()._update(user, update_dict)


async def get_user_db(session: SessionDep) -> UserDatabase:
    return UserDatabase(session, User)


async def get_user_manager(
    request: Request,
    user_db: Annotated[UserDatabase, Depends(get_user_db)],
    components: Annotated[AuthComponents, Depends(auth_components)],
) -> UserManager:
    return UserManager(user_db, request, components)
