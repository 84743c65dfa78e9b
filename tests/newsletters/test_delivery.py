"""A campaign of 2 000 recipients through the dispatcher loop the app runs, with the SMTP
server down for its first seconds and then refusing some messages for a while: everyone
receives the newsletter exactly once."""

import asyncio
import time
from collections import Counter

from app.services.email.outbox import OutboxState
from tests.conftest import client_for
from tests.newsletters.helpers import (
    add_users,
    admin_client,
    create_draft,
    deliver_all,
    outbox_rows,
)
from tests.smtp import SMTPTestServer

RECIPIENTS = 2000


async def test_two_thousand_recipients_each_receive_it_exactly_once_despite_smtp_failures(
    make_app, make_settings
):
    server = SMTPTestServer()
    server.start()
    try:
        # Composed in a worker process, as the service does by default.
        app = make_app(
            make_settings(
                **server.settings_values(), OUTBOX_POLL_SECONDS=1, OUTBOX_COMPOSE_PROCESSES=1
            )
        )
        readers = await add_users(app, RECIPIENTS)
        async with client_for(app) as client:
            await admin_client(app, client)
            await deliver_all(app)  # the admin's confirmation code
            server.messages.clear()
            server.envelopes.clear()
            draft = await create_draft(client, subject="Большая рассылка")
            server.stop()  # down before the first newsletter is tried
            started = time.monotonic()
            response = await client.post(f"/admin/newsletters/{draft['id']}/send")
            queued_in = time.monotonic() - started
            assert response.json()["recipients"] == RECIPIENTS
        assert queued_in < 5, queued_in  # 10 000 in under 2 s is the bench's figure

        stop = asyncio.Event()
        loop = asyncio.create_task(app.state.dispatcher.run_forever(stop))
        try:
            await asyncio.sleep(2.5)  # every first attempt finds the server down
            assert not server.messages
            server.fail_next(30, "451 4.3.0 Try again later")  # then a wobble
            server.start()
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                rows = await outbox_rows(app, draft["id"])
                if all(r.state != OutboxState.PENDING for r in rows):
                    break
                await asyncio.sleep(0.5)
        finally:
            stop.set()
            await loop
    finally:
        server.stop()

    assert all(r.state == OutboxState.SENT for r in rows), Counter(r.state for r in rows)
    assert max(r.attempts for r in rows) >= 2  # the failures were real
    got = Counter(e.rcpt_tos[0] for e in server.envelopes)
    assert got == Counter({r["email"]: 1 for r in readers})  # everyone, once
