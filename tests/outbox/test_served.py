"""The served app (uvicorn app.main:app, as `make run` starts it) runs the dispatcher
from its lifespan and wakes it when a request queues email."""

import time

import httpx
import pytest

from tests.helpers import new_user_data
from tests.smtp import SMTPTestServer


@pytest.fixture
def mail_server():
    server = SMTPTestServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def live_server_settings(make_settings, mail_server):
    # A one-minute poll: only the wake-up can deliver within the test's few seconds.
    # Composing in a worker process, as the served app does by default.
    return make_settings(
        **mail_server.settings_values(), OUTBOX_POLL_SECONDS=60, OUTBOX_COMPOSE_PROCESSES=1
    )


def test_registration_email_leaves_at_once(live_server, mail_server):
    data = new_user_data()
    with httpx.Client(base_url=live_server.origin) as client:
        started = time.monotonic()
        response = client.post("/auth/register", json=data)
        assert response.status_code == 201, response.text
        while not mail_server.messages and time.monotonic() - started < 20:
            time.sleep(0.02)
    assert mail_server.messages, "no email within 20 s (the poll is 60 s)"
    assert time.monotonic() - started < 20  # the poll would take 60 s
    assert mail_server.envelopes[0].rcpt_tos == [data["email"]]


@pytest.fixture
def console_settings(make_settings):
    return make_settings(EMAIL_BACKEND="console", OUTBOX_POLL_SECONDS=60)


def test_the_console_backend_shows_the_code_in_the_served_apps_log(
    console_settings, tmp_path_factory
):
    """`make run` uses the console backend by default: its log must show the email."""
    from tests.server import serve

    data = new_user_data()
    with serve(console_settings, tmp_path_factory.mktemp("console")) as served:
        with httpx.Client(base_url=served.base) as client:
            assert client.post("/auth/register", json=data).status_code == 201
        started = time.monotonic()
        while time.monotonic() - started < 20:
            log = served.log.read_text(errors="replace")
            if "console backend, not sent" in log:
                break
            time.sleep(0.05)
    assert "console backend, not sent" in log
    assert f"To: {data['email']}" in log
