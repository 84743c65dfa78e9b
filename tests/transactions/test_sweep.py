"""The deadline written by the sweep: in the app's sweep and by `python -m app sweep`,
with the history row at the deadline and the customer's email, exactly once."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select, update

from app.periodic import sweep
from app.services.email.outbox import OutboxMessage
from app.transactions.models import Transaction
from app.transactions.service import TransitionNotAllowed
from app.types.enums import TransactionActor, TransactionStatus
from tests.cli.helpers import cli
from tests.conftest import client_for
from tests.helpers import ON_POSTGRESQL
from tests.transactions.helpers import create_order, customer, history_rows, pay, stored

S = TransactionStatus
A = TransactionActor


async def overdue(app, order_id: str, by: timedelta = timedelta(seconds=1)) -> datetime:
    due = datetime.now(UTC) - by
    async with app.state.sessionmaker.begin() as db:
        await db.execute(
            update(Transaction)
            .where(Transaction.id == uuid.UUID(order_id))
            .values(payment_due_at=due)
        )
    return due


async def notices(app) -> list[OutboxMessage]:
    async with app.state.sessionmaker() as db:
        stmt = select(OutboxMessage).where(OutboxMessage.template == "order_status")
        return list(await db.scalars(stmt))


async def test_the_sweep_writes_the_expiry_once_with_history_and_email(app, client):
    user = await customer(app, client)
    late = await create_order(client, description="опоздал")
    on_time = await create_order(client, description="успеет")
    due = await overdue(app, late["id"])
    for _ in range(2):
        async with app.state.sessionmaker.begin() as db:
            result = await sweep(db, app.state.settings, app.state.transactions)
        assert result.expired in (0, 1)
    assert (await stored(app, late["id"])).status == S.NOT_PAID_IN_TIME
    assert (await stored(app, on_time["id"])).status == S.PAYMENT_IN_PROGRESS
    rows = await history_rows(app, late["id"])
    assert [(r.from_status, r.to_status, r.actor) for r in rows] == [
        (None, S.PAYMENT_IN_PROGRESS, "user"),
        (S.PAYMENT_IN_PROGRESS, S.NOT_PAID_IN_TIME, "system"),
    ]
    assert abs(rows[-1].changed_at - due) < timedelta(milliseconds=1)
    mails = await notices(app)
    assert [(m.to_address, m.data["status"], m.data["description"]) for m in mails] == [
        (user["email"], "not_paid_in_time", "опоздал")
    ]
    assert mails[0].data["status_label"] == "Не оплачено вовремя"
    assert mails[0].data["name"] == user["name"]  # the email greets them by name
    assert mails[0].user_id == uuid.UUID(user["id"])  # support's "what did we send them?"


async def test_the_notice_labels_the_status_in_the_email_locale(make_app):
    app = make_app(EMAIL_LOCALE="en")
    async with client_for(app) as client:
        await customer(app, client)
        order = await create_order(client)
    await overdue(app, order["id"])
    async with app.state.sessionmaker.begin() as db:
        assert (await sweep(db, app.state.settings, app.state.transactions)).expired == 1
    (mail,) = await notices(app)
    assert (mail.locale, mail.data["status_label"]) == ("en", "Not paid in time")


async def test_python_m_app_sweep_expires_orders(app, client, database_url):
    await customer(app, client)
    orders = [await create_order(client) for _ in range(3)]
    for order in orders[:2]:
        await overdue(app, order["id"])
    result = cli(database_url, "sweep")
    assert result.returncode == 0, result.stderr
    assert "2 unpaid order(s) marked not_paid_in_time" in result.stdout
    assert len(await notices(app)) == 2


async def test_the_sweep_works_in_batches_and_passes_over_orders_not_due(
    app, client, provider, monkeypatch
):
    """Batches of EXPIRE_BATCH: each picks only unpaid orders past their deadline, so the
    sweep ends even with more than a batch of orders it must leave alone."""
    from app.transactions import service

    monkeypatch.setattr(service, "EXPIRE_BATCH", 2)
    await customer(app, client)
    paid = [await create_order(client) for _ in range(3)]
    for order in paid:
        assert (await pay(provider, order["id"])).json() == {"result": "processing"}
        await overdue(app, order["id"])  # past the deadline, but paid
    late = [await create_order(client) for _ in range(3)]
    for order in late:
        await overdue(app, order["id"])
    waiting = [await create_order(client) for _ in range(3)]  # unpaid, not yet due

    async def sweeping():
        async with app.state.sessionmaker.begin() as db:
            return await sweep(db, app.state.settings, app.state.transactions)

    swept_at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(swept_at, tick=False):
        result = await asyncio.wait_for(sweeping(), 10)
    assert result.expired == 3
    async with app.state.sessionmaker() as db:
        rows = list(await db.scalars(select(Transaction)))
    statuses = {str(row.id): row.status for row in rows}
    late_ids = {order["id"] for order in late}
    assert {row.updated_at for row in rows if str(row.id) in late_ids} == {swept_at}
    assert statuses == {
        **{order["id"]: S.PROCESSING for order in paid},
        **{order["id"]: S.NOT_PAID_IN_TIME for order in late},
        **{order["id"]: S.PAYMENT_IN_PROGRESS for order in waiting},
    }


def before_its_first_update(app, db, monkeypatch, interloper) -> list:
    """Make the session `db` run `interloper(other)` in a session of its own, committed,
    just before `db` sends its first UPDATE: a writer committing in between two of a
    transaction's statements, as PostgreSQL's read committed lets one. Returns the list
    interloper's result is appended to."""
    results: list = []
    execute = db.execute

    async def execute_after_the_interloper(statement, *args, **kwargs):
        if statement.is_dml and statement.is_update and not results:
            async with app.state.sessionmaker.begin() as other:
                results.append(await interloper(other))
        return await execute(statement, *args, **kwargs)

    monkeypatch.setattr(db, "execute", execute_after_the_interloper)
    return results


def payment(app, order_id: uuid.UUID, event_id: str, now: datetime):
    """The provider's successful payment, as the webhook records it."""
    from app.transactions.service import PAYMENT_SUCCEEDED

    return lambda db: app.state.transactions.record_payment(
        db,
        event_id=event_id,
        event_type=PAYMENT_SUCCEEDED,
        transaction_id=order_id,
        now=now,
    )


@ON_POSTGRESQL
async def test_an_order_paid_while_the_sweep_runs_stays_paid(app, client, monkeypatch):
    """The sweep picks overdue orders, then writes them, re-checking each is still unpaid:
    a payment that commits in between (it arrived before the deadline) is kept. On
    PostgreSQL the UPDATE re-reads the row it waited for; SQLite cannot interleave here
    (the sweep's write would fail on its stale snapshot, rolled back whole)."""
    await customer(app, client)
    order = await create_order(client)
    order_id = uuid.UUID(order["id"])
    due = datetime.fromisoformat(order["payment_due_at"])
    async with app.state.sessionmaker.begin() as db:
        paid = before_its_first_update(
            app,
            db,
            monkeypatch,
            payment(app, order_id, "evt-in-between", due - timedelta(seconds=1)),
        )
        expired = await app.state.transactions.expire_overdue(db, due)
    assert paid == ["processing"]
    assert expired == 0
    assert (await stored(app, order["id"])).status == S.PROCESSING
    assert [r.to_status for r in await history_rows(app, order["id"])] == [
        S.PAYMENT_IN_PROGRESS,
        S.PROCESSING,
    ]


@ON_POSTGRESQL
async def test_a_move_that_finds_the_sweep_expired_the_order_first_is_refused(
    app, client, monkeypatch
):
    """A move of an overdue order first writes its expiry; when the sweep wrote it in
    between, that write finds nothing to change, the order is re-read, and the move is
    refused with the status the sweep wrote. One expiry in the history: the sweep's."""
    await customer(app, client)
    order = await create_order(client)
    order_id = uuid.UUID(order["id"])
    due = datetime.fromisoformat(order["payment_due_at"])
    transactions = app.state.transactions
    with pytest.raises(TransitionNotAllowed) as refused:
        async with app.state.sessionmaker.begin() as db:
            transaction = await db.get(Transaction, order_id)
            swept = before_its_first_update(
                app, db, monkeypatch, lambda other: transactions.expire_overdue(other, due)
            )
            await transactions.move(db, transaction, S.PROCESSING, actor=A.WEBHOOK, now=due)
    assert swept == [1]
    assert refused.value.detail["status"] == "not_paid_in_time"
    rows = await history_rows(app, order["id"])
    assert [(r.to_status, r.actor) for r in rows] == [
        (S.PAYMENT_IN_PROGRESS, "user"),
        (S.NOT_PAID_IN_TIME, "system"),
    ]


@ON_POSTGRESQL
async def test_a_move_that_loses_a_race_is_refused_with_the_winners_status(
    app, client, monkeypatch
):
    """Staff mark an order paid while the provider's payment commits first: the staff's
    compare-and-set finds the order moved, re-reads it, and the refusal names the status
    it now has and what may follow it."""
    await customer(app, client)
    order = await create_order(client)
    order_id = uuid.UUID(order["id"])
    now = datetime.fromisoformat(order["payment_due_at"]) - timedelta(minutes=10)
    with pytest.raises(TransitionNotAllowed) as refused:
        async with app.state.sessionmaker.begin() as db:
            transaction = await db.get(Transaction, order_id)
            paid = before_its_first_update(
                app, db, monkeypatch, payment(app, order_id, "evt-first", now)
            )
            await app.state.transactions.move(db, transaction, S.PROCESSING, actor=A.ADMIN, now=now)
    assert paid == ["processing"]
    assert refused.value.detail == {
        "status": "processing",
        "requested": "processing",
        "allowed": ["in_delivery"],
    }
