"""The email service: renders a template into an email and opens sending batches.

It knows no domain. Callers (the outbox dispatcher, the staff preview) give an address,
a template name, a locale and the template's data; what an email says lives in the
templates, how it travels in `sender`.
"""

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core.config import Settings
from app.services.email import sender
from app.services.email.bulk import BulkContent, unsubscribe_headers
from app.services.email.render import TemplateRenderer
from app.services.email.sender import EmailSender, OutgoingEmail

# Covered by the DKIM signature. An absent one is signed as absent, so nobody can add
# it on the way; RFC 8058 requires List-Unsubscribe and List-Unsubscribe-Post covered.
DKIM_SIGNED_HEADERS = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
]


class EmailService:
    """Renders and sends every email; knows no domain: address, template, locale, data."""

    def __init__(self, settings: Settings, renderer: TemplateRenderer | None = None) -> None:
        self.settings = settings
        self.renderer = renderer or TemplateRenderer(public_base_url=settings.PUBLIC_BASE_URL)
        key = settings.dkim_private_key()
        self._dkim: dict[str, Any] | None = None
        if key is not None:
            self._dkim = {
                "key": key,
                "domain": settings.DKIM_DOMAIN,
                "selector": settings.DKIM_SELECTOR,
                "include_headers": DKIM_SIGNED_HEADERS,
            }

    def compose(
        self,
        *,
        to: str,
        template: str,
        locale: str,
        data: Mapping[str, Any],
        message_id: str,
        date: datetime,
        bulk: BulkContent | None = None,
    ) -> OutgoingEmail:
        """Render one email, ready to send. Pure and thread-safe: big batches may compose
        in a worker thread. The MIME message is built here too (`mime`), off the event
        loop (left out when it cannot be built: the sender then refuses the email with the
        reason). Raises UnknownTemplate, ValueError (locale) or jinja2.UndefinedError (data
        missing a variable).

        `bulk`: a newsletter's staff content, rendered with `data` as its merge fields and
        framed by the `newsletter` template; the email then carries List-Unsubscribe."""
        headers: tuple[tuple[str, str], ...] = ()
        if bulk is not None:
            data = bulk.render(data)
            headers = unsubscribe_headers(data["unsubscribe_url"])
        rendered = self.renderer.render(template, locale, data)
        email = OutgoingEmail(
            to=to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message_id,
            date=date,
            headers=headers,
        )
        try:
            message = sender.build_message(
                email,
                from_address=self.settings.EMAIL_FROM,
                from_name=self.settings.EMAIL_FROM_NAME,
            )
            if self._dkim is not None:
                message.dkim(**self._dkim)  # signed by as_bytes, with the emails library's signer
            mime = message.as_bytes()
        except Exception:  # the sender checks it again and says why it cannot go
            return email
        return dataclasses.replace(email, mime=mime)

    def connect(self) -> EmailSender:
        """A fresh sender for one batch: `async with service.connect() as s: await s.send(e)`."""
        return sender.make_sender(self.settings)

    def new_message_id(self) -> str:
        return sender.new_message_id(self.settings.EMAIL_FROM)
