"""The email service: renders a template into an email and opens sending batches.

It knows no domain. Callers (the outbox dispatcher, the staff preview) give an address,
a template name, a locale and the template's data; what an email says lives in the
templates, how it travels in `sender`.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core.config import Settings
from app.services.email import sender
from app.services.email.render import TemplateRenderer
from app.services.email.sender import EmailSender, OutgoingEmail


class EmailService:
    """Renders and sends every email; knows no domain: address, template, locale, data."""

    def __init__(self, settings: Settings, renderer: TemplateRenderer | None = None) -> None:
        self.settings = settings
        self.renderer = renderer or TemplateRenderer(public_base_url=settings.PUBLIC_BASE_URL)

    def compose(
        self,
        *,
        to: str,
        template: str,
        locale: str,
        data: Mapping[str, Any],
        message_id: str,
        date: datetime,
    ) -> OutgoingEmail:
        """Render one email, ready to send. Pure and thread-safe: big batches may compose
        in a worker thread. Raises UnknownTemplate, ValueError (locale) or
        jinja2.UndefinedError (data missing a variable)."""
        rendered = self.renderer.render(template, locale, data)
        return OutgoingEmail(
            to=to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message_id,
            date=date,
        )

    def connect(self) -> EmailSender:
        """A fresh sender for one batch: `async with service.connect() as s: await s.send(e)`."""
        return sender.make_sender(self.settings)

    def new_message_id(self) -> str:
        return sender.new_message_id(self.settings.EMAIL_FROM)
