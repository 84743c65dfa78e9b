"""The outbox dispatcher: claims due rows of `email_outbox`, renders and sends them.

It runs inside the app (the lifespan starts it; a request that queues email wakes it at
once, otherwise it polls every OUTBOX_POLL_SECONDS) and as `python -m app outbox run`
for deployments that want a separate worker. Any number may run over one database:

- Claiming is one UPDATE of up to OUTBOX_BATCH_SIZE due rows that sets a lease and a
  claim token; on PostgreSQL the rows are picked `FOR UPDATE SKIP LOCKED`, so two
  dispatchers never claim the same row; SQLite runs one writer at a time. A dispatcher
  that dies mid-batch leaves its rows claimable again once the lease (OUTBOX_LEASE_SECONDS)
  has passed. A dispatcher renews its lease before a send whenever less than
  SEND_TIMEOUTS × SMTP_TIMEOUT of it is left (a whole send with a fresh connection fits
  in that: connect, EHLO, STARTTLS, login, MAIL, RCPT, DATA), and goes on with only the
  rows the renewal finds still its own; settings refuse a lease shorter than
  OUTBOX_LEASE_MIN_TIMEOUTS × SMTP_TIMEOUT.
- Results are recorded only while the claim is still the dispatcher's own (claim_token):
  failures at once, successes in groups of SENT_RECORD_EVERY (one UPDATE for the group;
  a commit per message cost half the dispatcher's CPU on SQLite). A row is sent once,
  unless the process dies between the SMTP server's reply and that record: then at most
  the last group goes out again after the lease (the window any outbox has, made a
  little wider for throughput).
- A temporary failure defers the row with a backoff of 2, 4, 8 … seconds capped at
  OUTBOX_RETRY_MAX_SECONDS: a 4xx reply for a message that row alone; a server that is
  unreachable or refuses our session (ServerUnavailable: timeout, refused connection,
  wrong password, refused sender) the rest of the batch too, since no message is to
  blame. After OUTBOX_GIVE_UP_SECONDS from queueing the row fails with its last error. A
  permanent failure (a 5xx for the recipient or the content, a template that cannot
  render) fails the row at once.
- Bulk rows (newsletters, `newsletter_id` set) render the staff content `load_content`
  returns (app.services.email.bulk) and can be withdrawn while queued: before each group
  of SENT_RECORD_EVERY bulk sends the dispatcher checks they are still claimed by it.
- Between batches the loop sleeps until the earliest retry is due, a request wakes it,
  or OUTBOX_POLL_SECONDS pass (rows queued by another process are found by the poll).
"""

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import utcnow
from app.core.config import Settings
from app.services.email.bulk import BulkSource, ContentLoader
from app.services.email.composer import ComposeFailed, ComposeJob, Composer, ComposeStream
from app.services.email.outbox import ERROR_MAX_LENGTH, OutboxMessage, OutboxState
from app.services.email.sender import (
    DeliveryError,
    EmailSender,
    ServerUnavailable,
)
from app.services.email.service import EmailService

logger = logging.getLogger("app.email.outbox")

RETRY_BASE_SECONDS = 2.0
SENT_RECORD_EVERY = 10
# A send needs at most this many SMTP timeouts (connect, EHLO, STARTTLS, EHLO, login,
# MAIL, RCPT, DATA); the lease (at least OUTBOX_LEASE_MIN_TIMEOUTS of them, see the settings) must
# leave room for it.
SEND_TIMEOUTS = 8


def retry_delay(attempts: int, cap: float) -> float:
    """Seconds to wait after the `attempts`-th failed try: 2, 4, 8 … up to `cap`."""
    return min(cap, RETRY_BASE_SECONDS * 2 ** min(max(attempts, 1) - 1, 30))


@dataclass(slots=True)
class DispatchResult:
    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    withdrawn: int = 0  # bulk rows taken back before they were sent


@dataclass(slots=True)
class _Claim:
    token: uuid.UUID
    lease_until: datetime


@dataclass
class Dispatcher:
    sessionmaker: async_sessionmaker[AsyncSession]
    service: EmailService
    settings: Settings
    clock: Callable[[], datetime] = utcnow
    # The source of bulk rows' newsletters (app.newsletters gives it); without one, a
    # bulk row cannot render and fails.
    load_content: ContentLoader | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    composer: Composer = field(init=False)

    def __post_init__(self) -> None:
        self.composer = Composer(self.service, self.settings.OUTBOX_COMPOSE_PROCESSES)

    def close(self) -> None:
        """Stop the composing thread or processes (the app's shutdown calls this)."""
        self.composer.close()

    def wake(self) -> None:
        """Ask for a run now (called after a request commits queued email)."""
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set. A database or template error is logged and the loop
        goes on at the next poll; it never ends the loop."""
        while not stop.is_set():
            self._wake.clear()
            try:
                result = await self.run_once()
            except Exception:
                logger.exception("email outbox: dispatch failed; retrying at the next poll")
                result = DispatchResult()
            if result.claimed >= self.settings.OUTBOX_BATCH_SIZE and not result.deferred:
                continue  # more may be due right now
            await _wait_any(stop, self._wake, await self._idle_seconds())

    async def _idle_seconds(self) -> float:
        """Until the earliest deferred row is due, at most OUTBOX_POLL_SECONDS."""
        poll = self.settings.OUTBOX_POLL_SECONDS
        try:
            async with self.sessionmaker() as db:
                due = await db.scalar(
                    select(func.min(OutboxMessage.next_attempt_at)).where(
                        OutboxMessage.state == OutboxState.PENDING,
                        OutboxMessage.lease_until.is_(None),
                    )
                )
        except Exception:
            logger.exception("email outbox: cannot read the next retry; polling")
            return poll
        if due is None:
            return poll
        return min(poll, max(0.0, (due - self.clock()).total_seconds()))

    async def run_once(self) -> DispatchResult:
        """Claim one batch of due rows and deliver it."""
        claim, rows = await self._claim(uuid.uuid4())
        result = DispatchResult(claimed=len(rows))
        if not rows:
            return result
        contents = await self._contents(rows)
        # Rendering and building the MIME messages is CPU work, off the event loop and
        # overlapped with sending (app.services.email.composer).
        composed = self.composer.stream(
            [
                ComposeJob(
                    row_id=row.id,
                    to=row.to_address,
                    template=row.template,
                    locale=row.locale,
                    data=row.data,
                    message_id=row.message_id,
                    date=self.clock(),
                    newsletter_id=row.newsletter_id,
                    bulk=contents.get(row.newsletter_id),  # None for a row of no newsletter
                )
                for row in rows
            ]
        )
        pending = list(rows)
        sent: list[int] = []
        try:
            async with self.service.connect() as sender:
                await self._deliver(pending, composed, sender, claim, sent, result)
        finally:
            composed.cancel()
            if sent:
                await self._mark_sent(sent, claim.token)
        if result.failed or result.deferred:
            logger.warning(
                "email outbox: %d sent, %d deferred, %d failed",
                result.sent,
                result.deferred,
                result.failed,
            )
        return result

    async def _deliver(
        self,
        pending: list[Any],
        composed: ComposeStream,
        sender: EmailSender,
        claim: _Claim,
        sent: list[int],
        result: DispatchResult,
    ) -> None:
        """Send `pending` in order, removing what was dealt with. Rows whose claim was
        lost (the lease ran out and another dispatcher took them) or withdrawn (a bulk
        row whose recipient unsubscribed) are dropped: no longer ours to send. An
        unexpected error leaves the rest leased: they go out again after the lease, not
        in a tight loop."""
        token = claim.token
        ours: set[int] = set()  # bulk rows checked still ours (not withdrawn)
        send_budget = timedelta(seconds=SEND_TIMEOUTS * self.settings.SMTP_TIMEOUT)
        while pending:
            if claim.lease_until - self.clock() < send_budget:
                renewed = await self._renew(claim, [*sent, *(r.id for r in pending)])
                kept = [r for r in pending if r.id in renewed]
                if len(kept) < len(pending):
                    # Taken by another dispatcher after our lease ran out, or withdrawn.
                    logger.warning(
                        "email outbox: %d rows no longer ours mid-batch", len(pending) - len(kept)
                    )
                    pending[:] = kept
                    continue
            row = pending.pop(0)
            if row.newsletter_id is not None and row.id not in ours:
                group = [r.id for r in (row, *pending) if r.newsletter_id is not None]
                ours |= await self._still_ours(token, group[:SENT_RECORD_EVERY])
                if row.id not in ours:  # withdrawn: the recipient unsubscribed
                    result.withdrawn += 1
                    continue
            email = await composed.get(row.id)
            if isinstance(email, ComposeFailed):  # a template bug: retrying cannot help
                await self._fail(row.id, token, f"render: {email}")
                result.failed += 1
                continue
            try:
                await sender.send(email)
            except DeliveryError as exc:
                if exc.permanent:
                    await self._fail(row.id, token, str(exc))
                    result.failed += 1
                    continue
                # A 4xx for this message (greylisting, a full mailbox) defers it alone;
                # an unreachable server defers the rest of the batch with it.
                deferred = [row, *pending] if isinstance(exc, ServerUnavailable) else [row]
                for item in deferred:
                    if await self._defer(item, token, str(exc)):
                        result.deferred += 1
                    else:  # queued longer than OUTBOX_GIVE_UP_SECONDS: failed for good
                        result.failed += 1
                if isinstance(exc, ServerUnavailable):
                    pending.clear()
                    return
                continue
            sent.append(row.id)
            result.sent += 1
            if len(sent) >= SENT_RECORD_EVERY:
                await self._mark_sent(sent, token)
                sent.clear()

    async def _contents(self, rows: list[Any]) -> dict[uuid.UUID, BulkSource]:
        ids = {row.newsletter_id for row in rows if row.newsletter_id is not None}
        if not ids or self.load_content is None:
            return {}
        async with self.sessionmaker() as db:
            return dict(await self.load_content(db, ids))

    async def _claim(self, token: uuid.UUID) -> tuple[_Claim, list[Any]]:
        now = self.clock()  # the lease runs from here, before the database is asked
        claim = _Claim(token, now + timedelta(seconds=self.settings.OUTBOX_LEASE_SECONDS))
        due = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.state == OutboxState.PENDING,
                OutboxMessage.next_attempt_at <= now,
                or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(self.settings.OUTBOX_BATCH_SIZE)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer anyway
        )
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due.scalar_subquery()))
            .values(lease_until=claim.lease_until, claim_token=claim.token)
            .returning(
                OutboxMessage.id,
                OutboxMessage.message_id,
                OutboxMessage.to_address,
                OutboxMessage.template,
                OutboxMessage.locale,
                OutboxMessage.data,
                OutboxMessage.attempts,
                OutboxMessage.created_at,
                OutboxMessage.newsletter_id,
            )
        )
        async with self.sessionmaker.begin() as db:
            rows = list((await db.execute(statement)).all())
        rows.sort(key=lambda r: r.id)
        return claim, rows

    async def _still_ours(self, token: uuid.UUID, ids: list[int]) -> set[int]:
        """Of these bulk rows, those still claimed by us: a recipient who unsubscribes
        withdraws their rows (outbox.withdraw_bulk), and a withdrawn row must not be sent.
        Checked for the next SENT_RECORD_EVERY at a time, as successes are recorded: what
        is already with the SMTP server when the recipient unsubscribes goes."""
        async with self.sessionmaker() as db:
            found = await db.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.id.in_(ids), OutboxMessage.claim_token == token
                )
            )
            return set(found)

    async def _renew(self, claim: _Claim, row_ids: list[int]) -> set[int]:
        """Extend the lease of `row_ids`; returns those still ours (renewed)."""
        lease_until = self.clock() + timedelta(seconds=self.settings.OUTBOX_LEASE_SECONDS)
        async with self.sessionmaker.begin() as db:
            renewed = await db.scalars(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(row_ids), OutboxMessage.claim_token == claim.token)
                .values(lease_until=lease_until)
                .returning(OutboxMessage.id)
            )
            ours = set(renewed)
        claim.lease_until = lease_until
        return ours

    async def _finish(self, row_id: int, token: uuid.UUID, **values: object) -> None:
        """Record a result, only while the claim is still ours."""
        async with self.sessionmaker.begin() as db:
            await db.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.claim_token == token)
                .values(lease_until=None, claim_token=None, **values)
            )

    async def _mark_sent(self, row_ids: list[int], token: uuid.UUID) -> None:
        async with self.sessionmaker.begin() as db:
            await db.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(row_ids), OutboxMessage.claim_token == token)
                .values(
                    state=OutboxState.SENT,
                    sent_at=self.clock(),
                    attempts=OutboxMessage.attempts + 1,
                    data={},  # the secret (code, link) is no longer needed
                    last_error=None,
                    lease_until=None,
                    claim_token=None,
                )
            )

    async def _fail(self, row_id: int, token: uuid.UUID, error: str) -> None:
        await self._finish(
            row_id,
            token,
            state=OutboxState.FAILED,
            attempts=OutboxMessage.attempts + 1,
            data={},
            last_error=_bounded(error),
        )

    async def _defer(self, row: Any, token: uuid.UUID, error: str) -> bool:
        """Retry the row later (True), or fail it if it has waited OUTBOX_GIVE_UP_SECONDS (False)."""
        attempts = row.attempts + 1
        now = self.clock()
        if (now - row.created_at).total_seconds() >= self.settings.OUTBOX_GIVE_UP_SECONDS:
            await self._fail(row.id, token, f"gave up after {attempts} attempts: {error}")
            return False
        delay = retry_delay(attempts, self.settings.OUTBOX_RETRY_MAX_SECONDS)
        await self._finish(
            row.id,
            token,
            attempts=attempts,
            next_attempt_at=now + timedelta(seconds=delay),
            last_error=_bounded(error),
        )
        return True


async def outbox_counts(db: AsyncSession) -> dict[str, int]:
    """Rows by state (for `python -m app outbox status` and the health of the queue)."""
    rows = await db.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state))
    counts = {state.value: 0 for state in OutboxState}
    counts.update({state.value: n for state, n in rows.all()})
    return counts


def _bounded(error: str) -> str:
    line = " ".join(error.split())
    return line[:ERROR_MAX_LENGTH]


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
