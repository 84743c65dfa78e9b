"""Sending through a real SMTP server (aiosmtpd in the test process): what arrives, and
how every kind of failure is reported."""

import asyncio
import logging
import time
import traceback
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app.services.email.samples import SAMPLES
from app.services.email.sender import (
    DeliveryError,
    OutgoingEmail,
    PermanentDeliveryError,
    ServerUnavailable,
    SMTPSender,
    TemporaryDeliveryError,
)
from app.services.email.service import EmailService
from tests.smtp import settings_for

DATE = datetime(2026, 11, 27, 14, 5, 9, tzinfo=UTC)
FROM_NAME = "Магазин «Ромашка»"


def compose(service: EmailService, to: str = "anna@example.com", **data: Any) -> OutgoingEmail:
    return service.compose(
        to=to,
        template="confirmation_code",
        locale="ru",
        data={**SAMPLES["confirmation_code"], **data},
        message_id=service.new_message_id(),
        date=DATE,
    )


async def send(service: EmailService, *emails: OutgoingEmail) -> None:
    async with service.connect() as sender:
        for email in emails:
            await sender.send(email)


async def test_the_message_that_arrives_is_alternative_text_then_html(smtp_server):
    service = EmailService(settings_for(smtp_server, EMAIL_FROM_NAME=FROM_NAME))
    email = compose(service, code="073512")
    await send(service, email)

    [message] = smtp_server.messages
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert "\n    073512\n" in text.get_content()
    assert '">073512</p>' in html.get_content()
    assert 'style="' in html.get_content() and "<style" not in html.get_content()
    assert "Здравствуйте, Анна!" in text.get_content()

    assert message["Subject"] == "Подтвердите адрес почты"
    assert message["Message-ID"] == email.message_id
    assert message["Date"].datetime == DATE
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (FROM_NAME, "shop@example.com")
    assert message["To"].addresses[0].addr_spec == "anna@example.com"
    [envelope] = smtp_server.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == ("shop@example.com", ["anna@example.com"])
    assert smtp_server.raw[0].isascii()  # every header and part encoded for any server


async def test_the_date_header_keeps_the_instant_whatever_the_timezone(smtp_server):
    service = EmailService(settings_for(smtp_server))
    moscow = DATE.astimezone(timezone(timedelta(hours=3)))
    email = compose(service)
    await send(service, OutgoingEmail(**{**_fields(email), "date": moscow}))
    assert smtp_server.messages[0]["Date"].datetime == DATE


def _fields(email: OutgoingEmail) -> dict[str, Any]:
    """The email's parts without the MIME built from them (a changed copy is rebuilt)."""
    return {name: getattr(email, name) for name in OutgoingEmail.__slots__ if name != "mime"}


async def test_line_breaks_in_the_subject_and_from_name_inject_no_header(smtp_server):
    service = EmailService(settings_for(smtp_server))
    email = compose(service)
    injected = OutgoingEmail(
        **{**_fields(email), "subject": "Привет\r\nBcc: evil@example.com\nX-Injected: 1"}
    )
    sender = SMTPSender(settings_for(smtp_server))
    sender.from_name = "Shop\r\nX-Injected: 2\x00"  # settings refuse it; the sender copes
    async with sender:
        await sender.send(injected)

    [message] = smtp_server.messages
    assert message["Subject"] == "Привет Bcc: evil@example.com X-Injected: 1"
    assert message["X-Injected"] is None and message["Bcc"] is None
    assert message["From"].addresses[0].display_name == "Shop X-Injected: 2"
    assert smtp_server.envelopes[0].rcpt_tos == ["anna@example.com"]


@pytest.mark.parametrize(
    "to",
    ["anna@example.com\r\nBcc: evil@example.com", "anna@example.com\nevil@example.com", ""],
)
async def test_a_recipient_with_line_breaks_is_refused_and_nothing_is_sent(smtp_server, to):
    service = EmailService(settings_for(smtp_server))
    with pytest.raises(PermanentDeliveryError, match="not a single email address"):
        await send(service, compose(service, to=to))
    assert smtp_server.messages == [] and smtp_server.envelopes == []


async def test_a_message_that_cannot_be_built_is_permanent(smtp_server):
    service = EmailService(settings_for(smtp_server))
    without_html = OutgoingEmail(**{**_fields(compose(service)), "html": ""})
    with pytest.raises(PermanentDeliveryError, match=r"not sendable.*text and an HTML part"):
        await send(service, without_html)
    assert smtp_server.messages == []


async def test_one_connection_carries_a_whole_batch(smtp_server):
    service = EmailService(settings_for(smtp_server))
    emails = [compose(service, to=f"user{i}@example.com", code=f"00000{i}") for i in range(3)]
    await send(service, *emails)
    assert smtp_server.connections == 1
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [[e.to] for e in emails]
    assert len({m["Message-ID"] for m in smtp_server.messages}) == 3
    await send(service, compose(service))  # the next batch: a connection of its own
    assert smtp_server.connections == 2


async def test_a_4xx_reply_is_temporary_and_the_batch_goes_on(smtp_server):
    service = EmailService(settings_for(smtp_server))
    smtp_server.fail_next(1, "451 4.3.0 Try again later")
    async with service.connect() as sender:
        with pytest.raises(TemporaryDeliveryError, match="451") as caught:
            await sender.send(compose(service, to="first@example.com"))
        await sender.send(compose(service, to="second@example.com"))
    assert caught.value.permanent is False
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [["second@example.com"]]
    assert smtp_server.connections == 1


@pytest.mark.parametrize(
    ("command", "reply", "error"),
    [
        ("RCPT", "550 5.1.1 No such user", PermanentDeliveryError),
        ("DATA", "554 5.7.1 Message rejected as spam", PermanentDeliveryError),
        ("RCPT", "452 4.2.2 Mailbox full", TemporaryDeliveryError),
        ("DATA", "421 4.7.0 Too many messages, slow down", TemporaryDeliveryError),
    ],
)
async def test_reply_codes_decide_permanent_or_temporary(smtp_server, command, reply, error):
    service = EmailService(settings_for(smtp_server))
    smtp_server.fail_next(1, reply, command=command)
    with pytest.raises(error) as caught:
        await send(service, compose(service))
    assert reply.split()[0] in str(caught.value)
    assert caught.value.permanent is (error is PermanentDeliveryError)
    assert "\n" not in str(caught.value)
    assert smtp_server.messages == []


async def test_a_server_that_is_down_is_temporary_and_mail_flows_when_it_is_back(smtp_server):
    service = EmailService(settings_for(smtp_server))
    smtp_server.stop()
    with pytest.raises(TemporaryDeliveryError, match="unreachable"):
        await send(service, compose(service))
    smtp_server.start()
    await send(service, compose(service))
    assert len(smtp_server.messages) == 1


async def test_a_server_that_goes_down_mid_batch(smtp_server):
    service = EmailService(settings_for(smtp_server))
    async with service.connect() as sender:
        await sender.send(compose(service, to="first@example.com"))
        smtp_server.stop()
        with pytest.raises(TemporaryDeliveryError):
            await sender.send(compose(service, to="second@example.com"))
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [["first@example.com"]]


async def test_a_server_that_never_answers_times_out_as_temporary(silent_smtp_server):
    service = EmailService(settings_for(silent_smtp_server, SMTP_TIMEOUT=0.5))
    started = time.monotonic()
    with pytest.raises(TemporaryDeliveryError, match="unreachable"):
        await send(service, compose(service))
    assert time.monotonic() - started < 3  # the setting's timeout, not a library's default


async def test_login_with_the_right_password(smtp_server_with_auth):
    service = EmailService(settings_for(smtp_server_with_auth))
    await send(service, compose(service))
    assert smtp_server_with_auth.logins == ["shop@example.com"]
    assert len(smtp_server_with_auth.messages) == 1


async def test_without_login_a_server_that_requires_it_refuses(smtp_server_with_auth):
    settings = settings_for(smtp_server_with_auth, SMTP_USERNAME=None, SMTP_PASSWORD=None)
    service = EmailService(settings)
    with pytest.raises(ServerUnavailable, match="530") as caught:
        await send(service, compose(service))
    assert caught.value.permanent is False  # a setting to fix: the outbox keeps the mail
    assert smtp_server_with_auth.messages == []


async def test_a_wrong_password_keeps_the_mail_and_is_never_shown(smtp_server_with_auth, caplog):
    password = "Wr0ng-Passw0rd-4-test"
    settings = settings_for(smtp_server_with_auth, SMTP_PASSWORD=password)
    service = EmailService(settings)
    caplog.set_level(logging.DEBUG)
    sender = service.connect()
    with pytest.raises(ServerUnavailable, match="535") as caught:
        async with sender:
            await sender.send(compose(service))

    assert smtp_server_with_auth.logins == [] and smtp_server_with_auth.messages == []
    assert isinstance(sender, SMTPSender)
    shown = [
        str(caught.value),
        repr(caught.value),
        "".join(traceback.format_exception(caught.value)),
        repr(sender),
        str(sender),
        repr(settings),
        caplog.text,
    ]
    assert all(password not in text for text in shown)
    assert "shop@example.com" in repr(sender) and "127.0.0.1" in repr(sender)


def test_the_sender_repr_shows_where_not_the_secret(smtp_server_with_auth):
    password = smtp_server_with_auth.password
    sender = SMTPSender(settings_for(smtp_server_with_auth))
    assert password not in repr(sender) and password not in str(vars(sender))


async def test_a_password_echoed_by_the_server_is_masked(smtp_server):
    """Whatever a server says back ends up in the error; the password never does."""
    password = "S3cret-echoed-back"
    settings = settings_for(smtp_server, SMTP_USERNAME="shop", SMTP_PASSWORD=password)
    sender = SMTPSender(settings)
    smtp_server.fail_next(1, f"550 5.7.1 you said {password}")
    service = EmailService(settings_for(smtp_server))
    sender.username = None  # this server takes no login; the sender still knows the secret
    with pytest.raises(PermanentDeliveryError) as caught:
        async with sender:
            await sender.send(compose(service))
    assert password not in str(caught.value) and "**********" in str(caught.value)


async def test_failures_are_delivery_errors_with_one_line(smtp_server):
    service = EmailService(settings_for(smtp_server))
    smtp_server.fail_next(1, "451 4.3.0 " + "x" * 2000)
    with pytest.raises(DeliveryError) as caught:
        await send(service, compose(service))
    assert "\n" not in str(caught.value) and len(str(caught.value)) <= 400


async def test_sends_from_concurrent_batches_do_not_mix(smtp_server):
    service = EmailService(settings_for(smtp_server))

    async def batch(n: int) -> None:
        await send(service, *(compose(service, to=f"b{n}-{i}@example.com") for i in range(3)))

    await asyncio.gather(*(batch(n) for n in range(3)))
    assert smtp_server.connections == 3
    received = sorted(rcpt for e in smtp_server.envelopes for rcpt in e.rcpt_tos)
    assert received == sorted(f"b{n}-{i}@example.com" for n in range(3) for i in range(3))


async def test_starttls_required_but_not_offered_sends_nothing_in_clear(smtp_server):
    service = EmailService(settings_for(smtp_server, SMTP_STARTTLS=True))
    with pytest.raises(TemporaryDeliveryError, match="STARTTLS"):
        await send(service, compose(service))
    assert smtp_server.messages == [] and smtp_server.envelopes == []
