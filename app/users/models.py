"""The `user` table. `role` is the source of truth for privileges."""

import uuid
from datetime import datetime

from sqlalchemy import Boolean, String, Uuid, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.confirmation.models import AccountConfirmation
from app.core.clock import utcnow
from app.core.db import Base, StrEnumType, UTCDateTime
from app.transactions.models import Transaction
from app.types.enums import UserRole


class User(Base):
    """A customer or a staff member.

    Implements fastapi-users' user protocol (`x: UserProtocol[UUID] = User()` type-checks;
    mypy still refuses User where a class's type argument is bound by the protocol, hence
    the `type: ignore[type-var]` beside those uses). Relationships load only when asked
    (`lazy="raise"`): the session lookup reads users outside the ORM (app.auth.lookup),
    so nothing may depend on an implicit load.
    """

    __tablename__ = "user"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # Stored lower-cased (schemas normalise), so a plain unique index is case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(String(1024))
    name: Mapped[str] = mapped_column(String(100))
    # E.164, e.g. +79123456789.
    # Optional only for staff created from the CLI; registration requires it.
    phone: Mapped[str | None] = mapped_column(String(16), index=True)
    role: Mapped[UserRole] = mapped_column(
        StrEnumType(UserRole), default=UserRole.USER, server_default=UserRole.USER.value
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Newsletters (app.newsletters) go only to active, confirmed users who opted in.
    newsletter_opt_in: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # The email confirmation (app.confirmation): the code's state; is_verified is the result.
    account_confirmation_status: Mapped[AccountConfirmation | None] = relationship(
        lazy="raise", uselist=False, passive_deletes=True
    )
    # The user's orders (app.transactions): never loaded implicitly; lists are paginated
    # queries (app.transactions.service), this is for explicit loads and joins.
    transactions: Mapped[list[Transaction]] = relationship(
        lazy="raise", passive_deletes=True, order_by=Transaction.created_at.desc()
    )

    @property
    def is_superuser(self) -> bool:
        """fastapi-users' flag, derived from the role so the rule lives in one place."""
        return self.role == UserRole.ADMIN

    @is_superuser.setter
    def is_superuser(self, value: bool) -> None:
        raise AttributeError("is_superuser follows the role: set `role` instead")
