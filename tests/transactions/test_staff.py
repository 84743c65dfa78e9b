"""Staff over orders: lists, the transition table through PATCH, races, emails."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from app.services.email.outbox import OutboxMessage
from app.transactions import lifecycle
from app.types.enums import TransactionActor, TransactionStatus
from tests.conftest import client_for
from tests.helpers import sent_statements
from tests.transactions.helpers import admin_client, create_order, customer, history_rows, stored

S = TransactionStatus
START = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)


async def emails(app, template="order_status") -> list[OutboxMessage]:
    async with app.state.sessionmaker() as db:
        stmt = select(OutboxMessage).where(OutboxMessage.template == template)
        return list(await db.scalars(stmt.order_by(OutboxMessage.id)))


async def patch(staff, order_id: str, status: str, **extra):
    return await staff.patch(f"/admin/transactions/{order_id}", json={"status": status, **extra})


async def test_staff_walk_an_order_through_its_lifecycle_and_the_customer_hears(app, client, staff):
    user = await customer(app, client)
    admin = await admin_client(app, staff)
    order = await create_order(client)
    steps = [("processing", "Оплата по счёту"), ("in_delivery", "СДЭК 1234"), ("delivered", None)]
    for status, note in steps:
        response = await patch(staff, order["id"], status, **({"note": note} if note else {}))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    detail = (await staff.get(f"/admin/transactions/{order['id']}")).json()
    assert detail["user_id"] == user["id"]
    assert [
        (h["from_status"], h["to_status"], h["actor"], h["note"]) for h in detail["history"]
    ] == [
        (None, "payment_in_progress", "user", None),
        ("payment_in_progress", "processing", "admin", "Оплата по счёту"),
        ("processing", "in_delivery", "admin", "СДЭК 1234"),
        ("in_delivery", "delivered", "admin", None),
    ]
    assert [h["actor_user_id"] for h in detail["history"]] == [user["id"]] + [admin["id"]] * 3
    # The customer sees the same path, without staff ids.
    mine = (await client.get(f"/transactions/{order['id']}")).json()
    assert [h["to_status"] for h in mine["history"]] == [h["to_status"] for h in detail["history"]]
    assert all("actor_user_id" not in h for h in mine["history"])
    # Emails for in_delivery and delivered only (processing is not announced).
    sent = await emails(app)
    assert [(m.to_address, m.data["status"]) for m in sent] == [
        (user["email"], "in_delivery"),
        (user["email"], "delivered"),
    ]
    assert sent[0].data["order_number"] == order["id"].replace("-", "")[:8].upper()
    assert sent[0].data["amount"] == "2\u00a0499,00\u00a0RUB"


async def test_each_move_writes_the_order_once(app, client, staff):
    """A move is one compare-and-set UPDATE of the order: no attempt to write an expiry
    first unless the deadline has passed unwritten, no re-read."""
    await customer(app, client)
    await admin_client(app, staff)
    order = await create_order(client)
    with sent_statements(app) as statements:
        for status in ("processing", "in_delivery", "delivered"):
            assert (await patch(staff, order["id"], status)).status_code == 200
    updates = [s for s in statements if s.replace('"', "").startswith("UPDATE transaction SET")]
    assert len(updates) == 3, updates


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ([], "in_delivery"),  # skipping
        ([], "delivered"),
        ([], "not_paid_in_time"),  # the deadline's move, not staff's
        ([], "payment_in_progress"),  # sideways
        (["processing"], "payment_in_progress"),  # back
        (["processing"], "processing"),
        (["processing", "in_delivery"], "processing"),
        (["processing", "in_delivery", "delivered"], "in_delivery"),  # a final status
    ],
)
async def test_moves_outside_the_table_are_409_and_change_nothing(app, client, staff, path, wanted):
    await customer(app, client)
    await admin_client(app, staff)
    order = await create_order(client)
    for status in path:
        assert (await patch(staff, order["id"], status)).status_code == 200
    before = await stored(app, order["id"])
    history_before = len(await history_rows(app, order["id"]))
    mails_before = len(await emails(app))
    response = await patch(staff, order["id"], wanted, note="попытка")
    assert response.status_code == 409, response.text
    body = response.json()
    current = S(path[-1]) if path else S.PAYMENT_IN_PROGRESS
    assert body["code"] == "TRANSACTION_TRANSITION_NOT_ALLOWED"
    assert body["detail"] == {
        "status": current.value,
        "requested": wanted,
        "allowed": [s.value for s in lifecycle.allowed_next(current, TransactionActor.ADMIN)],
    }
    after = await stored(app, order["id"])
    assert (after.status, after.updated_at) == (before.status, before.updated_at)
    assert len(await history_rows(app, order["id"])) == history_before
    assert len(await emails(app)) == mails_before


async def test_after_the_deadline_staff_cannot_mark_it_paid_and_the_expiry_is_written(
    app, client, staff
):
    user = await customer(app, client)
    with time_machine.travel(START, tick=False) as clock:
        await admin_client(app, staff)
        order = await create_order(client)
        clock.move_to(datetime.fromisoformat(order["payment_due_at"]))
        response = await patch(staff, order["id"], "processing")
    assert response.status_code == 409
    assert response.json()["detail"]["status"] == "not_paid_in_time"
    assert response.json()["detail"]["allowed"] == []
    # The refusal rolled back with the request: the sweep will write the expiry.
    assert (await stored(app, order["id"])).status == S.PAYMENT_IN_PROGRESS
    assert [m.to_address for m in await emails(app)] == []
    assert user


async def test_ten_admins_racing_one_wins(app, client, staff):
    await customer(app, client)
    await admin_client(app, staff)
    order = await create_order(client)
    cookies = staff.cookies
    clients = [client_for(app, ip=f"203.0.113.{30 + i}") for i in range(10)]
    try:
        for c in clients:
            c.cookies = cookies
        responses = await asyncio.gather(*(patch(c, order["id"], "processing") for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 9, [r.text for r in responses]
    losers = [r.json() for r in responses if r.status_code == 409]
    assert all(body["detail"]["status"] == "processing" for body in losers)
    rows = await history_rows(app, order["id"])
    assert [(r.from_status, r.to_status) for r in rows] == [
        (None, S.PAYMENT_IN_PROGRESS),
        (S.PAYMENT_IN_PROGRESS, S.PROCESSING),
    ]


async def test_lists_filter_by_status_customer_and_flag(app, client, staff):
    user = await customer(app, client)
    await admin_client(app, staff)
    a = await create_order(client, description="A")
    b = await create_order(client, description="B")
    assert (await patch(staff, b["id"], "processing")).status_code == 200
    async with client_for(app, ip="203.0.113.13") as other:
        other_user = await customer(app, other)
        c = await create_order(other, description="C")

    async def ids(**params):
        response = await staff.get("/admin/transactions", params=params)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["items"]]

    assert await ids() == [c["id"], b["id"], a["id"]]
    assert await ids(status="processing") == [b["id"]]
    assert await ids(status="payment_in_progress") == [c["id"], a["id"]]
    assert await ids(user_id=user["id"]) == [b["id"], a["id"]]
    assert await ids(user_id=other_user["id"], status="payment_in_progress") == [c["id"]]
    assert await ids(flagged="true") == []
    assert await ids(flagged="false", limit=1) == [c["id"]]
    listed = (await staff.get("/admin/transactions")).json()["items"][0]
    assert listed["user_id"] == other_user["id"]


async def test_unknown_orders_are_404_for_staff(app, staff):
    await admin_client(app, staff)
    missing = uuid.uuid4()
    for response in (
        await staff.get(f"/admin/transactions/{missing}"),
        await patch(staff, str(missing), "processing"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "TRANSACTION_NOT_FOUND"


async def test_customers_get_403_on_every_staff_route(app, client):
    await customer(app, client)
    order = await create_order(client)
    for response in (
        await client.get("/admin/transactions"),
        await client.get(f"/admin/transactions/{order['id']}"),
        await patch(client, order["id"], "processing"),
    ):
        assert response.status_code == 403
        assert response.json()["code"] == "ADMIN_ROLE_REQUIRED"
    assert (await stored(app, order["id"])).status == S.PAYMENT_IN_PROGRESS


@pytest.mark.parametrize(
    "body",
    [
        {"status": "shipped"},
        {},
        {"status": "processing", "note": ""},
        {"status": "processing", "note": "x" * 501},
        {"status": "processing", "note": "строка\nвторая"},
        {"status": "processing", "amount": 1},
    ],
)
async def test_bad_status_changes_are_422(app, client, staff, body):
    await customer(app, client)
    await admin_client(app, staff)
    order = await create_order(client)
    response = await staff.patch(f"/admin/transactions/{order['id']}", json=body)
    assert response.status_code == 422, response.text
    assert (await stored(app, order["id"])).status == S.PAYMENT_IN_PROGRESS
