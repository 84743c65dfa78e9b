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
    return make_settings(**mail_server.settings_values(), OUTBOX_POLL_SECONDS=60)


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
