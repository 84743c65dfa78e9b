"""Order rules: creation, reads with the deadline applied, status changes, the deadline
sweep, and payments reported by the provider.

Every status change goes through `Transactions.move`: the transition table says whether
the move is allowed (app.transactions.lifecycle), and the write is a compare-and-set
(`UPDATE … WHERE id = :id AND status = :from`), so of two racing changes (two admins, an
admin and the deadline, the webhook and the deadline) exactly one wins; the loser gets
409 with the statuses still allowed. The history row and the customer's email (through
the outbox) are written in the same database transaction as the change.

Reads never write: an order past its deadline reads `not_paid_in_time` at once
(`effective_status`); the sweep, and any change touching the order, persists it.

Services never commit: the caller's session does.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ColumnElement

from app.core.cursor import newest_first_page
from app.core.db import upsert_insert
from app.core.errors import DomainError, NotFound
from app.services.email.outbox import Outbox
from app.transactions import lifecycle
from app.transactions.models import PaymentEvent, Transaction, TransactionHistory
from app.transactions.schemas import WebhookOutcome
from app.types.enums import TransactionActor, TransactionStatus
from app.users.models import User

S = TransactionStatus
A = TransactionActor

# The deadline's move, from the transition table: what an overdue order was and becomes.
UNPAID, EXPIRED = lifecycle.DEADLINE_MOVE
EXPIRE_BATCH = 500
NOTICE_TEMPLATE = "order_status"
PAYMENT_SUCCEEDED = "payment.succeeded"
LATE_PAYMENT_NOTE = "Оплата пришла после срока: вернуть деньги · Paid after the deadline: refund"


class TransactionNotFound(NotFound):
    code = "TRANSACTION_NOT_FOUND"
    message = "No such order"
    message_ru = "Такого заказа нет."


class TransitionNotAllowed(DomainError):
    status_code = 409
    code = "TRANSACTION_TRANSITION_NOT_ALLOWED"
    message = "The order cannot move to that status from its current one"
    message_ru = (
        "Заказ нельзя перевести в этот статус из текущего. Допустимые статусы — в detail.allowed."
    )

    def __init__(self, current: S, wanted: S, allowed: Sequence[S]) -> None:
        super().__init__(
            detail={
                "status": current.value,
                "requested": wanted.value,
                "allowed": [status.value for status in allowed],
            }
        )


def status_filters(status: S, now: datetime) -> list[ColumnElement[bool]]:
    """Orders whose effective status (the deadline applied) is `status`, as one or two
    conditions, each served by an index in creation order (a list query runs one per
    condition and merges them: see list_page)."""
    if status == UNPAID:
        return [and_(Transaction.status == UNPAID, Transaction.payment_due_at > now)]
    if status == EXPIRED:
        # Written so by the sweep, or overdue and not yet written (a minute's worth).
        return [
            Transaction.status == EXPIRED,
            and_(Transaction.status == UNPAID, Transaction.payment_due_at <= now),
        ]
    return [Transaction.status == status]


def effective(transaction: Transaction, now: datetime) -> S:
    return lifecycle.effective_status(transaction.status, transaction.payment_due_at, now)


async def get(db: AsyncSession, transaction_id: uuid.UUID) -> Transaction:
    transaction = await db.get(Transaction, transaction_id)
    if transaction is None:
        raise TransactionNotFound()
    return transaction


async def get_own(db: AsyncSession, user_id: uuid.UUID, transaction_id: uuid.UUID) -> Transaction:
    """The user's own order; another user's is as unknown as a made-up id (404, not 403)."""
    transaction = await db.get(Transaction, transaction_id)
    if transaction is None or transaction.user_id != user_id:
        raise TransactionNotFound()
    return transaction


async def history(
    db: AsyncSession, transaction: Transaction, now: datetime
) -> list[TransactionHistory]:
    """The order's status changes in order. An expiry the sweep has not written yet is
    shown as it will be written (at the deadline, by the system): reads never write."""
    rows = list(
        await db.scalars(
            select(TransactionHistory)
            .where(TransactionHistory.transaction_id == transaction.id)
            .order_by(TransactionHistory.id)
        )
    )
    if lifecycle.is_overdue(transaction.status, transaction.payment_due_at, now):
        rows.append(_expiry_entry(transaction.id, transaction.payment_due_at))
    return rows


def _expiry_entry(transaction_id: uuid.UUID, payment_due_at: datetime) -> TransactionHistory:
    # The order became not_paid_in_time at its deadline, whenever that gets written.
    from_status, to_status = lifecycle.DEADLINE_MOVE
    return TransactionHistory(
        transaction_id=transaction_id,
        from_status=from_status,
        to_status=to_status,
        changed_at=payment_due_at,
        actor=A.SYSTEM,
        actor_user_id=None,
        note=None,
    )


async def list_page(
    db: AsyncSession,
    *,
    now: datetime,
    limit: int,
    cursor: str | None,
    user_id: uuid.UUID | None = None,
    status: S | None = None,
    flagged: bool | None = None,
) -> tuple[list[Transaction], str | None]:
    """Newest first, keyset-paginated; every filter optional."""
    stmt: Select[tuple[Transaction]] = select(Transaction)
    if user_id is not None:
        stmt = stmt.where(Transaction.user_id == user_id)
    if flagged is not None:
        stmt = stmt.where(Transaction.flagged.is_(flagged))
    union = None
    if status is not None:
        # One query per condition, merged: an OR of them made SQLite sort every
        # not_paid_in_time order for each page (30 ms at 50 000 orders, against 0.1 ms).
        conditions = status_filters(status, now)
        if len(conditions) == 2:
            union = stmt.where(conditions[1])
        stmt = stmt.where(conditions[0])
    return await newest_first_page(db, stmt, Transaction, limit=limit, cursor=cursor, union=union)


@dataclass(frozen=True, slots=True)
class Transactions:
    """The order rules that write: one per app (`app.state.transactions`)."""

    outbox: Outbox
    payment_timeout: timedelta

    @classmethod
    def from_settings(cls, settings: Any, outbox: Outbox) -> "Transactions":
        return cls(outbox, timedelta(seconds=settings.PAYMENT_TIMEOUT_SECONDS))

    async def create(
        self,
        db: AsyncSession,
        user: User,
        *,
        amount: int,
        currency: str,
        description: str,
        now: datetime,
    ) -> Transaction:
        transaction = Transaction(
            id=uuid.uuid4(),
            user_id=user.id,
            amount=amount,
            currency=currency,
            description=description,
            status=lifecycle.INITIAL,
            payment_due_at=now + self.payment_timeout,
            created_at=now,
            updated_at=now,
            flagged=False,
        )
        db.add(transaction)
        self._record(db, transaction.id, None, lifecycle.INITIAL, A.USER, user.id, None, now)
        await db.flush()
        return transaction

    async def move(
        self,
        db: AsyncSession,
        transaction: Transaction,
        to_status: S,
        *,
        actor: A,
        now: datetime,
        actor_user_id: uuid.UUID | None = None,
        note: str | None = None,
    ) -> Transaction:
        """Move `transaction` to `to_status` if the table lets `actor` do it from its
        status as of `now`; else TransitionNotAllowed (409). An overdue order is first
        written not_paid_in_time (by the system), so the refusal names the real status."""
        current = effective(transaction, now)
        if current != transaction.status and to_status != current:
            await self._expire_one(db, transaction, now)
            current = transaction.status
        if not lifecycle.may_move(current, to_status, actor):
            raise TransitionNotAllowed(current, to_status, lifecycle.allowed_next(current, actor))
        if not await self._compare_and_set(db, transaction, current, to_status, now):
            await db.refresh(transaction)
            fresh = effective(transaction, now)
            raise TransitionNotAllowed(fresh, to_status, lifecycle.allowed_next(fresh, actor))
        self._record(db, transaction.id, current, to_status, actor, actor_user_id, note, now)
        await self._notify(db, transaction)
        return transaction

    async def _compare_and_set(
        self,
        db: AsyncSession,
        transaction: Transaction,
        from_status: S,
        to_status: S,
        now: datetime,
    ) -> bool:
        conditions = [Transaction.id == transaction.id, Transaction.status == from_status]
        if from_status == UNPAID:
            # Paying and expiring exclude each other at the same instant.
            if to_status == EXPIRED:
                conditions.append(Transaction.payment_due_at <= now)
            else:
                conditions.append(Transaction.payment_due_at > now)
        result = cast(
            CursorResult[Any],
            await db.execute(
                update(Transaction)
                .where(*conditions)
                .values(status=to_status, updated_at=now)
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount != 1:
            return False
        # The row now says so; the object in the session follows without another write.
        set_committed_value(transaction, "status", to_status)
        set_committed_value(transaction, "updated_at", now)
        return True

    async def _expire_one(self, db: AsyncSession, transaction: Transaction, now: datetime) -> None:
        if await self._compare_and_set(db, transaction, UNPAID, EXPIRED, now):
            db.add(_expiry_entry(transaction.id, transaction.payment_due_at))
            await self._notify(db, transaction)
        else:
            await db.refresh(transaction)  # someone else moved it first

    async def expire_overdue(self, db: AsyncSession, now: datetime) -> int:
        """The sweep: write not_paid_in_time into every overdue order, with its history
        row and the customer's email. Returns how many."""
        expired = 0
        while True:
            due = list(
                await db.scalars(
                    select(Transaction.id)
                    .where(
                        Transaction.status == UNPAID,
                        Transaction.payment_due_at <= now,
                    )
                    .limit(EXPIRE_BATCH)
                )
            )
            if not due:
                return expired
            moved = cast(
                CursorResult[Any],
                await db.execute(
                    update(Transaction)
                    .where(
                        Transaction.id.in_(due),
                        Transaction.status == UNPAID,
                        Transaction.payment_due_at <= now,
                    )
                    .values(status=EXPIRED, updated_at=now)
                    .returning(Transaction.id, Transaction.payment_due_at)
                    .execution_options(synchronize_session=False)
                ),
            )
            ids = []
            for transaction_id, payment_due_at in moved:
                ids.append(transaction_id)
                db.add(_expiry_entry(transaction_id, payment_due_at))
            rows = await db.execute(
                select(Transaction, User)
                .join(User, User.id == Transaction.user_id)
                .where(Transaction.id.in_(ids))
            )
            for transaction, user in rows.tuples():
                set_committed_value(transaction, "status", EXPIRED)
                self._queue_notice(db, transaction, user)
            expired += len(ids)
            if len(due) < EXPIRE_BATCH:
                return expired

    async def record_payment(
        self,
        db: AsyncSession,
        *,
        event_id: str,
        event_type: str,
        transaction_id: uuid.UUID,
        now: datetime,
    ) -> WebhookOutcome:
        """A payment provider's event, once per event id. Returns what it did:
        `duplicate` (seen before: nothing changes), `processing` (the order is paid),
        `late` (paid after the deadline: stays not_paid_in_time, flagged for refund),
        `ignored` (not a payment, or an order already past payment), `unknown_transaction`."""
        claimed = await db.execute(
            upsert_insert(db, PaymentEvent)
            .values(
                id=event_id,
                type=event_type,
                transaction_id=transaction_id,
                received_at=now,
                outcome="",
            )
            .on_conflict_do_nothing(index_elements=[PaymentEvent.id])
            .returning(PaymentEvent.id)
        )
        if claimed.first() is None:
            return "duplicate"
        outcome = await self._apply_payment(db, event_type, transaction_id, now)
        await db.execute(
            update(PaymentEvent).where(PaymentEvent.id == event_id).values(outcome=outcome)
        )
        return outcome

    async def _apply_payment(
        self, db: AsyncSession, event_type: str, transaction_id: uuid.UUID, now: datetime
    ) -> WebhookOutcome:
        if event_type != PAYMENT_SUCCEEDED:
            return "ignored"
        transaction = await db.get(Transaction, transaction_id, with_for_update=False)
        if transaction is None:
            return "unknown_transaction"
        try:
            await self.move(db, transaction, S.PROCESSING, actor=A.WEBHOOK, now=now)
        except TransitionNotAllowed:
            if transaction.status != EXPIRED:
                return "ignored"  # already paid (another event, or staff): out of order
            set_committed_value(transaction, "flagged", True)
            await db.execute(
                update(Transaction)
                .where(Transaction.id == transaction.id)
                .values(flagged=True, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            self._record(
                db,
                transaction.id,
                EXPIRED,
                EXPIRED,
                A.WEBHOOK,
                None,
                LATE_PAYMENT_NOTE,
                now,
            )
            return "late"
        return "processing"

    @staticmethod
    def _record(
        db: AsyncSession,
        transaction_id: uuid.UUID,
        from_status: S | None,
        to_status: S,
        actor: A,
        actor_user_id: uuid.UUID | None,
        note: str | None,
        now: datetime,
    ) -> None:
        db.add(
            TransactionHistory(
                transaction_id=transaction_id,
                from_status=from_status,
                to_status=to_status,
                changed_at=now,
                actor=actor,
                actor_user_id=actor_user_id,
                note=note,
            )
        )

    async def _notify(self, db: AsyncSession, transaction: Transaction) -> None:
        if transaction.status in lifecycle.NOTIFY:
            user = await db.get(User, transaction.user_id)
            if user is not None:
                self._queue_notice(db, transaction, user)

    def _queue_notice(self, db: AsyncSession, transaction: Transaction, user: User) -> None:
        if transaction.status not in lifecycle.NOTIFY:
            return
        self.outbox.add(
            db,
            to=user.email,
            template=NOTICE_TEMPLATE,
            data={
                "name": user.name,
                "order_number": order_number(transaction.id),
                "status": transaction.status.value,
                "status_label": transaction.status.label_in(self.outbox.default_locale),
                "amount": format_amount(transaction.amount, transaction.currency),
                "description": transaction.description,
            },
            user_id=user.id,
        )


def order_number(transaction_id: uuid.UUID) -> str:
    """A short number for people (emails, support): the id's first 8 hex digits."""
    return transaction_id.hex[:8].upper()


def format_amount(amount: int, currency: str) -> str:
    """12345, RUB → "123,45 RUB": every accepted currency has two minor digits
    (app.transactions.schemas.CURRENCIES); Russian decimal comma, grouped thousands."""
    whole, fraction = divmod(amount, 100)
    grouped = f"{whole:,}".replace(",", "\u00a0")
    return f"{grouped},{fraction:02d}\u00a0{currency}"
