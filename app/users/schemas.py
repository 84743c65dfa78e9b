"""Request and response bodies for users. Field rules live here, once."""

import re
import unicodedata
import uuid
from datetime import datetime
from typing import Annotated, Any

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
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
EMAIL_MAX_LENGTH = 320
# Unicode bidirectional controls: "\u202egnp.exe" shows as "exe.png".
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def canonical_email(value: str) -> str:
    """The one spelling an email is stored, looked up and rate-limited under: NFKC, then
    lower case (fullwidth `ｕ@example.com` and `U@example.com` both become `u@example.com`)."""
    return unicodedata.normalize("NFKC", value).strip().lower()


def refuse_compatibility_forms(value: object) -> object:
    """An address that NFKC would change (fullwidth letters, ligatures) is a look-alike of
    another one: refused, so no account can impersonate `u@example.com` as `ｕ@example.com`."""
    if isinstance(value, str) and unicodedata.normalize("NFKC", value) != value:
        raise ValueError(
            "use plain characters: the address contains look-alike (compatibility) forms"
        )
    return value


def printable(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters (tabs, line breaks, NUL)")
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
    Field(
        max_length=EMAIL_MAX_LENGTH,
        description=(
            "Email; хранится в нижнем регистре · stored in lower case. Буквы-двойники "
            "(полноширинные, лигатуры) не принимаются · look-alike forms are refused"
        ),
        examples=["ivan@example.com"],
    ),
    BeforeValidator(refuse_compatibility_forms),
    AfterValidator(canonical_email),
]
Phone = Annotated[
    str,
    StringConstraints(max_length=32),
    Field(
        description=(
            "Телефон в любом привычном написании; номер без кода страны считается российским; "
            "хранится и возвращается в формате E.164 · Any common spelling (no country code "
            "means Russia); stored and returned as E.164, e.g. +79123456789"
        ),
        examples=["+7 912 345-67-89"],
    ),
    AfterValidator(normalize_phone),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    Field(
        description=(
            "Имя, 1–100 символов, без управляющих символов и символов смены направления "
            "текста · Name, 1–100 visible characters, no control or text-direction characters"
        ),
        examples=["Иван Петров"],
    ),
    AfterValidator(printable),
    AfterValidator(visible_name),
]
# The rule (8–128 characters, not the email) is checked by UserManager.validate_password,
# which answers 400 with a reason; the schema states it, the type only bounds the input.
Password = Annotated[
    str,
    StringConstraints(max_length=4096),
    Field(
        description=(
            "Пароль: от 8 до 128 любых символов, не совпадает с email · Password: 8 to 128 "
            "characters of any kind, not the email"
        ),
        json_schema_extra={"minLength": 8, "maxLength": 128, "format": "password"},
    ),
]
REGISTRATION_EXAMPLES: dict[str, dict[str, Any]] = {
    "customer": {
        "summary": "Покупатель · A customer",
        "value": {
            "email": "ivan@example.com",
            "password": "correct horse battery",
            "name": "Иван Петров",
            "phone": "+7 912 345-67-89",
            "newsletter_opt_in": True,
        },
    },
    "international": {
        "summary": "Номер другой страны · A number from another country",
        "value": {
            "email": "anna@example.com",
            "password": "четыре слова подряд",
            "name": "Anna Schmidt",
            "phone": "+49 30 901820",
        },
    },
}


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(description="Идентификатор · User id (UUID)")
    email: str = Field(description="Email в нижнем регистре · Email, lower case")
    name: str = Field(description="Имя · Name")
    phone: str | None = Field(
        description="Телефон в E.164 (нет у сотрудников, созданных из CLI) · Phone, E.164"
    )
    role: UserRole = Field(description="Роль: user или admin · Role")
    is_active: bool = Field(description="Может входить · May sign in")
    is_verified: bool = Field(description="Email подтверждён · Email confirmed")
    newsletter_opt_in: bool = Field(
        description="Получает рассылку магазина · Receives the shop's newsletters"
    )
    created_at: datetime = Field(description="Когда зарегистрирован (UTC) · Registered at (UTC)")


class UserCreate(CreateUpdateDictModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    name: Name
    phone: Phone
    newsletter_opt_in: bool = Field(
        default=False,
        description=(
            "Подписаться на рассылку магазина (по умолчанию нет) · Subscribe to the shop's "
            "newsletters (default: no)"
        ),
    )


UPDATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "contacts": {
        "summary": "Имя и телефон · Name and phone",
        "value": {"name": "Иван Иванов", "phone": "+79123456780"},
    },
    "password": {
        "summary": "Новый пароль · A new password",
        "value": {"password": "a new long passphrase", "current_password": "correct horse battery"},
    },
    "unsubscribe": {
        "summary": "Отписаться от рассылки · Stop newsletters",
        "value": {"newsletter_opt_in": False},
    },
    "email": {
        "summary": "Новый email (подтвердить заново) · A new email (to confirm again)",
        "value": {"email": "ivan.petrov@example.com", "current_password": "correct horse battery"},
    },
}


class UserUpdate(CreateUpdateDictModel):
    """PATCH /users/me. Omitted fields stay as they are; null is not a value."""

    model_config = ConfigDict(extra="forbid")

    name: Name = None  # type: ignore[assignment]
    phone: Phone = None  # type: ignore[assignment]
    email: Email = None  # type: ignore[assignment]
    password: Password = None  # type: ignore[assignment]
    newsletter_opt_in: bool = Field(  # type: ignore[assignment]
        default=None,
        description=(
            "Подписка на рассылку; false отменяет и ещё не отправленные письма · Newsletter "
            "subscription; false also withdraws newsletters not yet sent"
        ),
    )
    current_password: Annotated[str, StringConstraints(max_length=4096)] = Field(  # type: ignore[assignment]
        default=None,
        description=(
            "Текущий пароль: нужен для смены email или пароля · The current password, needed "
            "to change the email or the password"
        ),
        json_schema_extra={"format": "password"},
    )


ADMIN_UPDATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "promote": {"summary": "Сделать администратором · Make an admin", "value": {"role": "admin"}},
    "deactivate": {
        "summary": "Отключить аккаунт · Deactivate the account",
        "value": {"is_active": False},
    },
}


class AdminUserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: UserRole = Field(default=None, description="Новая роль · New role")  # type: ignore[assignment]
    is_active: bool = Field(  # type: ignore[assignment]
        default=None, description="Может ли входить · Whether the user may sign in"
    )


class UserPage(BaseModel):
    items: list[UserRead] = Field(description="Сначала новые · Newest first")
    next_cursor: str | None = Field(
        description=(
            "Передайте в `cursor`, чтобы получить следующую страницу; null — страниц больше "
            "нет · Pass as `cursor` for the next page; null when this is the last one"
        )
    )
