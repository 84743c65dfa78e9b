"""Account confirmation by a 6-digit code: the code policy, in one place.

- A code is 6 digits from the CSPRNG (`secrets`), stored only as an HMAC-SHA256 keyed by
  SECRET_KEY and bound to the user id, compared in constant time, used once.
- A new code replaces the old one (one row per user), at most once per
  CONFIRMATION_RESEND_COOLDOWN_SECONDS; it lives CONFIRMATION_CODE_TTL_SECONDS.
- Wrong entries are counted by one conditional UPDATE, so parallel guesses cannot pass
  CONFIRMATION_MAX_ATTEMPTS; the last one allowed burns the code (status false).
- What a wrong answer says: only someone holding the right code learns that it expired,
  was used or was burned; any other code, and any email that has no account, gets the
  same CONFIRMATION_CODE_INVALID.

Services never commit; the confirm route commits the counted attempt itself before it
answers 400 (see app.confirmation.router).
"""

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, case, false, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.confirmation.models import AccountConfirmation
from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import upsert_insert
from app.core.errors import DomainError
from app.services.email.outbox import Outbox
from app.users.models import User

CODE_DIGITS = 6


class ConfirmationCodeInvalid(DomainError):
    code = "CONFIRMATION_CODE_INVALID"
    message = "The code is wrong"
    message_ru = "Неверный код. Проверьте его в письме и попробуйте ещё раз."


class ConfirmationCodeExpired(DomainError):
    code = "CONFIRMATION_CODE_EXPIRED"
    message = "The code has expired: request a new one"
    message_ru = "Срок действия кода истёк. Запросите новый код."


class ConfirmationCodeUsed(DomainError):
    code = "CONFIRMATION_CODE_USED"
    message = "The code has already been used: the email is confirmed"
    message_ru = "Этот код уже использован: email подтверждён."


class ConfirmationCodeBurned(DomainError):
    code = "CONFIRMATION_CODE_BURNED"
    message = "Too many wrong codes: this code no longer works, request a new one"
    message_ru = "Слишком много неверных попыток: код больше не действует. Запросите новый код."


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    INVALID = "invalid"
    EXPIRED = "expired"
    USED = "used"
    BURNED = "burned"


ERRORS: dict[Outcome, type[DomainError]] = {
    Outcome.INVALID: ConfirmationCodeInvalid,
    Outcome.EXPIRED: ConfirmationCodeExpired,
    Outcome.USED: ConfirmationCodeUsed,
    Outcome.BURNED: ConfirmationCodeBurned,
}


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


@dataclass(frozen=True)
class ConfirmationPolicy:
    """Built once per app from settings (`app.state.confirmation`)."""

    secret: bytes = field(repr=False)
    ttl: timedelta
    max_attempts: int
    resend_cooldown: timedelta
    outbox: Outbox

    @classmethod
    def from_settings(cls, settings: Settings, outbox: Outbox) -> "ConfirmationPolicy":
        return cls(
            secret=settings.SECRET_KEY.get_secret_value().encode(),
            ttl=timedelta(seconds=settings.CONFIRMATION_CODE_TTL_SECONDS),
            max_attempts=settings.CONFIRMATION_MAX_ATTEMPTS,
            resend_cooldown=timedelta(seconds=settings.CONFIRMATION_RESEND_COOLDOWN_SECONDS),
            outbox=outbox,
        )

    def status(self, row: AccountConfirmation, now: datetime) -> bool | None:
        """The status as the API shows it: a pending code that expired, or that wrong
        entries used up, reads false at once. `_live` states the same rule in SQL, for the
        conditional updates."""
        if row.confirmation_status is None and (
            row.expires_at <= now or row.attempts >= self.max_attempts
        ):
            return False
        return row.confirmation_status

    async def status_of(self, db: AsyncSession, user: User) -> tuple[bool | None, datetime | None]:
        """(confirmation_status, expires_at) of `user`'s confirmation."""
        row = await db.get(AccountConfirmation, user.id, populate_existing=True)
        if row is None:  # staff created from the CLI, confirmed by whoever created them
            return user.is_verified, None
        return self.status(row, utcnow()), row.expires_at

    def digest(self, user_id: uuid.UUID, code: str) -> str:
        message = f"account-confirmation:{user_id}:{code}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    async def issue(
        self, db: AsyncSession, user: User, *, to: str | None = None, respect_cooldown: bool = False
    ) -> bool:
        """Replace the user's code with a new one and queue its email (to `to`, default the
        account's address), in the caller's transaction. With `respect_cooldown`, do nothing
        (False) if the current code is younger than the cooldown; the check and the write
        are one statement, so parallel resends send one code."""
        now = utcnow()
        code = new_code()
        values = {
            "user_id": user.id,
            "confirmation_code": self.digest(user.id, code),
            "confirmation_status": None,
            "expires_at": now + self.ttl,
            "attempts": 0,
            "issued_at": now,
        }
        statement = upsert_insert(db, AccountConfirmation).values(values)
        upsert = statement.on_conflict_do_update(
            index_elements=[AccountConfirmation.user_id],
            set_={k: statement.excluded[k] for k in values if k != "user_id"},
            where=(
                AccountConfirmation.issued_at <= now - self.resend_cooldown
                if respect_cooldown
                else None
            ),
        ).returning(AccountConfirmation.user_id)
        written = (await db.execute(upsert)).first() is not None
        if not written:
            return False
        self.outbox.add(
            db,
            to=to or user.email,
            template="confirmation_code",
            data={
                "name": user.name,
                "code": code,
                "ttl_minutes": int(self.ttl.total_seconds() // 60),
            },
            user_id=user.id,
        )
        return True

    async def confirm(self, db: AsyncSession, user: User | None, code: str) -> Outcome:
        """Check `code` for `user` (None: no such account) and, if right, confirm the
        account. A wrong code is counted; the caller must commit even when it answers 400."""
        now = utcnow()
        row = None
        if user is not None:
            row = await db.scalar(
                select(AccountConfirmation)
                .where(AccountConfirmation.user_id == user.id)
                .execution_options(populate_existing=True)
            )
        if user is None or row is None:
            self.digest(uuid.UUID(int=0), code)  # the same work as for an account
            return Outcome.INVALID
        digest = self.digest(user.id, code)
        matches = hmac.compare_digest(row.confirmation_code, digest)
        status = self.status(row, now)
        if status is None:
            if matches:
                return await self._mark_confirmed(db, user, row, digest, now)
            await self._count_wrong(db, user.id, now)
            return Outcome.INVALID
        if not matches:
            return Outcome.INVALID
        if status:
            return Outcome.USED
        return Outcome.BURNED if row.attempts >= self.max_attempts else Outcome.EXPIRED

    def _live(self, now: datetime) -> list[ColumnElement[bool]]:
        return [
            AccountConfirmation.confirmation_status.is_(None),
            AccountConfirmation.expires_at > now,
            AccountConfirmation.attempts < self.max_attempts,
        ]

    async def _mark_confirmed(
        self, db: AsyncSession, user: User, row: AccountConfirmation, digest: str, now: datetime
    ) -> Outcome:
        result = await db.execute(
            update(AccountConfirmation)
            .where(
                AccountConfirmation.user_id == user.id,
                AccountConfirmation.confirmation_code == digest,
                *self._live(now),
            )
            .values(confirmation_status=true())
            .returning(AccountConfirmation.user_id)
        )
        if result.first() is None:  # burned, replaced or used by a parallel request
            await db.refresh(row)
            if not hmac.compare_digest(row.confirmation_code, digest):
                return Outcome.INVALID  # a new code replaced this one meanwhile
            if row.confirmation_status:
                return Outcome.USED
            return Outcome.BURNED if row.attempts >= self.max_attempts else Outcome.EXPIRED
        user.is_verified = True
        await db.flush()
        return Outcome.CONFIRMED

    async def _count_wrong(self, db: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
        await db.execute(
            update(AccountConfirmation)
            .where(AccountConfirmation.user_id == user_id, *self._live(now))
            .values(
                attempts=AccountConfirmation.attempts + 1,
                confirmation_status=case(
                    (AccountConfirmation.attempts + 1 >= self.max_attempts, false()),
                    else_=AccountConfirmation.confirmation_status,
                ),
            )
        )


async def sweep(db: AsyncSession, now: datetime | None = None) -> int:
    """Write false into every pending row whose code has expired; returns how many."""
    now = now or utcnow()
    result = await db.execute(
        update(AccountConfirmation)
        .where(
            AccountConfirmation.confirmation_status.is_(None),
            AccountConfirmation.expires_at <= now,
        )
        .values(confirmation_status=false())
    )
    return cast(CursorResult[Any], result).rowcount
