"""Request and response bodies of the order routes and the payment webhook."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.newsletters.schemas import no_nul
from app.transactions import lifecycle
from app.transactions.models import (
    AMOUNT_MAX,
    DESCRIPTION_MAX_LENGTH,
    EVENT_ID_MAX_LENGTH,
    EVENT_TYPE_MAX_LENGTH,
    NOTE_MAX_LENGTH,
    Transaction,
    TransactionHistory,
)
from app.types.enums import TransactionActor, TransactionStatus
from app.users.schemas import printable

# The currencies orders may be priced in (ISO 4217); each has two minor digits.
CURRENCIES = ("RUB", "BYN", "KZT", "AMD", "KGS", "UZS", "USD", "EUR", "CNY", "GBP", "TRY")
Currency = Literal["RUB", "BYN", "KZT", "AMD", "KGS", "UZS", "USD", "EUR", "CNY", "GBP", "TRY"]


class TransactionCreate(BaseModel):
    # Only these three: status, owner and dates are never the client's to choose.
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(
        strict=True,  # 12.5, 12.0, "12" and true are refused: money is an integer
        gt=0,
        le=AMOUNT_MAX,
        description="Сумма в копейках (целое, > 0): 12 345 — это 123,45 ₽ · Amount in minor units",
    )
    currency: Currency = Field(default="RUB", description="Валюта, ISO 4217 · Currency (ISO 4217)")
    description: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=DESCRIPTION_MAX_LENGTH),
        AfterValidator(no_nul),
        Field(description="Что заказано (1–500 символов) · What is ordered"),
    ]


CREATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "roubles": {
        "summary": "Заказ в рублях · An order in roubles",
        "value": {"amount": 249900, "description": "Кофемолка ручная, 1 шт."},
    },
    "euros": {
        "summary": "В другой валюте · Another currency",
        "value": {"amount": 1999, "currency": "EUR", "description": "Подарочная карта"},
    },
}


class HistoryEntry(BaseModel):
    from_status: TransactionStatus | None = Field(
        description="Из статуса (null — заказ создан) · From (null: created)"
    )
    to_status: TransactionStatus = Field(description="В статус · To")
    changed_at: datetime = Field(description="Когда (UTC) · When (UTC)")
    actor: TransactionActor = Field(
        description=(
            "Кто: user — покупатель, admin — сотрудник, system — срок оплаты, webhook — "
            "платёжная система · Who: the customer, staff, the deadline, the provider"
        )
    )
    note: str | None = Field(description="Комментарий · Note")

    @classmethod
    def of(cls, row: TransactionHistory) -> Self:
        return cls(
            from_status=row.from_status,
            to_status=row.to_status,
            changed_at=row.changed_at,
            actor=row.actor,
            note=row.note,
        )


class AdminHistoryEntry(HistoryEntry):
    actor_user_id: uuid.UUID | None = Field(
        description="Кто именно (покупатель или сотрудник) · The user or admin who did it"
    )

    @classmethod
    def of(cls, row: TransactionHistory) -> Self:
        return cls(**HistoryEntry.of(row).model_dump(), actor_user_id=row.actor_user_id)


class TransactionRead(BaseModel):
    id: uuid.UUID = Field(description="Идентификатор заказа · Order id")
    amount: int = Field(description="Сумма в копейках · Amount in minor units")
    currency: str = Field(description="Валюта, ISO 4217 · Currency")
    description: str = Field(description="Что заказано · What is ordered")
    status: TransactionStatus = Field(
        description="Статус (значение; срок оплаты уже учтён) · Status, deadline applied"
    )
    status_label: str = Field(description="Статус для человека · The status as people read it")
    payment_due_at: datetime = Field(description="Оплатить до (UTC) · Pay before (UTC)")
    created_at: datetime = Field(description="Создан (UTC) · Created (UTC)")
    updated_at: datetime = Field(description="Изменён (UTC) · Last changed (UTC)")
    flagged: bool = Field(
        description="Оплата пришла после срока: деньги вернут · Paid late: to be refunded"
    )

    @classmethod
    def of(cls, transaction: Transaction, now: datetime, **extra: Any) -> Self:
        status = lifecycle.effective_status(transaction.status, transaction.payment_due_at, now)
        return cls(
            id=transaction.id,
            amount=transaction.amount,
            currency=transaction.currency,
            description=transaction.description,
            status=status,
            status_label=status.label,
            payment_due_at=transaction.payment_due_at,
            created_at=transaction.created_at,
            updated_at=transaction.updated_at,
            flagged=transaction.flagged,
            **extra,
        )


class TransactionDetail(TransactionRead):
    history: list[HistoryEntry] = Field(description="Смены статуса по порядку · Status changes")


class TransactionPage(BaseModel):
    items: list[TransactionRead] = Field(description="Сначала новые · Newest first")
    next_cursor: str | None = Field(
        description="Передайте в `cursor` для следующей страницы · Pass as `cursor` for the next"
    )


class AdminTransactionRead(TransactionRead):
    user_id: uuid.UUID = Field(description="Покупатель · The customer's id")


class AdminTransactionDetail(AdminTransactionRead):
    history: list[AdminHistoryEntry] = Field(description="Смены статуса · Status changes")


class AdminTransactionPage(BaseModel):
    items: list[AdminTransactionRead] = Field(description="Сначала новые · Newest first")
    next_cursor: str | None = Field(
        description="Передайте в `cursor` для следующей страницы · Pass as `cursor` for the next"
    )


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: TransactionStatus = Field(description="Новый статус · The new status")
    note: (
        Annotated[
            str,
            StringConstraints(strip_whitespace=True, min_length=1, max_length=NOTE_MAX_LENGTH),
            AfterValidator(printable),
        ]
        | None
    ) = Field(default=None, description="Комментарий в историю · A note for the history")


STATUS_CHANGE_EXAMPLES: dict[str, dict[str, Any]] = {
    "paid": {
        "summary": "Оплата подтверждена вручную · Payment confirmed by staff",
        "value": {"status": "processing", "note": "Оплата по счёту, платёжка № 118"},
    },
    "shipped": {
        "summary": "Передан в доставку · Handed to delivery",
        "value": {"status": "in_delivery", "note": "СДЭК, трек 1234567890"},
    },
    "delivered": {"summary": "Доставлен · Delivered", "value": {"status": "delivered"}},
}


class PaymentEventBody(BaseModel):
    # Providers add fields over time: unknown ones are ignored, not refused.
    model_config = ConfigDict(extra="ignore")

    id: Annotated[
        str,
        StringConstraints(min_length=1, max_length=EVENT_ID_MAX_LENGTH),
        AfterValidator(printable),
        Field(description="Идентификатор события у платёжной системы · The provider's event id"),
    ]
    type: Annotated[
        str,
        StringConstraints(min_length=1, max_length=EVENT_TYPE_MAX_LENGTH),
        AfterValidator(printable),
        Field(description="Тип события: payment.succeeded · Event type"),
    ]
    transaction_id: uuid.UUID = Field(description="Заказ · The order's id")


WEBHOOK_EXAMPLES: dict[str, dict[str, Any]] = {
    "succeeded": {
        "summary": "Оплата прошла · Payment succeeded",
        "value": {
            "id": "evt_1QfZ2a7sKq",
            "type": "payment.succeeded",
            "transaction_id": "7d7f3f4e-2b8a-4c35-9a59-1f0c8f6f2e11",
        },
    },
    "other": {
        "summary": "Другое событие (принимается и не меняет заказ) · Another event type",
        "value": {
            "id": "evt_1QfZ2b9xLm",
            "type": "payment.refunded",
            "transaction_id": "7d7f3f4e-2b8a-4c35-9a59-1f0c8f6f2e11",
        },
    },
}

WebhookOutcome = Literal["processing", "late", "ignored", "duplicate", "unknown_transaction"]


class WebhookResult(BaseModel):
    result: WebhookOutcome = Field(
        description=(
            "processing — заказ оплачен; late — оплата после срока, заказ помечен к "
            "возврату; ignored — не оплата или заказ уже оплачен; duplicate — событие уже "
            "обработано; unknown_transaction — такого заказа нет · What the event did"
        )
    )
