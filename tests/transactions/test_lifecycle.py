"""The transition table, pinned to the issue's wording (tests import the table elsewhere;
here it is restated once, so a change to it is a deliberate change to this test)."""

from datetime import UTC, datetime, timedelta

import pytest

from app.transactions import lifecycle
from app.types.enums import TransactionActor, TransactionStatus

S = TransactionStatus
A = TransactionActor

SPEC = {
    (S.PAYMENT_IN_PROGRESS, S.PROCESSING): {A.WEBHOOK, A.ADMIN},
    (S.PAYMENT_IN_PROGRESS, S.NOT_PAID_IN_TIME): {A.SYSTEM},
    (S.PROCESSING, S.IN_DELIVERY): {A.ADMIN},
    (S.IN_DELIVERY, S.DELIVERED): {A.ADMIN},
}


@pytest.mark.parametrize("from_status", list(S))
@pytest.mark.parametrize("to_status", list(S))
@pytest.mark.parametrize("actor", list(A))
def test_the_table_allows_exactly_the_specified_moves(from_status, to_status, actor):
    allowed = actor in SPEC.get((from_status, to_status), set())
    assert lifecycle.may_move(from_status, to_status, actor) is allowed
    assert (to_status in lifecycle.allowed_next(from_status, actor)) is allowed


def test_finals_and_start():
    assert {S.NOT_PAID_IN_TIME, S.DELIVERED} == lifecycle.FINAL
    assert lifecycle.INITIAL == S.PAYMENT_IN_PROGRESS
    assert {S.IN_DELIVERY, S.DELIVERED, S.NOT_PAID_IN_TIME} == lifecycle.NOTIFY
    assert lifecycle.allowed_next(S.PAYMENT_IN_PROGRESS, A.ADMIN) == [S.PROCESSING]
    # The deadline's move (the sweep's, and the webhook's on a late payment) is the table's.
    assert lifecycle.DEADLINE_MOVE == (S.PAYMENT_IN_PROGRESS, S.NOT_PAID_IN_TIME)


def test_the_deadline_is_the_first_late_instant():
    due = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
    just_before = due - timedelta(microseconds=1)
    assert (
        lifecycle.effective_status(S.PAYMENT_IN_PROGRESS, due, just_before) == S.PAYMENT_IN_PROGRESS
    )
    assert lifecycle.effective_status(S.PAYMENT_IN_PROGRESS, due, due) == S.NOT_PAID_IN_TIME
    # Only an unpaid order expires.
    for status in (S.PROCESSING, S.IN_DELIVERY, S.DELIVERED, S.NOT_PAID_IN_TIME):
        assert lifecycle.effective_status(status, due, due + timedelta(days=1)) == status
