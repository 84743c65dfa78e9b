"""EmailService composes emails and opens batches; the console backend logs them."""

import logging
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from app.core.config import load_settings
from app.services.email.render import UnknownTemplate
from app.services.email.samples import SAMPLES
from app.services.email.sender import (
    ConsoleSender,
    OutgoingEmail,
    SMTPSender,
    build_message,
    make_sender,
    new_message_id,
)
from app.services.email.service import EmailService

DATE = datetime(2026, 11, 27, 14, 5, 9, tzinfo=UTC)


def settings(**overrides):
    values = {"SECRET_KEY": secrets.token_urlsafe(48), "PUBLIC_BASE_URL": "https://shop.test"}
    return load_settings(env_file=None, **{**values, **overrides})


# Built for each test (a few ms), not once per module: mutation testing (`make mutate`)
# runs a mutant of the constructor only against the tests that called it.
@pytest.fixture
def service() -> EmailService:
    return EmailService(settings(EMAIL_FROM="noreply@shop.test"))


def test_compose_renders_the_template_for_the_address(service):
    email = service.compose(
        to="anna@example.com",
        template="password_reset",
        locale="en",
        data=SAMPLES["password_reset"],
        message_id="<m1@shop.test>",
        date=DATE,
    )
    assert (email.to, email.subject, email.message_id, email.date) == (
        "anna@example.com",
        "Reset your password",
        "<m1@shop.test>",
        DATE,
    )
    assert SAMPLES["password_reset"]["reset_url"] in email.text
    assert 'href="https://shop.test"' in email.html  # the settings' PUBLIC_BASE_URL
    with pytest.raises(UnknownTemplate):
        service.compose(
            to="a@b.c", template="nope", locale="ru", data={}, message_id="<x@y>", date=DATE
        )


def test_compose_is_safe_from_many_threads(service):
    def one(i: int) -> OutgoingEmail:
        data = {**SAMPLES["confirmation_code"], "code": f"{i:06d}", "name": f"User {i}"}
        return service.compose(
            to=f"u{i}@example.com",
            template="confirmation_code",
            locale="ru",
            data=data,
            message_id=f"<{i}@shop.test>",
            date=DATE,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        emails = list(pool.map(one, range(200)))
    for i, email in enumerate(emails):
        assert email.subject == "Подтвердите адрес почты"
        assert f"User {i}!" in email.text and f">{i:06d}</p>" in email.html


def test_message_ids_are_unique_and_carry_the_senders_domain(service):
    ids = {service.new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"<[0-9a-f]{32}@shop\.test>", i) for i in ids)
    assert new_message_id("Shop@Пример.РФ").endswith("@xn--e1afmkfd.xn--p1ai>")


def test_the_backend_setting_picks_the_sender(service):
    assert isinstance(service.connect(), ConsoleSender)
    assert service.connect() is not service.connect()  # a fresh one per batch
    smtp = settings(EMAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_STARTTLS=False)
    assert isinstance(make_sender(smtp), SMTPSender)
    assert isinstance(EmailService(smtp).connect(), SMTPSender)


def test_a_naive_date_is_refused():
    email = OutgoingEmail("a@b.c", "s", "t", "<p>h</p>", "<m@b.c>", datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        build_message(email, from_address="shop@b.c", from_name="Shop")


async def test_the_console_backend_logs_the_whole_message_and_sends_nothing(service, caplog):
    email = service.compose(
        to="anna@example.com",
        template="confirmation_code",
        locale="ru",
        data=SAMPLES["confirmation_code"],
        message_id="<c1@shop.test>",
        date=DATE,
    )
    caplog.set_level(logging.INFO, logger="app.email")
    async with service.connect() as sender:
        assert await sender.send(email) is None
    [record] = [r for r in caplog.records if r.name == "app.email"]
    assert record.levelno == logging.INFO
    logged = record.getMessage()
    for expected in (
        "To: anna@example.com",
        "Subject: Подтвердите адрес почты",
        "From: Магазин <noreply@shop.test>",
        "Message-ID: <c1@shop.test>",
        "Date: Fri, 27 Nov 2026 14:05:09 +0000",
        "\n    482915\n",  # the text part, readable
        'class="code"',  # the HTML part
    ):
        assert expected in logged, expected
