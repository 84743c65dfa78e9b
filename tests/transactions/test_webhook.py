"""POST /payments/webhook: signatures, deduplication, disorder, late payments, races."""

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.periodic import sweep
from app.services.email.outbox import OutboxMessage
from app.transactions.models import PaymentEvent
from app.transactions.schemas import PaymentEventBody
from app.transactions.webhook import SIGNATURE_HEADER, SIGNATURE_HEADER_MAX_LENGTH
from app.types.enums import TransactionStatus
from tests.conftest import client_for
from tests.transactions.helpers import (
    WEBHOOK_SECRET,
    admin_client,
    create_order,
    customer,
    event,
    history_rows,
    pay,
    provider_signature,
    signed_headers,
    stored,
)

S = TransactionStatus
WELL_FORMED_SIGNATURE = "ab" * 32  # 64 hex digits: the right shape, never the right value
START = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


async def events(app) -> int:
    async with app.state.sessionmaker() as db:
        return await db.scalar(select(func.count()).select_from(PaymentEvent))


async def test_a_signed_payment_moves_the_order_to_processing(app, client, provider):
    await customer(app, client)
    with time_machine.travel(START, tick=False) as clock:
        order = await create_order(client)
        clock.shift(timedelta(minutes=5))
        response = await pay(provider, order["id"], event_id="evt_1")
        detail = (await client.get(f"/transactions/{order['id']}")).json()
    assert (await stored(app, order["id"])).updated_at == START + timedelta(minutes=5)
    assert response.status_code == 200, response.text
    assert response.json() == {"result": "processing"}
    assert "set-cookie" not in response.headers
    assert detail["status"] == "processing"
    assert detail["history"][-1]["actor"] == "webhook"


async def test_a_payment_and_its_history_row_share_one_instant(app, client, provider):
    """On the real clock, as above: the move's row and the order's updated_at agree."""
    await customer(app, client)
    order = await create_order(client)
    await pay(provider, order["id"])
    after = await stored(app, order["id"])
    rows = await history_rows(app, order["id"])
    assert rows[-1].changed_at == after.updated_at > rows[0].changed_at


async def test_a_replayed_event_changes_nothing(app, client, provider, staff):
    await customer(app, client)
    await admin_client(app, staff)
    order = await create_order(client)
    assert (await pay(provider, order["id"], event_id="evt_same")).json()["result"] == "processing"
    assert (
        await staff.patch(f"/admin/transactions/{order['id']}", json={"status": "in_delivery"})
    ).status_code == 200
    replay = await pay(provider, order["id"], event_id="evt_same")
    assert replay.status_code == 200 and replay.json() == {"result": "duplicate"}
    assert (await stored(app, order["id"])).status == S.IN_DELIVERY
    assert len(await history_rows(app, order["id"])) == 3
    assert await events(app) == 1


async def test_a_second_payment_event_for_a_paid_order_is_ignored(app, client, provider):
    await customer(app, client)
    order = await create_order(client)
    await pay(provider, order["id"])
    second = await pay(provider, order["id"])
    assert second.json() == {"result": "ignored"}
    assert len(await history_rows(app, order["id"])) == 2


async def test_parallel_deliveries_of_one_event_apply_once(app, client, provider):
    await customer(app, client)
    order = await create_order(client)
    responses = await asyncio.gather(
        *(pay(provider, order["id"], event_id="evt_dup") for _ in range(6))
    )
    results = sorted(r.json()["result"] for r in responses)
    assert results == ["duplicate"] * 5 + ["processing"], [r.text for r in responses]
    rows = await history_rows(app, order["id"])
    assert [r.to_status for r in rows] == [S.PAYMENT_IN_PROGRESS, S.PROCESSING]


async def test_other_event_types_and_unknown_orders_are_acknowledged_without_change(
    app, client, provider
):
    await customer(app, client)
    order = await create_order(client)
    body = event(order["id"], type_="payment.refunded")
    other = await provider.post("/payments/webhook", content=body, headers=signed_headers(body))
    assert other.json() == {"result": "ignored"}
    unknown = await pay(provider, str(uuid.uuid4()))
    assert unknown.json() == {"result": "unknown_transaction"}
    assert (await stored(app, order["id"])).status == S.PAYMENT_IN_PROGRESS


async def test_each_event_is_logged_with_its_own_outcome(app, client, provider):
    """The event log (payment_event) keeps what each event did, for the provider's audit:
    writing one event's outcome leaves the others' as they were."""
    await customer(app, client)
    order = await create_order(client)
    await pay(provider, order["id"], event_id="evt_paid")
    await pay(provider, order["id"], event_id="evt_again")
    await pay(provider, str(uuid.uuid4()), event_id="evt_unknown")
    async with app.state.sessionmaker() as db:
        logged = dict((await db.execute(select(PaymentEvent.id, PaymentEvent.outcome))).all())
    assert logged == {
        "evt_paid": "processing",
        "evt_again": "ignored",
        "evt_unknown": "unknown_transaction",
    }


async def test_a_late_payment_for_an_order_the_sweep_expired_is_flagged_then(app, client, provider):
    await customer(app, client)
    with time_machine.travel(START, tick=False) as clock:
        order = await create_order(client)
        due = datetime.fromisoformat(order["payment_due_at"])
        clock.move_to(due)
        async with app.state.sessionmaker.begin() as db:
            assert (await sweep(db, app.state.settings, app.state.transactions)).expired == 1
        clock.move_to(due + timedelta(hours=1))
        response = await pay(provider, order["id"])
    assert response.json() == {"result": "late"}
    after = await stored(app, order["id"])
    assert (after.status, after.flagged) == (S.NOT_PAID_IN_TIME, True)
    assert after.updated_at == due + timedelta(hours=1)  # when it was flagged


async def test_a_payment_after_the_deadline_flags_the_order_for_refund(
    app, client, provider, staff
):
    user = await customer(app, client)
    with time_machine.travel(START, tick=False) as clock:
        await admin_client(app, staff)
        order = await create_order(client)
        clock.move_to(datetime.fromisoformat(order["payment_due_at"]) + timedelta(seconds=5))
        response = await pay(provider, order["id"])
        detail = (await client.get(f"/transactions/{order['id']}")).json()
        flagged = (await staff.get("/admin/transactions", params={"flagged": "true"})).json()
    assert response.json() == {"result": "late"}
    assert detail["status"] == "not_paid_in_time" and detail["flagged"] is True
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in detail["history"]] == [
        (None, "payment_in_progress", "user"),
        ("payment_in_progress", "not_paid_in_time", "system"),
        ("not_paid_in_time", "not_paid_in_time", "webhook"),
    ]
    assert "вернуть" in detail["history"][-1]["note"]
    due = datetime.fromisoformat(order["payment_due_at"])
    # The expiry is dated at the deadline it happened at, the payment when it came.
    assert [datetime.fromisoformat(h["changed_at"]) for h in detail["history"][1:]] == [
        due,
        due + timedelta(seconds=5),
    ]
    assert [o["id"] for o in flagged["items"]] == [order["id"]]
    async with app.state.sessionmaker() as db:
        mails = list(
            await db.scalars(select(OutboxMessage).where(OutboxMessage.template == "order_status"))
        )
    assert [(m.to_address, m.data["status"]) for m in mails] == [
        (user["email"], "not_paid_in_time")
    ]


async def test_the_webhook_and_the_deadline_racing_record_one_expiry(app, client, provider):
    await customer(app, client)
    with time_machine.travel(START, tick=False) as clock:
        order = await create_order(client)
        clock.move_to(datetime.fromisoformat(order["payment_due_at"]))

        async def sweeping():
            async with app.state.sessionmaker.begin() as db:
                return await sweep(db, app.state.settings, app.state.transactions)

        results = await asyncio.gather(pay(provider, order["id"]), sweeping(), sweeping())
    assert results[0].json()["result"] == "late"
    rows = await history_rows(app, order["id"])
    expiries = [r for r in rows if r.from_status == S.PAYMENT_IN_PROGRESS]
    assert [(r.to_status, r.actor) for r in expiries] == [(S.NOT_PAID_IN_TIME, "system")]
    assert (await stored(app, order["id"])).flagged is True
    async with app.state.sessionmaker() as db:
        count = await db.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.template == "order_status")
        )
    assert count == 1


async def test_a_payment_just_before_the_deadline_wins(app, client, provider):
    await customer(app, client)
    with time_machine.travel(START, tick=False) as clock:
        order = await create_order(client)
        clock.move_to(datetime.fromisoformat(order["payment_due_at"]) - timedelta(microseconds=1))
        assert (await pay(provider, order["id"])).json() == {"result": "processing"}
        async with app.state.sessionmaker.begin() as db:
            result = await sweep(db, app.state.settings, app.state.transactions)
    assert result.expired == 0
    assert (await stored(app, order["id"])).status == S.PROCESSING


class TestSignature:
    async def _order(self, app, client) -> str:
        await customer(app, client)
        return (await create_order(client))["id"]

    async def _refused(self, app, provider, order_id, headers, body=None):
        body = body if body is not None else event(order_id)
        response = await provider.post("/payments/webhook", content=body, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "WEBHOOK_SIGNATURE_INVALID"
        assert (await stored(app, order_id)).status == S.PAYMENT_IN_PROGRESS
        assert await events(app) == 0
        return response.json()

    async def test_no_signature(self, app, client, provider):
        order_id = await self._order(app, client)
        refused = await self._refused(app, provider, order_id, {"Content-Type": "application/json"})
        assert refused["detail"] == f"no {SIGNATURE_HEADER} header"  # says what is missing

    async def test_a_signature_with_another_secret(self, app, client, provider):
        order_id = await self._order(app, client)
        body = event(order_id)
        refused = await self._refused(
            app, provider, order_id, signed_headers(body, secret="whsec_someone_else_00"), body
        )
        assert refused["detail"] == "signature does not match"

    async def test_a_body_changed_after_signing(self, app, client, provider):
        order_id = await self._order(app, client)
        body = event(order_id)
        headers = signed_headers(body)
        tampered = body.replace(b"payment.succeeded", b"payment.succeedeD")
        refused = await self._refused(app, provider, order_id, headers, tampered)
        assert refused["detail"] == "signature does not match"

    @pytest.mark.parametrize("offset", [-301, 301, -86400])
    async def test_timestamps_outside_five_minutes(self, app, client, provider, offset):
        order_id = await self._order(app, client)
        body = event(order_id)
        # The clock stands still, on a whole second: on a slow machine a second passing
        # between signing and checking would bring 301 s back inside the window, and a
        # fraction of a second would put 300 s outside it (the header's t is whole seconds).
        with time_machine.travel(int(time.time()), tick=False):
            headers = signed_headers(body, at=time.time() + offset)
            detail = await self._refused(app, provider, order_id, headers, body)
        assert "300" in detail["detail"]

    @pytest.mark.parametrize("offset", [-300, -299, 299, 300])
    async def test_timestamps_inside_five_minutes_pass(self, app, client, provider, offset):
        order_id = await self._order(app, client)
        body = event(order_id)
        with time_machine.travel(int(time.time()), tick=False):  # as above
            headers = signed_headers(body, at=time.time() + offset)
            response = await provider.post("/payments/webhook", content=body, headers=headers)
        assert response.json() == {"result": "processing"}

    @pytest.mark.parametrize(
        "header",
        [
            "garbage",
            "t=,v1=" + WELL_FORMED_SIGNATURE,
            "v1=" + WELL_FORMED_SIGNATURE,  # no timestamp
            "t=123",  # no signature
            "t=123,v1=00",  # no well-formed signature
            "t=1e9,v1=" + WELL_FORMED_SIGNATURE,
            "t=-5,v1=" + WELL_FORMED_SIGNATURE,
            "t=" + "9" * 13 + ",v1=" + WELL_FORMED_SIGNATURE,  # longer than 12 digits
        ],
    )
    async def test_malformed_headers(self, app, client, provider, header):
        order_id = await self._order(app, client)
        refused = await self._refused(
            app, provider, order_id, {"Content-Type": "application/json", SIGNATURE_HEADER: header}
        )
        assert refused["detail"] == "expected t=<unix seconds>,v1=<hex HMAC-SHA256>"

    async def test_a_header_up_to_the_limit_is_read_and_one_longer_is_refused(
        self, app, client, provider
    ):
        order_id = await self._order(app, client)
        body = event(order_id)
        header = signed_headers(body)[SIGNATURE_HEADER] + ",x="
        longest = header + "x" * (SIGNATURE_HEADER_MAX_LENGTH - len(header))
        refused = await self._refused(
            app,
            provider,
            order_id,
            {"Content-Type": "application/json", SIGNATURE_HEADER: longest + "x"},
            body,
        )
        assert refused["detail"] == "signature header too long"
        response = await provider.post(
            "/payments/webhook",
            content=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: longest},
        )
        assert response.json() == {"result": "processing"}  # unknown items are skipped

    async def test_non_ascii_bytes_in_the_header_are_a_400_not_a_500(self, app, client, provider):
        order_id = await self._order(app, client)
        t = int(time.time())
        for header in (f"t={t},v1=".encode() + b"\xe9\xe9", f"t={t},v1=".encode() + b"\xe9" * 64):
            await self._refused(
                app,
                provider,
                order_id,
                {"Content-Type": "application/json", SIGNATURE_HEADER: header},
            )

    async def test_one_good_signature_among_several_passes(self, app, client, provider):
        """A provider rotating its secret signs with both."""
        order_id = await self._order(app, client)
        body = event(order_id)
        t = int(time.time())
        header = (
            f"t={t},v1={provider_signature('whsec_the_old_secret_0', t, body)},"
            f"v1={provider_signature(WEBHOOK_SECRET, t, body)}"
        )
        response = await provider.post(
            "/payments/webhook",
            content=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: header},
        )
        assert response.json() == {"result": "processing"}

    async def test_a_signed_but_malformed_body_is_422(self, app, client, provider):
        order_id = await self._order(app, client)
        for body in (
            b"{",
            json.dumps({"id": "evt", "type": "payment.succeeded"}).encode(),
            json.dumps({"id": "", "type": "x", "transaction_id": order_id}).encode(),
            json.dumps({"id": "e" * 256, "type": "x", "transaction_id": order_id}).encode(),
        ):
            response = await provider.post(
                "/payments/webhook", content=body, headers=signed_headers(body)
            )
            assert response.status_code == 422, (body, response.text)
            assert response.json()["code"] == "VALIDATION_ERROR"
        assert await events(app) == 0


async def test_without_a_secret_the_webhook_answers_503(make_app, client):
    app = make_app(PAYMENT_WEBHOOK_SECRET="")
    async with client_for(app) as provider:
        body = event(str(uuid.uuid4()))
        response = await provider.post(
            "/payments/webhook", content=body, headers=signed_headers(body)
        )
    assert response.status_code == 503
    assert response.json()["code"] == "PAYMENT_WEBHOOK_DISABLED"
    assert int(response.headers["Retry-After"]) > 0  # delta-seconds, as HTTP defines it


def test_a_short_secret_is_refused_at_start_up(make_settings):
    from app.core.config import ConfigurationError

    with pytest.raises(ConfigurationError, match="PAYMENT_WEBHOOK_SECRET must be at least 16"):
        make_settings(PAYMENT_WEBHOOK_SECRET="short")


def test_the_served_docs_show_the_signed_body_and_its_examples():
    """The route reads its raw body (to check the signature), so FastAPI cannot document
    it: the served schema carries it by hand, and must match the model it is parsed with."""
    import app.main

    body = app.main.app.openapi()["paths"]["/payments/webhook"]["post"]["requestBody"]
    assert body["required"] is True
    media = body["content"]["application/json"]
    assert media["schema"] == PaymentEventBody.model_json_schema()
    assert set(media["schema"]["required"]) == {"id", "type", "transaction_id"}
    assert len(media["examples"]) >= 2
    for example in media["examples"].values():
        PaymentEventBody.model_validate(example["value"])  # each example is a valid event
