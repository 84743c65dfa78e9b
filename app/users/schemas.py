"""Request and response bodies for users. Field rules live here, once."""

import unicodedata
import uuid
from datetime import datetime
from typing import Annotated

import phonenumbers
from fastapi_users.schemas import CreateUpdateDictModel
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
)

from app.types.enums import UserRole

PHONE_DEFAULT_REGION = "RU"
# Printable text only: control characters (NUL above all, which PostgreSQL cannot store)
# are refused with 422 instead of failing in the database.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
EMAIL_MAX_LENGTH = 320
# Unicode bidirectional controls: "\u202egnp.exe" shows as "exe.png".
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def canonical_email(value: str) -> str:
    """The one spelling an email is stored, looked up and rate-limited under: NFKC, then
    lower case (fullwidth `ｕ@example.com` and `U@example.com` both become `u@example.com`)."""
    return unicodedata.normalize("NFKC", value).strip().lower()


def refuse_compatibility_forms(value: object) -> object:
    """An address that NFKC would change (fullwidth letters, ligatures) is a look-alike of
    another one: refused, so no account can impersonate `u@example.com` as `ｕ@example.com`."""
    if isinstance(value, str) and unicodedata.normalize("NFKC", value) != value:
        raise ValueError("use plain characters: the address contains look-alike (compatibility) forms")
    return value


def visible_name(value: str) -> str:
    if any(ch in BIDI_CONTROLS for ch in value):
        raise ValueError("must not contain text-direction control characters")
    if not any(unicodedata.category(ch)[0] in "LNPS" for ch in value):
        raise ValueError("must contain at least one visible character")
    return value


def normalize_phone(value: str) -> str:
    """Any common spelling of a valid number → E.164 (`+7 912 345-67-89` → `+79123456789`)."""
    try:
        number = phonenumbers.parse(value, PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


Email = Annotated[
    EmailStr,
    Field(max_length=EMAIL_MAX_LENGTH),
    BeforeValidator(refuse_compatibility_forms),
    AfterValidator(canonical_email),
]
Phone = Annotated[str, StringConstraints(max_length=32), AfterValidator(normalize_phone)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=PRINTABLE),
    AfterValidator(visible_name),
]
# Length and content rules are checked by UserManager.validate_password (400 with a reason).
Password = Annotated[str, StringConstraints(max_length=4096)]


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    phone: str | None
    role: UserRole
    is_active: bool
    is_verified: bool
    created_at: datetime


class UserCreate(CreateUpdateDictModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "ivan@example.com",
                    "password": "correct horse battery",
                    "name": "Иван Петров",
                    "phone": "+7 912 345-67-89",
                }
            ]
        },
    )

    email: Email
    password: Password
    name: Name
    phone: Phone


class UserUpdate(CreateUpdateDictModel):
    """PATCH /users/me. Omitted fields stay as they are; null is not a value."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "Иван Иванов", "phone": "+79123456780"},
                {"password": "a new long passphrase", "current_password": "correct horse battery"},
            ]
        },
    )

    name: Name = None  # type: ignore[assignment]
    phone: Phone = None  # type: ignore[assignment]
    email: Email = None  # type: ignore[assignment]
    password: Password = None  # type: ignore[assignment]
    current_password: Password = Field(
        default=None, description="Required when changing the email or the password"
    )


class AdminUserUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "admin", "is_active": True}]}
    )

    role: UserRole = None  # type: ignore[assignment]
    is_active: bool = None  # type: ignore[assignment]


class UserPage(BaseModel):
    items: list[UserRead]
    next_cursor: str | None
