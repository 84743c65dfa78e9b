"""`python -m app seed --transactions N`: an order book for benchmarks, whose orders are
ones the API could have made (statuses reachable by the transition table, histories that
are their paths, deadlines that agree with the status)."""

import itertools
import re
from collections import Counter

from sqlalchemy import select

from app.core.clock import utcnow
from app.transactions import lifecycle
from app.transactions.models import Transaction, TransactionHistory
from app.types.enums import TransactionStatus
from app.users.models import User
from tests.cli.helpers import cli
from tests.conftest import client_for
from tests.helpers import login

S = TransactionStatus


async def test_seeded_orders_follow_the_lifecycle_and_the_heavy_customer_signs_in(
    app, database_url
):
    result = cli(database_url, "seed", "--transactions", "400", "--users", "7")
    assert result.returncode == 0, result.stderr
    assert "400 orders over 7 confirmed users" in result.stdout
    heavy, password = re.search(
        r"(seed-\S+@example\.com) holds 40\..*: (\S+)$", result.stdout
    ).groups()

    async with app.state.sessionmaker() as db:
        users = list(await db.scalars(select(User)))
        orders = list(await db.scalars(select(Transaction)))
        steps = list(await db.scalars(select(TransactionHistory).order_by(TransactionHistory.id)))
    assert len(users) == 7 and all(u.is_verified and u.is_active for u in users)
    assert len(orders) == 400
    owners = Counter(o.user_id for o in orders)
    heavy_id = next(u.id for u in users if u.email == heavy)
    assert owners[heavy_id] == 40
    now = utcnow()
    by_order = {
        k: list(g)
        for k, g in itertools.groupby(
            sorted(steps, key=lambda s: (str(s.transaction_id), s.id)),
            key=lambda s: s.transaction_id,
        )
    }
    statuses = Counter()
    for order in orders:
        statuses[order.status] += 1
        assert (order.status == S.PAYMENT_IN_PROGRESS) == (order.payment_due_at > now)
        path = by_order[order.id]
        assert (path[0].from_status, path[0].to_status) == (None, lifecycle.INITIAL)
        for before, after in itertools.pairwise(path):
            assert after.from_status == before.to_status
            assert lifecycle.may_move(after.from_status, after.to_status, after.actor)
            assert before.changed_at <= after.changed_at <= now
        assert path[-1].to_status == order.status
    assert {S.DELIVERED, S.NOT_PAID_IN_TIME, S.PROCESSING} <= set(statuses)

    async with client_for(app) as client:
        await login(client, heavy, password)
        page = (await client.get("/transactions", params={"limit": 100})).json()
    assert len(page["items"]) == 40 and page["next_cursor"] is None


async def test_demo_and_transactions_exclude_each_other(database_url):
    result = cli(database_url, "seed", "--demo", "--transactions", "10")
    assert result.returncode == 2
    assert "not allowed with" in result.stderr
    assert cli(database_url, "seed", "--transactions", "0").returncode == 2
