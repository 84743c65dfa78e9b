"""Enums shared across domains. Stored as plain strings in the database."""

from enum import StrEnum


class UserRole(StrEnum):
    USER = "user"
    ADMIN = "admin"


class NewsletterStatus(StrEnum):
    DRAFT = "draft"  # written, may be previewed and test-sent
    SENDING = "sending"  # queued for its recipients; some not yet handed to SMTP
    SENT = "sent"  # every recipient's email sent, failed or withdrawn


class TransactionStatus(StrEnum):
    """Where an order is. The moves between them: app.transactions.lifecycle."""

    NOT_PAID_IN_TIME = "not_paid_in_time"
    PAYMENT_IN_PROGRESS = "payment_in_progress"
    PROCESSING = "processing"
    IN_DELIVERY = "in_delivery"
    DELIVERED = "delivered"

    @property
    def label(self) -> str:
        """The status as people read it (Russian): what the API's `status_label` says."""
        return TRANSACTION_STATUS_LABELS[self][0]

    def label_in(self, locale: str) -> str:
        """The label in an email's language ("ru" or "en")."""
        ru, en = TRANSACTION_STATUS_LABELS[self]
        return en if locale == "en" else ru


# Russian first, English second.
TRANSACTION_STATUS_LABELS: dict[TransactionStatus, tuple[str, str]] = {
    TransactionStatus.NOT_PAID_IN_TIME: ("Не оплачено вовремя", "Not paid in time"),
    TransactionStatus.PAYMENT_IN_PROGRESS: ("В процессе оплаты", "Payment in progress"),
    TransactionStatus.PROCESSING: ("В обработке", "Processing"),
    TransactionStatus.IN_DELIVERY: ("В доставке", "In delivery"),
    TransactionStatus.DELIVERED: ("Доставлено", "Delivered"),
}


class TransactionActor(StrEnum):
    """Who or what changed an order's status (its history says)."""

    USER = "user"  # the customer (creating the order)
    ADMIN = "admin"  # staff, through /admin/transactions
    SYSTEM = "system"  # the payment deadline
    WEBHOOK = "webhook"  # the payment provider
