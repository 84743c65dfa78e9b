"""Request and response bodies of the newsletter routes."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from app.newsletters.models import HTML_MAX_LENGTH, SUBJECT_MAX_LENGTH, TEXT_MAX_LENGTH
from app.types.enums import NewsletterStatus
from app.users.schemas import printable

MERGE_FIELDS_HELP = (
    "Поля подстановки (Jinja2, в песочнице): `{{ name }}` — имя получателя, "
    "`{{ unsubscribe_url }}` — его ссылка отписки · Merge fields (Jinja2, sandboxed): "
    "`{{ name }}`, `{{ unsubscribe_url }}`"
)


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class NewsletterCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=SUBJECT_MAX_LENGTH),
        AfterValidator(printable),
        Field(description=f"Тема письма, одна строка · The subject, one line. {MERGE_FIELDS_HELP}"),
    ]
    html: Annotated[
        str,
        StringConstraints(min_length=1, max_length=HTML_MAX_LENGTH),
        AfterValidator(no_nul),
        Field(
            description=(
                "HTML-фрагмент (содержимое письма без <html> и <body>): его обрамит макет "
                "магазина, CSS встроится сам · An HTML fragment, framed by the shop's layout. "
                + MERGE_FIELDS_HELP
            )
        ),
    ]
    text: Annotated[
        str,
        StringConstraints(min_length=1, max_length=TEXT_MAX_LENGTH),
        AfterValidator(no_nul),
        Field(description=f"Текстовая версия · The plain-text part. {MERGE_FIELDS_HELP}"),
    ]


CREATE_EXAMPLES: dict[str, dict[str, Any]] = {
    "sale": {
        "summary": "Распродажа · A sale",
        "value": {
            "subject": "{{ name }}, скидки недели",
            "html": "<h1>Скидки недели</h1><p>{{ name }}, для вас −20% на всё до воскресенья.</p>",
            "text": "{{ name }}, для вас −20% на всё до воскресенья.",
        },
    },
    "news": {
        "summary": "Новости магазина · Shop news",
        "value": {
            "subject": "Новое в магазине",
            "html": "<p>Здравствуйте, {{ name }}! Мы открыли пункт выдачи у метро.</p>",
            "text": "Здравствуйте, {{ name }}! Мы открыли пункт выдачи у метро.",
        },
    },
}


class NewsletterRead(BaseModel):
    id: uuid.UUID = Field(description="Идентификатор рассылки · Newsletter id")
    subject: str = Field(description="Тема (шаблон) · The subject (template)")
    status: NewsletterStatus = Field(
        description=(
            "draft — черновик, sending — отправляется, sent — все письма обработаны · "
            "draft, sending, sent (every email sent, failed or withdrawn)"
        )
    )
    recipients: int = Field(description="Сколько получателей поставлено в очередь · Queued for")
    sent: int = Field(description="Передано SMTP-серверу · Handed to the SMTP server")
    failed: int = Field(description="Не доставлено (отказ сервера) · Refused for good")
    withdrawn: int = Field(description="Отменено: получатель отписался · Recipient unsubscribed")
    pending: int = Field(description="Ещё в очереди · Still queued")
    created_at: datetime = Field(description="Создана (UTC) · Created at (UTC)")
    sent_at: datetime | None = Field(
        description="Когда поставлена в очередь (UTC) · When `send` queued it (UTC)"
    )
    finished_at: datetime | None = Field(
        description="Когда ушло последнее письмо (UTC) · When the last email left (UTC)"
    )


class NewsletterPage(BaseModel):
    items: list[NewsletterRead] = Field(description="Сначала новые · Newest first")
    next_cursor: str | None = Field(
        description="Передайте в `cursor` для следующей страницы · Pass as `cursor` for the next"
    )


class SendAccepted(BaseModel):
    id: uuid.UUID = Field(description="Идентификатор рассылки · Newsletter id")
    recipients: int = Field(description="Сколько писем поставлено в очередь · Emails queued")


class TestAccepted(BaseModel):
    to: str = Field(description="Кому отправлено тестовое письмо · Where the test goes")
