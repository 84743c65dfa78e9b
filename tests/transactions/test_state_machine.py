"""Random sequences of create / pay / replay / staff moves / time passing / sweeps, driven
by Hypothesis against the served routes, checked after every step against a model:

- the status an order shows is the one the model predicts (deadline applied);
- its history is a chain of moves of the transition table from creation (plus late
  payments, recorded without a status change), and equals the path the model took;
- a final status never changes.
"""

import asyncio
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from app.main import close_app, create_app
from app.periodic import sweep
from app.transactions import lifecycle
from app.types.enums import TransactionActor, TransactionStatus
from tests.conftest import client_for
from tests.transactions.helpers import ORDER, admin_client, customer, pay

S = TransactionStatus
A = TransactionActor
START = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
EXAMPLE_HOURS = 4


@dataclass
class Expected:
    due: datetime
    path: list[S] = field(default_factory=lambda: [S.PAYMENT_IN_PROGRESS])  # written moves
    late_payments: int = 0
    final_seen: S | None = None

    def status(self, now: datetime) -> S:
        return lifecycle.effective_status(self.path[-1], self.due, now)

    def shown_path(self, now: datetime) -> list[S]:
        """The path as the API shows it: an unwritten expiry is shown too."""
        return self.path + ([S.NOT_PAID_IN_TIME] if self.status(now) != self.path[-1] else [])


class Harness:
    """One app, one customer, one admin and a frozen clock for the whole run."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop, clock: Any) -> None:
        self.app, self.loop, self.clock = app, loop, clock
        self.customer = client_for(app)
        self.staff = client_for(app, ip="203.0.113.40")
        self.provider = client_for(app, ip="198.51.100.9")
        self.run(customer(app, self.customer))
        self.run(admin_client(app, self.staff))

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def close(self) -> None:
        for client in (self.customer, self.staff, self.provider):
            self.run(client.aclose())


def machine(h: Harness) -> type[RuleBasedStateMachine]:
    event_ids = itertools.count(1)

    class OrderLifecycle(RuleBasedStateMachine):
        orders = Bundle("orders")

        def __init__(self) -> None:
            super().__init__()
            self.expected: dict[str, Expected] = {}
            self.events: list[str] = []
            self.elapsed = 0

        @rule(target=orders)
        def create(self) -> str:
            response = h.run(h.customer.post("/transactions", json=ORDER))
            assert response.status_code == 201, response.text
            body = response.json()
            self.expected[body["id"]] = Expected(due=datetime.fromisoformat(body["payment_due_at"]))
            return body["id"]

        @rule(order=orders)
        def pay(self, order: str) -> None:
            model = self.expected[order]
            now = h.now()
            event_id = f"evt_{next(event_ids)}_{uuid.uuid4().hex[:6]}"
            response = h.run(pay(h.provider, order, event_id=event_id))
            assert response.status_code == 200, response.text
            self.events.append(event_id)
            status = model.status(now)
            if status == S.PAYMENT_IN_PROGRESS:
                want = "processing"
                model.path.append(S.PROCESSING)
            elif status == S.NOT_PAID_IN_TIME:
                want = "late"
                if model.path[-1] != S.NOT_PAID_IN_TIME:
                    model.path.append(S.NOT_PAID_IN_TIME)  # the webhook writes the expiry
                model.late_payments += 1
            else:
                want = "ignored"
            assert response.json()["result"] == want

        @rule(data=st.data())
        def replay(self, data: st.DataObject) -> None:
            if not self.events:
                return
            event_id = data.draw(st.sampled_from(self.events))
            # The replayed event names some order; what it names does not matter.
            order = next(iter(self.expected))
            response = h.run(pay(h.provider, order, event_id=event_id))
            assert response.json() == {"result": "duplicate"}

        @rule(order=orders, to=st.sampled_from(list(S)))
        def staff_move(self, order: str, to: S) -> None:
            model = self.expected[order]
            current = model.status(h.now())
            response = h.run(h.staff.patch(f"/admin/transactions/{order}", json={"status": to}))
            if lifecycle.may_move(current, to, A.ADMIN):
                assert response.status_code == 200, response.text
                model.path.append(to)
            else:
                assert response.status_code == 409, response.text
                assert response.json()["detail"]["status"] == current

        # Around the deadline (PAYMENT_TIMEOUT_SECONDS=1800) more than anywhere else.
        @rule(seconds=st.sampled_from([1, 600, 1799, 1800, 1801]) | st.integers(0, 2400))
        def time_passes(self, seconds: int) -> None:
            # The clock only moves forward over the whole run, and the run's sessions must
            # outlive it (7 days idle, 30 days in all): four hours an example is plenty
            # around a 30-minute deadline.
            if self.elapsed + seconds > EXAMPLE_HOURS * 3600:
                return
            self.elapsed += seconds
            h.clock.shift(seconds)

        @rule()
        def sweep(self) -> None:
            async def run() -> int:
                async with h.app.state.sessionmaker.begin() as db:
                    return (await sweep(db, h.app.state.settings, h.app.state.transactions)).expired

            now = h.now()
            overdue = [m for m in self.expected.values() if m.status(now) != m.path[-1]]
            expired = h.run(run())
            for model in overdue:
                model.path.append(S.NOT_PAID_IN_TIME)
            assert expired >= len(overdue)  # orders of earlier runs may expire too

        @invariant()
        def orders_match_the_model_and_the_table(self) -> None:
            now = h.now()
            for order, model in self.expected.items():
                response = h.run(h.staff.get(f"/admin/transactions/{order}"))
                assert response.status_code == 200, response.text
                detail = response.json()
                assert detail["status"] == model.status(now)
                history = detail["history"]
                assert history[0]["from_status"] is None
                assert history[0]["to_status"] == lifecycle.INITIAL
                moves = [h_ for h_ in history[1:] if h_["from_status"] != h_["to_status"]]
                for before, after in itertools.pairwise([history[0], *moves]):
                    assert after["from_status"] == before["to_status"]
                    assert after["to_status"] in lifecycle.TRANSITIONS[S(after["from_status"])]
                    assert (
                        A(after["actor"])
                        in lifecycle.TRANSITIONS[S(after["from_status"])][S(after["to_status"])]
                    )
                assert [history[0]["to_status"]] + [
                    m["to_status"] for m in moves
                ] == model.shown_path(now)
                late = [h_ for h_ in history[1:] if h_["from_status"] == h_["to_status"]]
                assert len(late) == model.late_payments
                assert all(h_["to_status"] == S.NOT_PAID_IN_TIME for h_ in late)
                assert detail["flagged"] == (model.late_payments > 0)
                status = S(detail["status"])
                if model.final_seen is not None:
                    assert status == model.final_seen
                if status in lifecycle.FINAL:
                    model.final_seen = status

    return OrderLifecycle


def test_random_lifecycles_follow_the_table(make_settings):
    from tests.transactions.helpers import WEBHOOK_SECRET

    app = create_app(make_settings(PAYMENT_WEBHOOK_SECRET=WEBHOOK_SECRET, RATE_LIMIT_ENABLED=False))
    loop = asyncio.new_event_loop()
    try:
        with time_machine.travel(START, tick=False) as clock:
            harness = Harness(app, loop, clock)
            try:
                run_state_machine_as_test(
                    machine(harness),
                    settings=settings(
                        max_examples=100,
                        stateful_step_count=30,
                        deadline=None,
                        suppress_health_check=[HealthCheck.too_slow],
                    ),
                )
            finally:
                harness.close()
    finally:
        loop.run_until_complete(close_app(app))
        loop.close()
