"""Newsletters end to end against a real SMTP server (aiosmtpd): who receives, the
unsubscribe headers and link, withdrawal, figures, and the staff workflow's refusals."""

import base64
import hashlib
import hmac
import re
import string
import uuid
from html import escape
from urllib.parse import urlsplit

import pytest

from app.newsletters import service
from app.newsletters.router import UnsubscribeLinkInvalid
from app.newsletters.tokens import UnsubscribeTokens
from app.periodic import sweep
from app.services.email.outbox import OutboxState
from app.users.models import User
from tests.conftest import client_for
from tests.helpers import register, signed_in
from tests.newsletters.helpers import (
    add_users,
    admin_client,
    create_draft,
    deliver_all,
    outbox_rows,
    stored_newsletter,
    verify,
)


@pytest.fixture
def mail_app(make_app, make_settings, smtp_server):
    return make_app(make_settings(**smtp_server.settings_values()))


def alternative_parts(message):
    parts = [p for p in message.walk() if p.get_content_maintype() == "text"]
    text = next(p for p in parts if p.get_content_type() == "text/plain").get_content()
    html = next(p for p in parts if p.get_content_type() == "text/html").get_content()
    return text, html


async def test_only_active_confirmed_opted_in_users_receive(mail_app, smtp_server):
    [reader] = await add_users(mail_app, 1)
    await add_users(mail_app, 1, opt_in=False, prefix="no-opt-in")
    await add_users(mail_app, 1, verified=False, prefix="unconfirmed")
    await add_users(mail_app, 1, active=False, prefix="inactive")
    async with client_for(mail_app) as client:
        admin = await admin_client(mail_app, client)  # unconfirmed: not a recipient either
        await deliver_all(mail_app)  # the admin's confirmation code
        smtp_server.messages.clear()
        smtp_server.envelopes.clear()
        draft = await create_draft(client)
        response = await client.post(f"/admin/newsletters/{draft['id']}/send")
        assert response.status_code == 202, response.text
        assert response.json() == {"id": draft["id"], "recipients": 1}
        await deliver_all(mail_app)

        [message] = smtp_server.messages
        assert smtp_server.envelopes[0].rcpt_tos == [reader["email"]]
        assert message["Subject"] == f"{reader['name']}, скидки недели"
        text, html = alternative_parts(message)
        assert f"{reader['name']}, для вас −20%." in text
        assert re.search(rf"<p[^>]*>{reader['name']}, для вас −20%.</p>", html)
        assert 'style="' in html  # framed by the product layout, CSS inlined

        figures = (await client.get(f"/admin/newsletters/{draft['id']}")).json()
    assert figures["recipients"] == 1
    assert (figures["status"], figures["sent"], figures["failed"]) == ("sent", 1, 0)
    assert admin["email"] not in smtp_server.envelopes[0].rcpt_tos


async def test_each_newsletter_carries_one_click_unsubscribe_and_codes_do_not(
    mail_app, smtp_server
):
    [reader] = await add_users(mail_app, 1)
    async with client_for(mail_app) as client:
        await admin_client(mail_app, client)  # its registration queues a confirmation code
        draft = await create_draft(client)
        await client.post(f"/admin/newsletters/{draft['id']}/send")
        await deliver_all(mail_app)

    received = zip(smtp_server.envelopes, smtp_server.messages, strict=True)
    by_recipient = {e.rcpt_tos[0]: m for e, m in received}
    newsletter = by_recipient.pop(reader["email"])
    [confirmation] = by_recipient.values()
    assert confirmation["List-Unsubscribe"] is None
    assert confirmation["List-Unsubscribe-Post"] is None

    assert newsletter["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Folded across lines when long (RFC 5322), as any header may be.
    link = re.fullmatch(r"<(\S+)>", newsletter["List-Unsubscribe"].strip()).group(1)
    assert link.startswith("http://localhost:8000/unsubscribe/")
    text, html = alternative_parts(newsletter)
    assert link in text  # the footer of both parts
    assert f'href="{link}"' in html
    token = urlsplit(link).path.rsplit("/", 1)[1]
    assert str(reader["id"]) not in link and reader["email"] not in link
    assert mail_app.state.newsletters.tokens.read(token) == reader["id"]


async def test_one_click_unsubscribe_needs_no_cookie_and_no_csrf_headers(mail_app, smtp_server):
    [reader, other] = await add_users(mail_app, 2)
    link = mail_app.state.newsletters.unsubscribe_url(reader["id"])
    path = urlsplit(link).path
    async with client_for(mail_app) as anonymous:
        # What a mailbox provider sends (RFC 8058): a form body, nothing else.
        for _ in range(2):  # idempotent
            response = await anonymous.post(
                path,
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code == 200, response.text
            assert response.json() == {"status": "unsubscribed"}
            assert "set-cookie" not in response.headers

        async with client_for(mail_app) as client:
            await admin_client(mail_app, client)
            draft = await create_draft(client)
            sent = await client.post(f"/admin/newsletters/{draft['id']}/send")
        assert sent.json()["recipients"] == 1
    await deliver_all(mail_app)
    recipients = [e.rcpt_tos for e in smtp_server.envelopes]
    assert [other["email"]] in recipients and [reader["email"]] not in recipients


async def test_the_unsubscribe_page_asks_first_and_a_forged_link_is_refused(app, client):
    [reader] = await add_users(app, 1)
    path = urlsplit(app.state.newsletters.unsubscribe_url(reader["id"])).path
    html = {"Accept": "text/html"}

    page = await client.get(path, headers=html)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Отписаться" in page.text and '<form method="post">' in page.text
    assert await opted_in(app, reader["id"]) is True  # opening the page changes nothing

    done = await client.post(path, headers=html, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert "Вы отписались" in done.text
    assert await opted_in(app, reader["id"]) is False
    for response in (page, done):
        assert response.headers["referrer-policy"] == "no-referrer"  # the token is in the URL
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-security-policy"].startswith("default-src 'none';")

    token = path.rsplit("/", 1)[1]
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    forged = app.state.newsletters.tokens.issue(uuid.uuid4())[:20] + token[20:]
    for bad in (altered, forged, "x" * 43, "short"):
        for method in ("get", "post"):
            response = await client.request(method, f"/unsubscribe/{bad}")
            assert response.status_code == 404, (bad, method)
            assert response.json()["code"] == "UNSUBSCRIBE_LINK_INVALID"
            assert response.json()["detail"] == UnsubscribeLinkInvalid.message
        page = await client.get(f"/unsubscribe/{bad}", headers=html)
        assert page.status_code == 404
        assert "<title>Ссылка недействительна</title>" in page.text
        assert escape(UnsubscribeLinkInvalid.message_ru) in page.text
    too_long = await client.post("/unsubscribe/" + "a" * 65)
    assert too_long.status_code == 422


async def test_unsubscribe_answers_json_without_an_accept_header_and_for_a_gone_account(
    app, client
):
    [reader] = await add_users(app, 1)
    newsletters = app.state.newsletters
    for user_id in (reader["id"], uuid.uuid4()):  # the second: an account deleted since
        request = client.build_request("POST", urlsplit(newsletters.unsubscribe_url(user_id)).path)
        del request.headers["accept"]
        response = await client.send(request)
        assert (response.status_code, response.json()) == (200, {"status": "unsubscribed"})
    assert await opted_in(app, reader["id"]) is False


async def opted_in(app, user_id) -> bool:
    async with app.state.sessionmaker() as db:
        return (await db.get(User, user_id)).newsletter_opt_in


async def test_unsubscribing_withdraws_what_is_queued_but_not_sent(mail_app, smtp_server):
    readers = await add_users(mail_app, 3)
    async with client_for(mail_app) as client:
        await admin_client(mail_app, client)
        draft = await create_draft(client)
        await client.post(f"/admin/newsletters/{draft['id']}/send")
        await deliver_all(mail_app)
        smtp_server.messages.clear()
        smtp_server.envelopes.clear()

        second = await create_draft(client, subject="Вторая рассылка")
        await client.post(f"/admin/newsletters/{second['id']}/send")
        async with client_for(mail_app) as anonymous:
            path = urlsplit(mail_app.state.newsletters.unsubscribe_url(readers[0]["id"])).path
            assert (await anonymous.post(path)).status_code == 200
        await deliver_all(mail_app)
        figures = (await client.get(f"/admin/newsletters/{second['id']}")).json()

        first = (await client.get(f"/admin/newsletters/{draft['id']}")).json()
    assert (first["sent"], first["withdrawn"]) == (3, 0)  # what was sent stays sent
    recipients = sorted(e.rcpt_tos[0] for e in smtp_server.envelopes)
    assert recipients == sorted(r["email"] for r in readers[1:])
    assert (figures["recipients"], figures["sent"], figures["withdrawn"]) == (3, 2, 1)
    assert figures["status"] == "sent" and figures["pending"] == 0
    states = {r.user_id: r.state for r in await outbox_rows(mail_app, second["id"])}
    assert states[readers[0]["id"]] == OutboxState.WITHDRAWN
    async with mail_app.state.sessionmaker.begin() as db:  # both campaigns are over
        assert (await sweep(db, mail_app.state.settings)).newsletters_finished == 2


async def test_a_row_withdrawn_while_a_dispatcher_holds_it_is_not_sent(mail_app, smtp_server):
    """The dispatcher claimed the batch, then two recipients unsubscribed: not sent."""
    readers = await add_users(mail_app, 3)
    async with client_for(mail_app) as client:
        await admin_client(mail_app, client)
        await deliver_all(mail_app)  # the admin's confirmation code
        smtp_server.messages.clear()
        smtp_server.envelopes.clear()
        draft = await create_draft(client)
        await client.post(f"/admin/newsletters/{draft['id']}/send")
    dispatcher = mail_app.state.dispatcher

    original_contents = dispatcher._contents

    async def unsubscribe_after_the_claim(rows):
        async with mail_app.state.sessionmaker.begin() as db:
            await service.unsubscribe(db, readers[0]["id"])
            await service.unsubscribe(db, readers[2]["id"])
        return await original_contents(rows)

    dispatcher._contents = unsubscribe_after_the_claim
    result = await dispatcher.run_once()
    assert (result.claimed, result.sent, result.withdrawn) == (3, 1, 2)
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [[readers[1]["email"]]]


async def test_turning_the_opt_in_off_in_the_profile_withdraws_too(mail_app, smtp_server):
    async with client_for(mail_app) as reader_client:
        reader = await signed_in(reader_client, newsletter_opt_in=True)
        assert (await reader_client.get("/users/me")).json()["newsletter_opt_in"] is True
        await verify(mail_app, reader["email"])
        async with client_for(mail_app) as client:
            await admin_client(mail_app, client)
            draft = await create_draft(client)
            queued = await client.post(f"/admin/newsletters/{draft['id']}/send")
            assert queued.json()["recipients"] == 1
        off = await reader_client.patch("/users/me", json={"newsletter_opt_in": False})
        assert off.status_code == 200 and off.json()["newsletter_opt_in"] is False
    smtp_server.messages.clear()
    await deliver_all(mail_app)
    [row] = await outbox_rows(mail_app, draft["id"])
    assert row.state == OutboxState.WITHDRAWN
    assert all(m["Subject"] != f"{reader['name']}, скидки недели" for m in smtp_server.messages)


async def test_registration_leaves_newsletters_off_unless_asked(client):
    assert (await signed_in(client))["newsletter_opt_in"] is False
    asked = await register(client, newsletter_opt_in=True)
    assert asked["newsletter_opt_in"] is True


async def test_sending_twice_is_a_409_and_nothing_is_queued_twice(app, client):
    await add_users(app, 3)
    await admin_client(app, client)
    draft = await create_draft(client)
    first = await client.post(f"/admin/newsletters/{draft['id']}/send")
    assert first.status_code == 202
    again = await client.post(f"/admin/newsletters/{draft['id']}/send")
    assert (again.status_code, again.json()["code"]) == (409, "NEWSLETTER_ALREADY_SENT")
    assert len(await outbox_rows(app, draft["id"])) == 3
    missing = await client.post(f"/admin/newsletters/{uuid.uuid4()}/send")
    assert (missing.status_code, missing.json()["code"]) == (404, "NEWSLETTER_NOT_FOUND")


async def test_a_plain_user_gets_403_on_every_newsletter_route(app, client):
    async with client_for(app) as staff:
        await admin_client(app, staff)
        draft = await create_draft(staff)
    await signed_in(client)
    base = f"/admin/newsletters/{draft['id']}"
    routes = [
        ("post", "/admin/newsletters"),
        ("get", "/admin/newsletters"),
        ("get", base),
        ("get", f"{base}/preview"),
        ("post", f"{base}/test"),
        ("post", f"{base}/send"),
    ]
    for method, path in routes:
        response = await client.request(
            method, path, json={"subject": "x", "html": "x", "text": "x"}
        )
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "ADMIN_ROLE_REQUIRED"
    async with client_for(app) as anonymous:
        for method, path in routes:
            assert (await anonymous.request(method, path)).status_code == 401, (method, path)
    assert await outbox_rows(app, draft["id"]) == []


async def test_a_campaign_is_queued_in_batches_each_recipient_once(app, monkeypatch):
    """`send` pages through the recipients by id, QUEUE_BATCH at a time: every recipient
    gets one row, addressed and greeted as themselves, and the progress callback sees the
    running count after each batch."""
    monkeypatch.setattr(service, "QUEUE_BATCH", 2)
    readers = await add_users(app, 5)
    await add_users(app, 2, opt_in=False, prefix="no-opt-in")
    newsletters = app.state.newsletters
    async with app.state.sessionmaker.begin() as db:
        draft = await newsletters.create(
            db, author=None, subject="{{ name }}", html="<p>{{ name }}</p>", text="{{ name }}"
        )
    progress: list[int] = []
    async with app.state.sessionmaker.begin() as db:
        queued = await newsletters.send(db, draft.id, progress.append)
    assert queued == 5
    assert progress == [2, 4, 5]
    rows = await outbox_rows(app, draft.id)
    assert sorted(r.user_id for r in rows) == sorted(r["id"] for r in readers)
    assert {(r.state, r.attempts, r.template) for r in rows} == {
        (OutboxState.PENDING, 0, "newsletter")
    }
    for row in rows:
        reader = next(r for r in readers if r["id"] == row.user_id)
        assert row.to_address == reader["email"]
        assert row.data == {
            "name": reader["name"],
            "unsubscribe_url": newsletters.unsubscribe_url(reader["id"]),
        }
    stored = await stored_newsletter(app, draft.id)
    assert (stored.status, stored.recipients, stored.finished_at) == ("sending", 5, None)


def test_unsubscribe_tokens_follow_the_documented_scheme():
    """Links already in mailboxes must keep working across releases: the token is
    base64url(user id + HMAC-SHA256(key, user id)[:16]) with the key derived from
    SECRET_KEY for this purpose, written here from the module's docstring, not its code."""
    secret = "тестовый секрет"
    user_id = uuid.UUID("0b8c8f4e-3c1d-4d8e-9a55-6f1e2d3c4b5a")
    key = hmac.new(secret.encode(), b"newsletter-unsubscribe", hashlib.sha256).digest()
    mac = hmac.new(key, user_id.bytes, hashlib.sha256).digest()[:16]
    expected = base64.urlsafe_b64encode(user_id.bytes + mac).decode().rstrip("=")
    tokens = UnsubscribeTokens(secret)
    assert tokens.issue(user_id) == expected
    assert tokens.read(expected) == user_id
    assert UnsubscribeTokens("another secret").read(expected) is None


def test_only_the_canonical_spelling_of_a_token_is_read():
    """The last of 43 base64 characters carries 4 bits and 2 unused ones: a look-alike
    spelling decodes to the same bytes, and is refused all the same."""
    tokens = UnsubscribeTokens("тестовый секрет")
    token = tokens.issue(uuid.uuid4())
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    look_alike = token[:-1] + alphabet[alphabet.index(token[-1]) + 1]
    assert base64.urlsafe_b64decode(look_alike + "=") == base64.urlsafe_b64decode(token + "=")
    assert tokens.read(look_alike) is None


def test_unsubscribe_links_are_built_on_the_public_address(make_app):
    app = make_app(PUBLIC_BASE_URL="https://shop.example.com/")  # the slash is not doubled
    user_id = uuid.uuid4()
    link = app.state.newsletters.unsubscribe_url(user_id)
    token = app.state.newsletters.tokens.issue(user_id)
    assert link == f"https://shop.example.com/unsubscribe/{token}"
