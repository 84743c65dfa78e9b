"""The staff side: drafts and their checks, preview, the test send, the list and figures."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from app.newsletters import service
from app.periodic import sweep
from app.services.email.outbox import OutboxState
from tests.conftest import client_for
from tests.helpers import login
from tests.newsletters.helpers import (
    DRAFT,
    add_users,
    admin_client,
    create_draft,
    deliver_all,
    outbox_rows,
    stored_newsletter,
)

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def mail_app(make_app, make_settings, smtp_server):
    return make_app(make_settings(**smtp_server.settings_values()))


async def test_a_draft_is_checked_when_created(app, client):
    admin = await admin_client(app, client)
    refusals = {
        "an unknown field": {"html": "<p>{{ nmae }}</p>"},
        "a syntax error": {"text": "Привет, {{ name"},
        "the sandbox": {"subject": "{{ name.__class__.__mro__ }}"},
        "a method that mutates": {"html": "{{ [].append(1) }}"},
        "an expression that fails": {"html": "{{ 1 / 0 }}"},  # was a 500
        "a range over the sandbox's cap": {"text": "{% for i in range(10**9) %}{% endfor %}"},
    }
    for why, change in refusals.items():
        response = await client.post("/admin/newsletters", json={**DRAFT, **change})
        assert response.status_code == 422, why
        body = response.json()
        assert body["code"] == "NEWSLETTER_CONTENT_INVALID", why
        assert body["detail"].split(":")[0] == next(iter(change)), why  # names the part
    bounded = {
        "an empty subject": {"subject": " "},
        "a line break in the subject": {"subject": "a\nb"},
        "a NUL": {"text": "a\x00b"},
        "too long": {"html": "x" * 200_001},
        "an unknown key": {"status": "sent"},
    }
    for why, change in bounded.items():
        response = await client.post("/admin/newsletters", json={**DRAFT, **change})
        assert (response.status_code, response.json()["code"]) == (422, "VALIDATION_ERROR"), why
        [error] = response.json()["detail"]
        assert error["loc"] == ["body", next(iter(change))], why
    nul = await client.post("/admin/newsletters", json={**DRAFT, "html": "a\x00b"})
    assert nul.json()["detail"][0]["msg"] == "Value error, must not contain NUL characters"
    listed = (await client.get("/admin/newsletters")).json()
    assert listed == {"items": [], "next_cursor": None}  # nothing half-written

    now = datetime.now(UTC).replace(microsecond=0)  # the session's clock goes on
    with time_machine.travel(now, tick=False):
        draft = await create_draft(client)
    figures = {k: v for k, v in draft.items() if k not in ("id", "subject")}
    assert figures == {
        "status": "draft",
        "recipients": 0,
        "sent": 0,
        "failed": 0,
        "withdrawn": 0,
        "pending": 0,
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "sent_at": None,
        "finished_at": None,
    }
    stored = await stored_newsletter(app, draft["id"])
    assert stored.created_by == uuid.UUID(admin["id"])


async def test_merge_fields_are_escaped_in_the_html_part(mail_app, smtp_server):
    [reader] = await add_users(mail_app, 1)
    from sqlalchemy import update

    from app.users.models import User

    async with mail_app.state.sessionmaker.begin() as db:
        await db.execute(
            update(User).where(User.id == reader["id"]).values(name='<img src=x onerror="1">')
        )
    async with client_for(mail_app) as client:
        await admin_client(mail_app, client)
        await deliver_all(mail_app)
        smtp_server.messages.clear()
        draft = await create_draft(client)
        await client.post(f"/admin/newsletters/{draft['id']}/send")
    await deliver_all(mail_app)
    [message] = smtp_server.messages
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_content()
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()
    assert "<img" not in html and "&lt;img src=x" in html
    assert '<img src=x onerror="1">, для вас' in text  # plain text is not HTML


async def test_the_preview_shows_the_email_as_the_admin_would_get_it(app, client):
    admin = await admin_client(app, client)
    draft = await create_draft(client)
    response = await client.get(f"/admin/newsletters/{draft['id']}/preview")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert f"{admin['name']}, скидки недели" in response.text
    assert "/unsubscribe/" in response.text
    missing = await client.get(f"/admin/newsletters/{uuid.uuid4()}/preview")
    assert (missing.status_code, missing.json()["code"]) == (404, "NEWSLETTER_NOT_FOUND")


async def test_a_test_send_goes_to_the_admin_only_and_is_not_counted(mail_app, smtp_server):
    await add_users(mail_app, 2)
    async with client_for(mail_app) as client:
        admin = await admin_client(mail_app, client)
        await deliver_all(mail_app)
        smtp_server.messages.clear()
        smtp_server.envelopes.clear()
        draft = await create_draft(client)
        response = await client.post(f"/admin/newsletters/{draft['id']}/test")
        assert (response.status_code, response.json()) == (202, {"to": admin["email"]})
        await deliver_all(mail_app)
        [message] = smtp_server.messages
        assert smtp_server.envelopes[0].rcpt_tos == [admin["email"]]
        [row] = await outbox_rows(mail_app, draft["id"])
        assert row.user_id == uuid.UUID(admin["id"])  # support sees what the admin got
        assert message["Subject"] == f"[Тест] {admin['name']}, скидки недели"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        figures = (await client.get(f"/admin/newsletters/{draft['id']}")).json()
        assert (figures["status"], figures["recipients"], figures["sent"]) == ("draft", 0, 0)
        # Still a draft: it can be sent for real.
        sent = await client.post(f"/admin/newsletters/{draft['id']}/send")
        assert sent.json()["recipients"] == 2


async def test_figures_while_sending_and_after_the_sweep_stores_them(mail_app, smtp_server):
    await add_users(mail_app, 3)
    async with client_for(mail_app) as client:
        with time_machine.travel(START, tick=False) as clock:
            admin = await admin_client(mail_app, client)
            await deliver_all(mail_app)
            draft = await create_draft(client)
            await client.post(f"/admin/newsletters/{draft['id']}/send")
            queued = (await client.get(f"/admin/newsletters/{draft['id']}")).json()
            assert queued["status"] == "sending"
            assert (queued["recipients"], queued["pending"], queued["sent"]) == (3, 3, 0)
            assert queued["sent_at"] == "2026-03-01T09:00:00Z" and queued["finished_at"] is None

            smtp_server.fail_next(1, "550 5.1.1 No such mailbox", command="RCPT")
            clock.move_to(START + timedelta(seconds=5))
            await deliver_all(mail_app)
            done = (await client.get(f"/admin/newsletters/{draft['id']}")).json()
            assert (done["status"], done["sent"], done["failed"], done["pending"]) == (
                "sent",
                2,
                1,
                0,
            )
            assert done["finished_at"] is None  # stored by the sweep

            async with mail_app.state.sessionmaker.begin() as db:
                await sweep(db, mail_app.state.settings)
            # The outbox rows are purged after OUTBOX_KEEP_DAYS; the figures stay.
            clock.move_to(START + timedelta(days=31))
            async with mail_app.state.sessionmaker.begin() as db:
                await sweep(db, mail_app.state.settings)
            assert await outbox_rows(mail_app, draft["id"]) == []
            await login(client, admin["email"])  # the session ended after 7 days
            kept = (await client.get(f"/admin/newsletters/{draft['id']}")).json()
    assert (kept["status"], kept["recipients"], kept["sent"], kept["failed"]) == ("sent", 3, 2, 1)
    assert kept["finished_at"] == "2026-03-01T09:00:05Z"


async def test_a_newsletter_with_no_recipients_is_sent_at_once(app, client):
    await add_users(app, 1, opt_in=False)
    await admin_client(app, client)
    draft = await create_draft(client)
    assert (await client.post(f"/admin/newsletters/{draft['id']}/send")).json()["recipients"] == 0
    read = (await client.get(f"/admin/newsletters/{draft['id']}")).json()
    assert (read["status"], read["recipients"]) == ("sent", 0)
    assert read["finished_at"] is not None
    # Stored so, with no sweep to wait for.
    assert (await stored_newsletter(app, draft["id"])).status == "sent"


async def test_the_list_is_newest_first_in_pages(app, client):
    made = []
    with time_machine.travel(START, tick=False) as clock:
        await admin_client(app, client)
        for i in range(5):
            clock.move_to(START + timedelta(minutes=i // 2))  # two pairs share an instant
            made.append(((await create_draft(client, subject=f"Выпуск {i}"))["id"], i // 2))
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/admin/newsletters", params=params)).json()
            seen += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        # Newest first; drafts made in the same instant by id, descending (keyset order).
        expected = sorted(made, key=lambda m: (m[1], uuid.UUID(m[0])), reverse=True)
        assert seen == [m[0] for m in expected]
        bad = await client.get("/admin/newsletters", params={"cursor": "nonsense"})
        assert (bad.status_code, bad.json()["code"]) == (400, "INVALID_CURSOR")


async def test_deactivating_a_user_withdraws_their_queued_newsletters(app, client):
    [reader] = await add_users(app, 1)
    await admin_client(app, client)
    draft = await create_draft(client)
    await client.post(f"/admin/newsletters/{draft['id']}/send")
    response = await client.patch(f"/admin/users/{reader['id']}", json={"is_active": False})
    assert response.status_code == 200
    [row] = await outbox_rows(app, draft["id"])
    assert row.state == OutboxState.WITHDRAWN and row.data == {}
    assert row.last_error == "withdrawn: the recipient no longer receives newsletters"
    async with app.state.sessionmaker() as db:
        figures = await service.figures(db, [await service.get(db, uuid.UUID(draft["id"]))])
    assert figures[uuid.UUID(draft["id"])].withdrawn == 1


async def test_campaigns_at_once_keep_their_own_figures_and_finish_times(mail_app, smtp_server):
    """Two campaigns in flight and a draft: each one's figures count its own bulk rows
    only (not the other's, not its test sends), and the sweep finishes the one whose
    last email left, dated by that email, while the other waits for its retry."""
    await add_users(mail_app, 2)
    newsletter_ids = {}
    async with client_for(mail_app) as client:
        with time_machine.travel(START, tick=False) as clock:
            await admin_client(mail_app, client)
            await deliver_all(mail_app)  # the admin's confirmation code
            # Made in this order: the one left waiting is scanned first by the sweep.
            for name in ("waiting", "done", "draft"):
                newsletter_ids[name] = (await create_draft(client, subject=name))["id"]
            waiting, done, draft = (
                f"/admin/newsletters/{newsletter_ids[n]}" for n in newsletter_ids
            )

            await client.post(f"{done}/send")
            smtp_server.fail_next(1, "550 5.1.1 No such mailbox", command="RCPT")
            clock.move_to(START + timedelta(seconds=5))
            await deliver_all(mail_app)
            await client.post(f"{done}/test")  # delivered later; neither a figure nor the end
            clock.move_to(START + timedelta(seconds=10))
            await deliver_all(mail_app)

            await client.post(f"{waiting}/send")
            smtp_server.fail_next(1, "451 4.3.0 Try again later", command="RCPT")
            clock.move_to(START + timedelta(seconds=30))
            await deliver_all(mail_app)

            def figures(item):
                keys = ("status", "recipients", "sent", "failed", "withdrawn", "pending")
                return tuple(item[k] for k in keys)

            listed = (await client.get("/admin/newsletters")).json()["items"]
            by_id = {item["id"]: figures(item) for item in listed}
            assert by_id == {
                newsletter_ids["waiting"]: ("sending", 2, 1, 0, 0, 1),
                newsletter_ids["done"]: ("sent", 2, 1, 1, 0, 0),
                newsletter_ids["draft"]: ("draft", 0, 0, 0, 0, 0),
            }

            clock.move_to(START + timedelta(minutes=1))
            async with mail_app.state.sessionmaker.begin() as db:
                assert (await sweep(db, mail_app.state.settings)).newsletters_finished == 1
            stored = {n: await stored_newsletter(mail_app, i) for n, i in newsletter_ids.items()}
            assert stored["done"].status == "sent"
            assert (stored["done"].delivered, stored["done"].failed) == (1, 1)
            assert stored["done"].finished_at == START + timedelta(seconds=5)
            assert (stored["waiting"].status, stored["waiting"].finished_at) == ("sending", None)

            # The recipient still waiting unsubscribes: the campaign is over.
            [pending] = [
                row
                for row in await outbox_rows(mail_app, newsletter_ids["waiting"])
                if row.state == OutboxState.PENDING
            ]
            async with mail_app.state.sessionmaker.begin() as db:
                await service.unsubscribe(db, pending.user_id)
            clock.move_to(START + timedelta(minutes=2))
            async with mail_app.state.sessionmaker.begin() as db:
                assert (await sweep(db, mail_app.state.settings)).newsletters_finished == 1
            kept = (await client.get(waiting)).json()
            assert figures(kept) == ("sent", 2, 1, 0, 1, 0)
            assert kept["finished_at"] == "2026-03-01T09:00:30Z"
            assert (await client.get(draft)).json()["status"] == "draft"
    # Each campaign's emails carried its own content (the composer caches it per campaign).
    # One of each was refused (550, 451 then withdrawn); the admin's code is not counted.
    subjects = sorted(m["Subject"] for m in smtp_server.messages if "почты" not in m["Subject"])
    assert subjects == ["[Тест] done", "done", "waiting"]
