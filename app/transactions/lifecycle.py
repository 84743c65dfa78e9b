"""The one transition table of an order's status, and the deadline rule.

Every path that changes a status (staff, the payment webhook, the payment deadline)
asks this module, and the service applies the answer as a compare-and-set. Nothing else
in the code names a pair of statuses.

    payment_in_progress ──(payment: webhook, admin)──▶ processing ──(admin)──▶ in_delivery
            │                                                                    │
            └──(deadline passed: system)──▶ not_paid_in_time (final)    (admin) ─┘─▶ delivered (final)

The deadline: an order is payable while `now < payment_due_at`; from that instant on it
is `not_paid_in_time`, whether or not the sweep has written it yet (`effective_status`).
"""

from collections.abc import Mapping
from datetime import datetime

from app.types.enums import TransactionActor, TransactionStatus

S = TransactionStatus
A = TransactionActor

INITIAL = S.PAYMENT_IN_PROGRESS

# from → {to: who may make that move}
TRANSITIONS: Mapping[S, Mapping[S, frozenset[A]]] = {
    S.PAYMENT_IN_PROGRESS: {
        S.PROCESSING: frozenset({A.WEBHOOK, A.ADMIN}),
        S.NOT_PAID_IN_TIME: frozenset({A.SYSTEM}),
    },
    S.PROCESSING: {S.IN_DELIVERY: frozenset({A.ADMIN})},
    S.IN_DELIVERY: {S.DELIVERED: frozenset({A.ADMIN})},
    S.NOT_PAID_IN_TIME: {},
    S.DELIVERED: {},
}

# The one move the system makes, when the payment deadline passes (the sweep, and any
# change that finds an order overdue), read from the table.
(DEADLINE_MOVE,) = [
    (from_status, to_status)
    for from_status, moves in TRANSITIONS.items()
    for to_status, actors in moves.items()
    if A.SYSTEM in actors
]

FINAL = frozenset(status for status, moves in TRANSITIONS.items() if not moves)

# The customer is emailed when their order reaches one of these.
NOTIFY = frozenset({S.IN_DELIVERY, S.DELIVERED, S.NOT_PAID_IN_TIME})

# The order statuses are listed in: the lifecycle's own order, for stable answers.
_ORDER = list(S)


def allowed_next(status: S, actor: A) -> list[S]:
    """The statuses `actor` may move an order in `status` to (empty when final)."""
    moves = TRANSITIONS[status]
    return sorted((to for to, actors in moves.items() if actor in actors), key=_ORDER.index)


def may_move(from_status: S, to_status: S, actor: A) -> bool:
    return actor in TRANSITIONS[from_status].get(to_status, frozenset())


def is_overdue(status: S, payment_due_at: datetime, now: datetime) -> bool:
    """An unpaid order whose deadline has come: it reads (and is written) not_paid_in_time."""
    return status == DEADLINE_MOVE[0] and now >= payment_due_at


def effective_status(status: S, payment_due_at: datetime, now: datetime) -> S:
    """The status as of `now`: the stored one, or not_paid_in_time once overdue."""
    return DEADLINE_MOVE[1] if is_overdue(status, payment_due_at, now) else status
