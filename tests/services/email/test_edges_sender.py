"""Edges of the SMTP and console senders: which addresses go, where the sender connects,
the exact error texts and log lines an operator reads, and the prebuilt MIME."""

import logging
import secrets
from email import message_from_bytes
from email.policy import default

import pytest

from app.core.config import load_settings
from app.services.email.sender import (
    OutgoingEmail,
    PermanentDeliveryError,
    ServerUnavailable,
    SMTPSender,
    TemporaryDeliveryError,
    build_message,
)
from app.services.email.service import EmailService
from tests.services.email.test_smtp_sender import DATE, compose, send
from tests.smtp import settings_for


def _with(email: OutgoingEmail, **changes) -> OutgoingEmail:
    fields = {name: getattr(email, name) for name in OutgoingEmail.__slots__}
    return OutgoingEmail(**{**fields, **changes})


@pytest.mark.parametrize("to", ["@example.com", "anna@", "a b@example.com"])
async def test_an_address_without_a_local_part_or_domain_is_refused(smtp_server, to):
    service = EmailService(settings_for(smtp_server))
    with pytest.raises(PermanentDeliveryError) as caught:
        await send(service, compose(service, to=to))
    assert str(caught.value) == f"not a single email address: {to!r}"
    assert smtp_server.connections == 0


async def test_a_long_bad_address_is_quoted_to_100_characters(smtp_server):
    service = EmailService(settings_for(smtp_server))
    to = "<" + "a" * 200 + "@example.com>"
    with pytest.raises(PermanentDeliveryError) as caught:
        await send(service, compose(service, to=to))
    assert str(caught.value) == f"not a single email address: {to[:100]!r}"


async def test_capital_letters_in_an_address_are_fine(smtp_server):
    service = EmailService(settings_for(smtp_server))
    await send(service, compose(service, to="XENIA.X@Example.COM"))
    assert smtp_server.envelopes[0].rcpt_tos == ["XENIA.X@Example.COM"]


async def test_the_sender_connects_to_the_configured_host(smtp_server):
    # 127.0.0.2 is a loopback address too, but the test server listens on 127.0.0.1 only.
    service = EmailService(settings_for(smtp_server, SMTP_HOST="127.0.0.2"))
    with pytest.raises(ServerUnavailable) as caught:
        await send(service, compose(service))
    assert str(caught.value).startswith(f"SMTP 127.0.0.2:{smtp_server.port} unreachable: ")
    assert smtp_server.connections == 0 and smtp_server.messages == []


async def test_smtp_ssl_to_a_plain_server_sends_nothing_in_clear(smtp_server):
    service = EmailService(settings_for(smtp_server, SMTP_SSL=True, SMTP_TIMEOUT=2))
    assert "ssl=True" in repr(service.connect())
    with pytest.raises(ServerUnavailable, match="unreachable"):
        await send(service, compose(service))
    assert smtp_server.messages == [] and smtp_server.envelopes == []


def test_the_repr_without_a_username(smtp_server):
    sender = SMTPSender(settings_for(smtp_server))
    assert repr(sender) == (f"<SMTPSender 127.0.0.1:{smtp_server.port} ssl=False starttls=False>")


def test_the_smtp_backend_needs_a_host(smtp_server):
    settings = settings_for(smtp_server).model_copy(update={"SMTP_HOST": None})
    with pytest.raises(ValueError) as caught:
        SMTPSender(settings)
    assert str(caught.value) == "SMTP_HOST is required for the smtp email backend"


async def test_send_outside_a_batch_is_a_programming_error(smtp_server):
    service = EmailService(settings_for(smtp_server))
    sender = SMTPSender(settings_for(smtp_server))
    with pytest.raises(RuntimeError) as caught:
        await sender.send(compose(service))
    assert str(caught.value) == "SMTPSender.send outside `async with`"
    assert smtp_server.connections == 0


async def test_a_refusal_names_the_server_and_the_error(smtp_server):
    service = EmailService(settings_for(smtp_server))
    smtp_server.fail_next(1, "451 4.3.0 Try again later")
    with pytest.raises(TemporaryDeliveryError) as caught:
        await send(service, compose(service))
    assert str(caught.value) == (
        f"SMTP 127.0.0.1:{smtp_server.port} replied SMTPDataError: (451, '4.3.0 Try again later')"
    )


@pytest.mark.parametrize(
    ("command", "reply", "error"),
    [
        ("DATA", "500 5.0.0 Refused", PermanentDeliveryError),
        ("RCPT", "500 5.0.0 Refused", PermanentDeliveryError),
        ("DATA", "600 6.0.0 Odd", TemporaryDeliveryError),
        ("RCPT", "600 6.0.0 Odd", TemporaryDeliveryError),
    ],
)
async def test_the_bounds_of_the_5xx_range(smtp_server, command, reply, error):
    service = EmailService(settings_for(smtp_server))
    smtp_server.fail_next(1, reply, command=command)
    with pytest.raises(error) as caught:
        await send(service, compose(service))
    assert type(caught.value) is error
    assert smtp_server.messages == []


async def test_a_refused_login_is_logged_for_the_operator(smtp_server_with_auth, caplog):
    server = smtp_server_with_auth
    settings = settings_for(server, SMTP_PASSWORD="wrong-password-for-the-log")
    service = EmailService(settings)
    caplog.set_level(logging.DEBUG, logger="app.email")
    with pytest.raises(ServerUnavailable) as caught:
        await send(service, compose(service))
    [record] = [r for r in caplog.records if r.name == "app.email" and r.levelno == logging.ERROR]
    where = f"127.0.0.1:{server.port}"
    reason = str(caught.value).removeprefix(f"SMTP {where} refused us: ")
    assert reason.startswith("SMTPAuthenticationError: (535")
    assert record.getMessage() == (
        f"SMTP {where} refuses the session (check SMTP_* and EMAIL_FROM): {reason}"
    )


async def test_an_echoed_password_is_replaced_by_ten_stars(smtp_server):
    password = "S3cret-echoed-back"
    settings = settings_for(smtp_server, SMTP_USERNAME="shop", SMTP_PASSWORD=password)
    sender = SMTPSender(settings)
    sender.username = None  # this server takes no login; the sender still knows the secret
    smtp_server.fail_next(1, f"550 5.7.1 you said {password}")
    service = EmailService(settings_for(smtp_server))
    with pytest.raises(PermanentDeliveryError) as caught:
        async with sender:
            await sender.send(compose(service))
    assert str(caught.value).endswith("replied SMTPDataError: (550, '5.7.1 you said **********')")


async def test_what_goes_over_the_wire_is_the_mime_built_by_compose(smtp_server):
    service = EmailService(settings_for(smtp_server, EMAIL_FROM_NAME="Ромашка"))
    email = compose(service)
    assert email.mime is not None
    built = message_from_bytes(email.mime, policy=default)
    assert built["From"] == f"Ромашка <{service.settings.EMAIL_FROM}>"
    assert built["To"] == "anna@example.com"
    assert built["Message-ID"] == email.message_id
    await send(service, email)
    assert smtp_server.raw[0].replace(b"\r\n", b"\n") == email.mime.replace(b"\r\n", b"\n")


def test_the_naive_date_error_says_why():
    email = OutgoingEmail("a@b.c", "s", "t", "<p>h</p>", "<m@b.c>", DATE.replace(tzinfo=None))
    with pytest.raises(ValueError) as caught:
        build_message(email, from_address="shop@b.c", from_name="Shop")
    assert str(caught.value) == "an email's date must be timezone-aware"


async def test_a_message_without_html_says_why(smtp_server):
    service = EmailService(settings_for(smtp_server))
    email = _with(compose(service), html="", mime=None)
    with pytest.raises(PermanentDeliveryError) as caught:
        await send(service, email)
    assert str(caught.value) == (
        "message not sendable: ValueError: an email needs both a text and an HTML part"
    )


async def test_the_console_log_is_the_message_as_a_reader_sees_it(caplog):
    service = EmailService(settings_for_console())
    email = _with(
        compose(service), subject="Тема", text="Текст письма", html="<p>HTML</p>", mime=None
    )
    caplog.set_level(logging.INFO, logger="app.email")
    async with service.connect() as sender:
        await sender.send(email)
    [record] = [r for r in caplog.records if r.name == "app.email"]
    assert record.getMessage() == (
        "email (console backend, not sent)\n"
        "From: Магазин <noreply@shop.test>\n"
        "To: anna@example.com\n"
        "Subject: Тема\n"
        "Date: Fri, 27 Nov 2026 14:05:09 +0000\n"
        f"Message-ID: {email.message_id}\n"
        "\n"
        "----- text/plain -----\n"
        "Текст письма\n"
        "----- text/html -----\n"
        "<p>HTML</p>"
    )


def settings_for_console():
    return load_settings(
        env_file=None,
        SECRET_KEY=secrets.token_urlsafe(48),
        EMAIL_BACKEND="console",
        EMAIL_FROM="noreply@shop.test",
        EMAIL_FROM_NAME="Магазин",
    )
