"""Enums shared across domains. Stored as plain strings in the database."""

from enum import StrEnum


class UserRole(StrEnum):
    USER = "user"
    ADMIN = "admin"


class NewsletterStatus(StrEnum):
    DRAFT = "draft"  # written, may be previewed and test-sent
    SENDING = "sending"  # queued for its recipients; some not yet handed to SMTP
    SENT = "sent"  # every recipient's email sent, failed or withdrawn
