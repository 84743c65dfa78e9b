"""Bodies of the confirmation routes."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.users.schemas import Email

Code = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{6}$"),
    Field(description="6 цифр из письма · The 6 digits from the email", examples=["482915"]),
]


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    code: Code


class ResendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class ConfirmationState(BaseModel):
    confirmation_status: bool | None = Field(
        description=(
            "true — email подтверждён; null — код отправлен и ждёт ввода; false — код истёк "
            "или исчерпаны попытки, запросите новый · true: confirmed; null: a live code "
            "awaits entry; false: the code expired or was burned, request a new one"
        )
    )
    expires_at: datetime | None = Field(
        default=None,
        description="Когда истекает текущий код · When the current code expires (UTC)",
    )


CONFIRM_EXAMPLES: dict[str, dict[str, Any]] = {
    "code": {
        "summary": "Код из письма · The code from the email",
        "value": {"email": "ivan@example.com", "code": "482915"},
    },
    "copied": {
        "summary": "Код, скопированный с пробелами · A code pasted with spaces around it",
        "value": {"email": "anna@example.com", "code": " 073146 "},
    },
}
RESEND_EXAMPLES: dict[str, dict[str, Any]] = {
    "resend": {
        "summary": "Прислать код ещё раз · Send the code again",
        "value": {"email": "ivan@example.com"},
    },
    "other": {
        "summary": "Другой аккаунт · Another account",
        "value": {"email": "anna@example.com"},
    },
}
