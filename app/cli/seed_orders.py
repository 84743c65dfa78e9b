"""`python -m app seed --transactions N [--users U]`: a large, realistic order book for
benchmarks and QA, with a progress bar.

U confirmed users (default 10 000) on the reserved example.com domain, sharing one fresh
random password printed once; the first of them holds a tenth of the orders (the heavy
customer whose deep pages the benchmark reads), the rest are spread at random. Orders are
spread over the past year, each with the history its status implies (created, paid,
shipped, delivered; or expired at its deadline), written in batches of BATCH orders, one
transaction each: an interrupted run keeps what it wrote.
"""

import random
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert
from tqdm import tqdm

from app.cli.common import transaction
from app.core.clock import utcnow
from app.core.config import get_settings
from app.core.security import PasswordHasher
from app.transactions.models import Transaction, TransactionHistory
from app.transactions.schemas import CURRENCIES
from app.types.enums import TransactionActor, TransactionStatus, UserRole
from app.users.models import User

S = TransactionStatus
A = TransactionActor
BATCH = 10_000
HEAVY_SHARE = 10  # the heavy customer holds 1/HEAVY_SHARE of the orders
SPAN = timedelta(days=365)
# Where orders older than their deadline end up (the rest of the year's orders).
OUTCOMES = [S.DELIVERED] * 6 + [S.IN_DELIVERY, S.PROCESSING] + [S.NOT_PAID_IN_TIME] * 2
PATHS = {
    S.PAYMENT_IN_PROGRESS: [],
    S.NOT_PAID_IN_TIME: [(S.NOT_PAID_IN_TIME, A.SYSTEM)],
    S.PROCESSING: [(S.PROCESSING, A.WEBHOOK)],
    S.IN_DELIVERY: [(S.PROCESSING, A.WEBHOOK), (S.IN_DELIVERY, A.ADMIN)],
    S.DELIVERED: [(S.PROCESSING, A.WEBHOOK), (S.IN_DELIVERY, A.ADMIN), (S.DELIVERED, A.ADMIN)],
}
# Table-level inserts: one executemany per batch (the ORM's bulk path ran row by row here,
# three times slower).
USERS = cast(Table, User.__table__)
TRANSACTIONS = cast(Table, Transaction.__table__)
HISTORY = cast(Table, TransactionHistory.__table__)
ITEMS = ("Кофемолка ручная", "Чайник", "Френч-пресс", "Кофе в зёрнах, 1 кг", "Турка медная")


@dataclass(frozen=True, slots=True)
class SeedResult:
    users: int
    orders: int
    heavy_email: str
    password: str

    def __str__(self) -> str:
        return (
            f"{self.orders} orders over {self.users} confirmed users; "
            f"{self.heavy_email} holds {self.orders // HEAVY_SHARE}. "
            f"Every seeded user's password (shown only this once): {self.password}"
        )


def _order(
    user_id: uuid.UUID, now: datetime, timeout: timedelta, rng: random.Random
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    created = now - SPAN * rng.random()
    due = created + timeout
    status = S.PAYMENT_IN_PROGRESS if due > now else rng.choice(OUTCOMES)
    order_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    row = {
        "id": order_id,
        "user_id": user_id,
        "amount": rng.randrange(100, 5_000_000),
        "currency": "RUB" if rng.random() < 0.9 else rng.choice(CURRENCIES),
        "description": f"{rng.choice(ITEMS)}, {rng.randrange(1, 5)} шт.",
        "status": status,
        "payment_due_at": due,
        "created_at": created,
        "updated_at": created,
        "flagged": False,
    }
    history = [_step(order_id, None, S.PAYMENT_IN_PROGRESS, A.USER, user_id, created)]
    at, before = created, S.PAYMENT_IN_PROGRESS
    for to, actor in PATHS[status]:
        if to == S.NOT_PAID_IN_TIME:
            at = due  # expired at its deadline
        elif to == S.PROCESSING:
            at = created + (due - created) * rng.random()  # paid in time
        else:
            at = min(now, at + timedelta(hours=rng.randrange(1, 72)))
        history.append(_step(order_id, before, to, actor, user_id if actor == A.USER else None, at))
        before = to
    row["updated_at"] = at
    return row, history


def _step(
    order_id: uuid.UUID,
    from_status: S | None,
    to: S,
    actor: A,
    user_id: uuid.UUID | None,
    at: datetime,
) -> dict[str, Any]:
    return {
        "transaction_id": order_id,
        "from_status": from_status,
        "to_status": to,
        "changed_at": at,
        "actor": actor,
        "actor_user_id": user_id,
        "note": None,
    }


def _owners(user_ids: list[uuid.UUID], orders: int, rng: random.Random) -> Iterator[uuid.UUID]:
    """The heavy customer for every HEAVY_SHARE-th order, anyone else for the rest."""
    heavy, others = user_ids[0], user_ids[1:] or user_ids
    for n in range(orders):
        yield heavy if n % HEAVY_SHARE == 0 else rng.choice(others)


async def seed_orders(
    orders: int, users: int, *, seed: int | None = None, progress: bool = True
) -> SeedResult:
    settings = get_settings()
    rng = random.Random(seed)
    password = "-".join(secrets.token_hex(3) for _ in range(4))
    hashed = await PasswordHasher().hash(password)
    tag = secrets.token_hex(3)
    now = utcnow()
    timeout = timedelta(seconds=settings.PAYMENT_TIMEOUT_SECONDS)
    user_rows = [
        {
            "id": uuid.UUID(int=rng.getrandbits(128), version=4),
            "email": f"seed-{tag}-{i}@example.com",
            "hashed_password": hashed,
            "name": f"Покупатель {i}",
            "phone": None,
            "role": UserRole.USER,
            "is_active": True,
            "is_verified": True,
            "created_at": now - SPAN,
            "newsletter_opt_in": False,
        }
        for i in range(users)
    ]
    async with transaction() as db:
        for start in range(0, users, BATCH):
            await db.execute(insert(USERS), user_rows[start : start + BATCH])
    user_ids = [cast(uuid.UUID, row["id"]) for row in user_rows]
    owners = _owners(user_ids, orders, rng)
    with tqdm(total=orders, unit="order", disable=not progress, desc="orders") as bar:
        for start in range(0, orders, BATCH):
            batch, steps = [], []
            for _ in range(min(BATCH, orders - start)):
                row, history = _order(next(owners), now, timeout, rng)
                batch.append(row)
                steps += history
            async with transaction() as db:
                await db.execute(insert(TRANSACTIONS), batch)
                await db.execute(insert(HISTORY), steps)
            bar.update(len(batch))
    return SeedResult(users, orders, str(user_rows[0]["email"]), password)
