"""More edges of the SMTP sender and the renderer: the name the sender gives in EHLO, the
QUIT that ends a batch, a session refused with exactly 500 or 600, an address ending in
`@`, and the renderer's refusals and text part, down to their exact words."""

import logging
import socket

import pytest

from app.services.email.render import TemplateRenderer, UnknownTemplate, ru_plural
from app.services.email.samples import SAMPLES
from app.services.email.sender import PermanentDeliveryError, ServerUnavailable
from app.services.email.service import EmailService
from tests.services.email.helpers import templates_with
from tests.services.email.test_smtp_sender import compose, send
from tests.smtp import settings_for

# -- the EHLO name ------------------------------------------------------------------------


async def test_the_sender_introduces_itself_by_the_machines_host_name(smtp_server):
    """Not the FQDN the backend would look up in DNS (blocking the event loop); on this
    kind of machine `getfqdn()` is often just "localhost", which says nothing in a log."""
    service = EmailService(settings_for(smtp_server))
    await send(service, compose(service), compose(service, to="boris@example.com"))
    assert smtp_server.helo_names == [socket.gethostname()] * 2
    assert smtp_server.connections == 1


@pytest.mark.parametrize(
    ("host_name", "introduced_as"),
    [("shop-worker-7", "shop-worker-7"), ("", "localhost")],
)
async def test_a_machine_without_a_host_name_introduces_itself_as_localhost(
    smtp_server, monkeypatch, host_name, introduced_as
):
    # The host's name is the environment's, not the app's: the only way to vary it here.
    monkeypatch.setattr(socket, "gethostname", lambda: host_name)
    service = EmailService(settings_for(smtp_server))
    await send(service, compose(service))
    assert smtp_server.helo_names == [introduced_as]
    assert len(smtp_server.messages) == 1


# -- QUIT ---------------------------------------------------------------------------------


async def test_a_batch_ends_with_quit(smtp_server):
    service = EmailService(settings_for(smtp_server))
    await send(service, compose(service), compose(service, to="boris@example.com"))
    assert smtp_server.quits == 1
    await send(service)  # a batch that sent nothing never connected: nothing to quit
    assert (smtp_server.connections, smtp_server.quits) == (1, 1)


async def test_a_refused_quit_is_a_debug_line_and_the_batch_stands(smtp_server, caplog):
    """The messages were handed over already: a QUIT the server refuses loses nothing."""
    service = EmailService(settings_for(smtp_server))
    smtp_server.fail_next(1, "451 4.3.0 Not now", command="QUIT")
    caplog.set_level(logging.DEBUG, logger="app.email")
    await send(service, compose(service))  # raises nothing
    assert len(smtp_server.messages) == 1 and smtp_server.quits == 1
    [record] = [r for r in caplog.records if r.name == "app.email"]
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == (
        "SMTP QUIT failed: SMTPResponseException: (451, '4.3.0 Not now')"
    )


# -- a session refused with exactly 500 or 600 ----------------------------------------------


@pytest.mark.parametrize(
    ("reply", "logged"), [("500 5.0.0 Refused", True), ("600 6.0.0 Odd", False)]
)
async def test_a_sender_refused_with_500_is_logged_for_the_operator_and_600_is_not(
    smtp_server, caplog, reply, logged
):
    service = EmailService(settings_for(smtp_server))
    smtp_server.fail_next(1, reply, command="MAIL")
    caplog.set_level(logging.DEBUG, logger="app.email")
    with pytest.raises(ServerUnavailable) as caught:
        await send(service, compose(service))
    where = f"127.0.0.1:{smtp_server.port}"
    code, text = reply.split(" ", 1)
    assert str(caught.value) == (
        f"SMTP {where} refused us: SMTPSenderRefused: ({code}, '{text}', '{service.settings.EMAIL_FROM}')"
    )
    errors = [r for r in caplog.records if r.name == "app.email" and r.levelno == logging.ERROR]
    assert len(errors) == (1 if logged else 0)
    assert smtp_server.messages == []


# -- addresses ----------------------------------------------------------------------------


async def test_an_address_ending_in_an_at_sign_is_refused(smtp_server):
    service = EmailService(settings_for(smtp_server))
    to = "anna@example.com@"
    with pytest.raises(PermanentDeliveryError) as caught:
        await send(service, compose(service, to=to))
    assert str(caught.value) == f"not a single email address: {to!r}"
    assert smtp_server.connections == 0


# -- the renderer -------------------------------------------------------------------------


# Built for each test (a few ms), not once per module: mutation testing (`make mutate`)
# runs a mutant of the constructor only against the tests that called it.
@pytest.fixture
def renderer() -> TemplateRenderer:
    return TemplateRenderer(public_base_url="https://shop.example")


def test_an_unknown_locale_names_the_ones_there_are(renderer):
    with pytest.raises(ValueError) as caught:
        renderer.render("confirmation_code", "de", SAMPLES["confirmation_code"])
    assert str(caught.value) == "unknown email locale 'de': use one of ru, en"


def test_an_unknown_template_is_named_in_the_error(renderer):
    with pytest.raises(UnknownTemplate) as caught:
        renderer.render("no_such_email", "ru", {})
    assert str(caught.value) == "no_such_email"


@pytest.mark.parametrize(("number", "word"), [(112, "минут"), (113, "минут"), (102, "минуты")])
def test_russian_plurals_past_one_hundred(number, word):
    assert ru_plural(number, "минуту", "минуты", "минут") == word


def test_a_template_that_sets_no_subject_is_refused_by_name(tmp_path):
    directory = templates_with(tmp_path, "no_subject", "Hello\n", "<p>Hello</p>\n")
    renderer = TemplateRenderer(directory, public_base_url="https://shop.example")
    with pytest.raises(RuntimeError) as caught:
        renderer.render("no_subject", "en", {})
    assert str(caught.value) == "en/no_subject.txt sets no subject"


def test_the_text_part_ends_with_exactly_one_line_break(tmp_path):
    directory = templates_with(
        tmp_path,
        "plain",
        "{% set subject = 'Hi' %}\n\n  Hello, {{ name }}.\n\n\n",
        "<p>Hello, {{ name }}.</p>\n",
    )
    renderer = TemplateRenderer(directory, public_base_url="https://shop.example")
    email = renderer.render("plain", "en", {"name": "Anna"})
    assert (email.subject, email.text) == ("Hi", "Hello, Anna.\n")


def test_a_file_starting_with_an_underscore_is_a_partial_not_an_email(tmp_path):
    directory = templates_with(tmp_path, "_footer", "-- \n", "<p>--</p>\n")
    renderer = TemplateRenderer(directory, public_base_url="https://shop.example")
    assert "_footer" not in renderer.names()
    with pytest.raises(UnknownTemplate):
        renderer.render("_footer", "en", {})
