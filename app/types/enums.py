"""Enums shared across domains. Stored as plain strings in the database."""

from enum import StrEnum


class UserRole(StrEnum):
    USER = "user"
    ADMIN = "admin"
