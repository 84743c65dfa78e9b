"""The customer's side: creating, listing and reading orders."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from app.transactions.idempotency import fingerprint
from app.transactions.models import Transaction, TransactionIdempotencyKey
from app.transactions.schemas import TransactionCreate
from app.types.enums import TRANSACTION_STATUS_LABELS, TransactionStatus
from tests.conftest import client_for
from tests.transactions.helpers import ORDER, create_order, customer, stored

# Ahead of the wall clock (sessions made now must still be valid then), in whole seconds.
START = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


async def count_orders(app) -> int:
    async with app.state.sessionmaker() as db:
        return await db.scalar(select(func.count()).select_from(Transaction))


async def test_a_confirmed_user_creates_an_order_awaiting_payment(app, client):
    user = await customer(app, client)
    with time_machine.travel(START, tick=False):
        response = await client.post("/transactions", json=ORDER)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["amount"] == 249900 and order["currency"] == "RUB"
    assert order["description"] == ORDER["description"]
    assert order["status"] == "payment_in_progress"
    assert order["status_label"] == "В процессе оплаты"
    assert order["flagged"] is False
    assert datetime.fromisoformat(order["created_at"]) == START
    assert datetime.fromisoformat(order["payment_due_at"]) == START + timedelta(seconds=1800)
    assert [(h["from_status"], h["to_status"], h["actor"]) for h in order["history"]] == [
        (None, "payment_in_progress", "user")
    ]
    assert str((await stored(app, order["id"])).user_id) == user["id"]


async def test_the_payment_window_is_a_setting(make_app):
    app = make_app(PAYMENT_TIMEOUT_SECONDS=600)
    async with client_for(app) as client:
        await customer(app, client)
        with time_machine.travel(START, tick=False):
            order = await create_order(client)
    assert datetime.fromisoformat(order["payment_due_at"]) == START + timedelta(seconds=600)


@pytest.mark.parametrize(
    "body",
    [
        {**ORDER, "amount": 12.5},
        {**ORDER, "amount": 12.0},
        {**ORDER, "amount": "1200"},
        {**ORDER, "amount": True},
        {**ORDER, "amount": 0},
        {**ORDER, "amount": -100},
        {**ORDER, "amount": 10**13 + 1},
        {**ORDER, "currency": "XYZ"},
        {**ORDER, "currency": "rub"},
        {**ORDER, "description": ""},
        {**ORDER, "description": "   "},
        {**ORDER, "description": "x" * 501},
        {**ORDER, "description": "a\x00b"},
        {"description": "без суммы"},
        {**ORDER, "status": "delivered"},
        {**ORDER, "user_id": str(uuid.uuid4())},
        {**ORDER, "payment_due_at": "2030-01-01T00:00:00Z"},
        {**ORDER, "flagged": True},
    ],
)
async def test_bad_or_overreaching_bodies_are_refused_and_nothing_is_created(app, client, body):
    await customer(app, client)
    response = await client.post("/transactions", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert await count_orders(app) == 0


async def test_other_currencies_and_the_longest_description_are_accepted(app, client):
    await customer(app, client)
    order = await create_order(client, currency="EUR", description="я" * 500, amount=10**13)
    assert (order["currency"], len(order["description"]), order["amount"]) == ("EUR", 500, 10**13)


async def test_an_unconfirmed_user_is_told_to_confirm_the_email(app, client):
    await customer(app, client, confirmed=False)
    for response in (
        await client.post("/transactions", json=ORDER),
        await client.get("/transactions"),
        await client.get(f"/transactions/{uuid.uuid4()}"),
    ):
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["code"] == "EMAIL_NOT_CONFIRMED"
        assert "подтвердите email" in body["message"].lower()
    assert await count_orders(app) == 0


async def test_anonymous_callers_get_401(client):
    assert (await client.post("/transactions", json=ORDER)).status_code == 401
    assert (await client.get("/transactions")).status_code == 401


async def test_users_see_only_their_own_orders_newest_first(app, client):
    await customer(app, client)
    mine = []
    with time_machine.travel(START, tick=False) as clock:
        for i in range(3):
            mine.append(await create_order(client, description=f"мой заказ {i}"))
            clock.shift(1)
        async with client_for(app, ip="203.0.113.11") as other:
            await customer(app, other)
            theirs = await create_order(other)
            assert (await other.get(f"/transactions/{mine[0]['id']}")).status_code == 404
            listed = (await other.get("/transactions")).json()
            assert [o["id"] for o in listed["items"]] == [theirs["id"]]
        listed = (await client.get("/transactions")).json()
        # Another user's id answers exactly as an id that does not exist.
        foreign = await client.get(f"/transactions/{theirs['id']}")
        unknown = await client.get(f"/transactions/{uuid.uuid4()}")
    assert [o["id"] for o in listed["items"]] == [o["id"] for o in reversed(mine)]
    assert listed["next_cursor"] is None
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json()
    assert foreign.json()["code"] == "TRANSACTION_NOT_FOUND"


async def test_pages_follow_the_cursor_without_gaps_or_repeats(app, client):
    await customer(app, client)
    with time_machine.travel(START, tick=False) as clock:
        created = []
        for i in range(7):
            created.append(await create_order(client, description=f"№{i}"))
            if i % 2:
                clock.shift(1)  # some share a created_at: the id breaks the tie
        seen, cursor = [], None
        for _ in range(4):
            params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
            page = (await client.get("/transactions", params=params)).json()
            seen += [o["id"] for o in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        garbage = await client.get("/transactions", params={"cursor": "garbage"})
        too_big = await client.get("/transactions", params={"limit": 101})
    assert len(seen) == len(set(seen)) == 7
    newest_first = sorted(
        created, key=lambda o: (o["created_at"], uuid.UUID(o["id"])), reverse=True
    )
    assert seen == [o["id"] for o in newest_first]
    assert garbage.json()["code"] == "INVALID_CURSOR"
    assert too_big.status_code == 422


async def test_an_order_reads_not_paid_in_time_from_its_deadline_on(app, client):
    await customer(app, client)
    with time_machine.travel(START, tick=False) as clock:
        order = await create_order(client)
        due = datetime.fromisoformat(order["payment_due_at"])
        clock.move_to(due - timedelta(microseconds=1))
        before = (await client.get(f"/transactions/{order['id']}")).json()
        filtered = await client.get("/transactions", params={"status": "payment_in_progress"})
        clock.move_to(due)
        after = (await client.get(f"/transactions/{order['id']}")).json()
        unpaid = (await client.get("/transactions", params={"status": "not_paid_in_time"})).json()
        waiting = await client.get("/transactions", params={"status": "payment_in_progress"})
    assert before["status"] == "payment_in_progress"
    assert [o["id"] for o in filtered.json()["items"]] == [order["id"]]
    assert after["status"] == "not_paid_in_time"
    assert after["status_label"] == "Не оплачено вовремя"
    assert after["history"][-1] | {"changed_at": None} == {
        "from_status": "payment_in_progress",
        "to_status": "not_paid_in_time",
        "changed_at": None,
        "actor": "system",
        "note": None,
    }
    assert datetime.fromisoformat(after["history"][-1]["changed_at"]) == due
    assert [o["id"] for o in unpaid["items"]] == [order["id"]]
    assert waiting.json()["items"] == []
    # Reading wrote nothing: the stored row still waits for the sweep.
    assert (await stored(app, order["id"])).status == TransactionStatus.PAYMENT_IN_PROGRESS


def test_every_status_has_a_russian_and_an_english_label():
    assert set(TRANSACTION_STATUS_LABELS) == set(TransactionStatus)
    assert [s.value for s in TransactionStatus] == [
        "not_paid_in_time",
        "payment_in_progress",
        "processing",
        "in_delivery",
        "delivered",
    ]
    assert TransactionStatus.IN_DELIVERY.label == "В доставке"
    assert TransactionStatus.IN_DELIVERY.label_in("en") == "In delivery"


async def test_an_order_and_its_first_history_row_share_one_instant(app, client):
    """On the real clock (no frozen time): everything one request writes carries the
    request's own instant, not each row's insert time."""
    await customer(app, client)
    order = await create_order(client)
    created = datetime.fromisoformat(order["created_at"])
    assert datetime.fromisoformat(order["history"][0]["changed_at"]) == created
    assert datetime.fromisoformat(order["payment_due_at"]) - created == timedelta(seconds=1800)
    row = await stored(app, order["id"])
    assert row.created_at == row.updated_at == created


class TestIdempotency:
    async def test_a_retry_with_the_same_key_and_body_replays_the_first_response(self, app, client):
        await customer(app, client)
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        first = await client.post("/transactions", json=ORDER, headers=headers)
        again = await client.post("/transactions", json=ORDER, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert await count_orders(app) == 1

    async def test_the_same_key_with_another_body_is_a_conflict(self, app, client):
        await customer(app, client)
        headers = {"Idempotency-Key": "order-42"}
        await client.post("/transactions", json=ORDER, headers=headers)
        response = await client.post("/transactions", json={**ORDER, "amount": 1}, headers=headers)
        assert response.status_code == 409
        assert response.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
        assert await count_orders(app) == 1

    async def test_keys_belong_to_their_user(self, app, client):
        await customer(app, client)
        headers = {"Idempotency-Key": "shared-key"}
        await client.post("/transactions", json=ORDER, headers=headers)
        async with client_for(app, ip="203.0.113.12") as other:
            await customer(app, other)
            response = await other.post("/transactions", json=ORDER, headers=headers)
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
        assert await count_orders(app) == 2

    async def test_a_key_lives_24_hours(self, app, client):
        await customer(app, client)
        headers = {"Idempotency-Key": "daily"}
        with time_machine.travel(START, tick=False) as clock:
            first = await client.post("/transactions", json=ORDER, headers=headers)
            clock.shift(timedelta(hours=24) - timedelta(seconds=1))
            replay = await client.post("/transactions", json=ORDER, headers=headers)
            clock.shift(timedelta(seconds=1))
            fresh = await client.post("/transactions", json=ORDER, headers=headers)
        assert replay.json()["id"] == first.json()["id"]
        assert fresh.status_code == 201 and fresh.json()["id"] != first.json()["id"]
        assert await count_orders(app) == 2

    async def test_parallel_retries_create_one_order(self, app, client):
        await customer(app, client)
        headers = {"Idempotency-Key": "burst"}
        responses = await asyncio.gather(
            *(client.post("/transactions", json=ORDER, headers=headers) for _ in range(8))
        )
        # Each retry waits for the claim of the first and replays its response.
        assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
        assert len({r.json()["id"] for r in responses}) == 1
        assert sum("Idempotent-Replayed" in r.headers for r in responses) == 7
        assert await count_orders(app) == 1

    @pytest.mark.parametrize("key", ["", "a" * 256, "с кириллицей".encode(), "has space"])
    async def test_malformed_keys_are_refused(self, app, client, key):
        await customer(app, client)
        response = await client.post("/transactions", json=ORDER, headers={"Idempotency-Key": key})
        assert response.status_code == 422, response.text
        assert await count_orders(app) == 0

    async def test_a_retry_replays_its_own_users_order_when_another_user_shares_the_key(
        self, app, client
    ):
        """Keys are per user: each user's retry replays their own order (the replayed
        response is looked up, and the response is stored, by user and key)."""
        await customer(app, client)
        headers = {"Idempotency-Key": "shared-key"}
        mine = await client.post("/transactions", json=ORDER, headers=headers)
        async with client_for(app, ip="203.0.113.12") as other:
            await customer(app, other)
            theirs = await other.post("/transactions", json={**ORDER, "amount": 1}, headers=headers)
            their_retry = await other.post(
                "/transactions", json={**ORDER, "amount": 1}, headers=headers
            )
        my_retry = await client.post("/transactions", json=ORDER, headers=headers)
        assert my_retry.status_code == their_retry.status_code == 201
        assert my_retry.json()["id"] == mine.json()["id"]
        assert their_retry.json()["id"] == theirs.json()["id"] != mine.json()["id"]
        assert await count_orders(app) == 2

    async def test_each_key_replays_its_own_order(self, app, client):
        await customer(app, client)
        first = await client.post("/transactions", json=ORDER, headers={"Idempotency-Key": "k1"})
        second = await client.post(
            "/transactions", json={**ORDER, "amount": 2}, headers={"Idempotency-Key": "k2"}
        )
        retries = [
            await client.post("/transactions", json=body, headers={"Idempotency-Key": key})
            for key, body in (("k2", {**ORDER, "amount": 2}), ("k1", ORDER))
        ]
        assert [retry.json()["id"] for retry in retries] == [
            second.json()["id"],
            first.json()["id"],
        ]
        async with app.state.sessionmaker() as db:
            recorded = dict(
                (
                    await db.execute(
                        select(
                            TransactionIdempotencyKey.key, TransactionIdempotencyKey.transaction_id
                        )
                    )
                ).all()
            )
        assert recorded == {
            "k1": uuid.UUID(first.json()["id"]),
            "k2": uuid.UUID(second.json()["id"]),
        }

    async def test_an_expired_key_is_taken_over_by_the_new_request(self, app, client):
        """After 24 hours the key starts again: the new body is the one retries must match,
        and the key's 24 hours count from the takeover."""
        await customer(app, client)
        headers = {"Idempotency-Key": "daily"}
        other = {**ORDER, "amount": 3}
        with time_machine.travel(START, tick=False) as clock:
            first = await client.post("/transactions", json=ORDER, headers=headers)
            clock.shift(timedelta(hours=24))
            fresh = await client.post("/transactions", json=other, headers=headers)
            clock.shift(timedelta(hours=1))
            retry = await client.post("/transactions", json=other, headers=headers)
            old_body = await client.post("/transactions", json=ORDER, headers=headers)
        assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
        assert retry.headers.get("Idempotent-Replayed") == "true"
        assert retry.json()["id"] == fresh.json()["id"] != first.json()["id"]
        assert old_body.status_code == 409
        assert old_body.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
        assert await count_orders(app) == 2

    async def test_a_key_claimed_without_a_response_yet_is_in_use(self, app, client):
        """A claim commits with its order and response, so another request only sees a
        claim with no response if it slips between two statements (e.g. the sweep deleting
        the key meanwhile). It is told to retry, nothing is created."""
        user = await customer(app, client)
        async with app.state.sessionmaker.begin() as db:
            db.add(
                TransactionIdempotencyKey(
                    user_id=uuid.UUID(user["id"]),
                    key="pending",
                    fingerprint=fingerprint(TransactionCreate(**ORDER).model_dump(mode="json")),
                    created_at=datetime.now(UTC),
                )
            )
        response = await client.post(
            "/transactions", json=ORDER, headers={"Idempotency-Key": "pending"}
        )
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "IDEMPOTENCY_KEY_IN_USE"
        assert response.headers["retry-after"] == "1"
        assert await count_orders(app) == 0

    async def test_the_sweep_deletes_expired_keys(self, app, client):
        from app.periodic import sweep

        await customer(app, client)
        with time_machine.travel(START, tick=False) as clock:
            await client.post("/transactions", json=ORDER, headers={"Idempotency-Key": "old"})
            clock.shift(timedelta(hours=23))
            await client.post("/transactions", json=ORDER, headers={"Idempotency-Key": "new"})
            clock.shift(timedelta(hours=1))
            async with app.state.sessionmaker.begin() as db:
                result = await sweep(db, app.state.settings, app.state.transactions)
        async with app.state.sessionmaker() as db:
            keys = list(await db.scalars(select(TransactionIdempotencyKey.key)))
        assert keys == ["new"]
        assert result.keys_deleted == 1


async def test_not_paid_in_time_pages_merge_written_and_unwritten_expiries(app, client):
    """The list runs one query for orders the sweep wrote not_paid_in_time and one for
    overdue ones it has not yet written, and merges them: pages stay in order, no gaps."""
    from sqlalchemy import update

    from app.periodic import sweep

    await customer(app, client)
    with time_machine.travel(START, tick=False) as clock:
        orders = []
        for i in range(7):
            orders.append(await create_order(client, description=f"№{i}"))
            clock.shift(1)

        async def due_in_past(*indexes: int) -> None:
            async with app.state.sessionmaker.begin() as db:
                await db.execute(
                    update(Transaction)
                    .where(Transaction.id.in_([uuid.UUID(orders[i]["id"]) for i in indexes]))
                    .values(payment_due_at=datetime.now(UTC) - timedelta(seconds=1))
                )

        await due_in_past(0, 3, 6)
        async with app.state.sessionmaker.begin() as db:
            assert (await sweep(db, app.state.settings, app.state.transactions)).expired == 3
        await due_in_past(1, 4)  # overdue, not yet written
        seen, cursor = [], None
        while True:
            params = {"status": "not_paid_in_time", "limit": 2} | (
                {"cursor": cursor} if cursor else {}
            )
            page = (await client.get("/transactions", params=params)).json()
            seen += [o["description"] for o in page["items"]]
            assert all(o["status"] == "not_paid_in_time" for o in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        waiting = (
            await client.get("/transactions", params={"status": "payment_in_progress"})
        ).json()
    assert seen == ["№6", "№4", "№3", "№1", "№0"]
    assert [o["description"] for o in waiting["items"]] == ["№5", "№2"]
