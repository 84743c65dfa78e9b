"""Newsletter rules: drafts, who receives, queueing a campaign, its figures, unsubscribing.

Recipients are the users who are active, confirmed (`is_verified`) and opted in
(`newsletter_opt_in`), as of the moment `send` runs. `send` queues one outbox row per
recipient in the request's transaction (multi-row INSERTs of QUEUE_BATCH rows: 10 000
recipients in well under a second on SQLite), so a campaign is queued whole or not at all,
and only once: the draft → sending step is a compare-and-set.

Turning newsletters off (the unsubscribe link, PATCH /users/me, deactivation) withdraws
the user's bulk rows not yet sent (outbox.withdraw_bulk); the dispatcher checks before
each group of bulk sends that its rows were not withdrawn.

Services never commit: the caller's session does.
"""

import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import utcnow
from app.core.cursor import newest_first_page
from app.core.errors import DomainError, NotFound
from app.newsletters.models import Newsletter
from app.newsletters.tokens import UnsubscribeTokens
from app.services.email import bulk
from app.services.email.bulk import BulkSource, ContentError
from app.services.email.outbox import (
    Outbox,
    OutboxMessage,
    OutboxState,
    Recipient,
    withdraw_bulk,
)
from app.types.enums import NewsletterStatus
from app.users.models import User

QUEUE_BATCH = 1000
TEST_TEMPLATE = "newsletter_test"  # the same frame, marked as a test; not counted


class NewsletterNotFound(NotFound):
    code = "NEWSLETTER_NOT_FOUND"
    message = "No such newsletter"
    message_ru = "Такой рассылки нет."


class NewsletterAlreadySent(DomainError):
    status_code = 409
    code = "NEWSLETTER_ALREADY_SENT"
    message = "This newsletter has already been sent; create a new one"
    message_ru = "Эта рассылка уже отправлена. Чтобы отправить ещё раз, создайте новую."


class NewsletterContentInvalid(DomainError):
    status_code = 422
    code = "NEWSLETTER_CONTENT_INVALID"
    message = "The newsletter's text cannot be rendered"
    message_ru = (
        "В тексте рассылки ошибка (где и какая — в detail). Доступные поля: {{ name }}, "
        "{{ unsubscribe_url }}."
    )


@dataclass(frozen=True, slots=True)
class Figures:
    """Where a campaign's emails are: final once `sent`, read from the outbox before."""

    status: NewsletterStatus
    recipients: int
    sent: int
    failed: int
    withdrawn: int
    pending: int


@dataclass(frozen=True, slots=True)
class Newsletters:
    """The newsletter rules of one app (`app.state.newsletters`)."""

    outbox: Outbox
    tokens: UnsubscribeTokens
    public_base_url: str

    @classmethod
    def from_settings(cls, settings: Any, outbox: Outbox) -> "Newsletters":
        return cls(
            outbox=outbox,
            tokens=UnsubscribeTokens(settings.SECRET_KEY.get_secret_value()),
            public_base_url=settings.PUBLIC_BASE_URL,  # no trailing slash (Settings)
        )

    def unsubscribe_url(self, user_id: uuid.UUID) -> str:
        return f"{self.public_base_url}/unsubscribe/{self.tokens.issue(user_id)}"

    def merge_fields(self, user_id: uuid.UUID, name: str) -> dict[str, Any]:
        return {"name": name, "unsubscribe_url": self.unsubscribe_url(user_id)}

    async def create(
        self, db: AsyncSession, *, author: User | None, subject: str, html: str, text: str
    ) -> Newsletter:
        try:
            bulk.compile_content(subject=subject, html=html, text=text)
        except ContentError as exc:
            raise NewsletterContentInvalid(str(exc)) from None
        # A draft: status, created_at and the zero figures are the columns' defaults.
        newsletter = Newsletter(
            subject=subject, html=html, text=text, created_by=author.id if author else None
        )
        db.add(newsletter)
        await db.flush()
        return newsletter

    async def send_test(self, db: AsyncSession, newsletter: Newsletter, to: User) -> None:
        """Queue the newsletter to one staff member, marked as a test."""
        self.outbox.add(
            db,
            to=to.email,
            template=TEST_TEMPLATE,
            data=self.merge_fields(to.id, to.name),
            user_id=to.id,
            newsletter_id=newsletter.id,
        )

    async def send(
        self,
        db: AsyncSession,
        newsletter_id: uuid.UUID,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Queue the newsletter for every recipient; returns how many. `progress` is called
        with the count queued so far after each batch (the CLI's progress bar)."""
        now = utcnow()
        claimed = await db.execute(
            update(Newsletter)
            .where(Newsletter.id == newsletter_id, Newsletter.status == NewsletterStatus.DRAFT)
            .values(status=NewsletterStatus.SENDING, sent_at=now)
        )
        if cast(CursorResult[Any], claimed).rowcount != 1:
            await get(db, newsletter_id)  # 404 if there is none
            raise NewsletterAlreadySent()
        queued = 0
        after: uuid.UUID | None = None
        while True:
            stmt = recipients_query().order_by(User.id).limit(QUEUE_BATCH)
            if after is not None:
                stmt = stmt.where(User.id > after)
            batch = (await db.execute(stmt)).all()
            if not batch:
                break
            queued += await self.outbox.add_many(
                db,
                template=bulk.TEMPLATE,
                newsletter_id=newsletter_id,
                recipients=[
                    Recipient(to=email, data=self.merge_fields(user_id, name), user_id=user_id)
                    for user_id, email, name in batch
                ],
            )
            after = batch[-1][0]
            if progress is not None:
                progress(queued)
        values: dict[str, Any] = {"recipients": queued}
        if queued == 0:
            values.update(status=NewsletterStatus.SENT, finished_at=now)
        await db.execute(update(Newsletter).where(Newsletter.id == newsletter_id).values(**values))
        return queued


def recipients_query() -> Select[tuple[uuid.UUID, str, str]]:
    """Who receives newsletters: active, confirmed, opted-in users."""
    return select(User.id, User.email, User.name).where(
        User.is_active.is_(True),
        User.is_verified.is_(True),
        User.newsletter_opt_in.is_(True),
    )


async def get(db: AsyncSession, newsletter_id: uuid.UUID) -> Newsletter:
    newsletter = await db.get(Newsletter, newsletter_id)
    if newsletter is None:
        raise NewsletterNotFound()
    return newsletter


async def list_newsletters(
    db: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[Newsletter], str | None]:
    return await newest_first_page(db, select(Newsletter), Newsletter, limit=limit, cursor=cursor)


async def figures(
    db: AsyncSession, newsletters: Collection[Newsletter]
) -> dict[uuid.UUID, Figures]:
    """Each campaign's figures: stored once it is finished, counted in the outbox (one
    grouped query for all) while it is sending."""
    live = [n.id for n in newsletters if n.status == NewsletterStatus.SENDING]
    counts: dict[uuid.UUID, dict[str, int]] = {n: {} for n in live}
    if live:
        rows = await db.execute(
            select(OutboxMessage.newsletter_id, OutboxMessage.state, func.count())
            .where(OutboxMessage.newsletter_id.in_(live), OutboxMessage.template == bulk.TEMPLATE)
            .group_by(OutboxMessage.newsletter_id, OutboxMessage.state)
        )
        for newsletter_id, state, n in rows.all():
            counts[newsletter_id][state.value] = n
    result = {}
    for n in newsletters:
        if n.id in counts:
            c = counts[n.id]
            pending = c.get(OutboxState.PENDING.value, 0)
            result[n.id] = Figures(
                status=NewsletterStatus.SENDING if pending else NewsletterStatus.SENT,
                recipients=n.recipients,
                sent=c.get(OutboxState.SENT.value, 0),
                failed=c.get(OutboxState.FAILED.value, 0),
                withdrawn=c.get(OutboxState.WITHDRAWN.value, 0),
                pending=pending,
            )
        else:
            result[n.id] = Figures(
                status=n.status,
                recipients=n.recipients,
                sent=n.delivered,
                failed=n.failed,
                withdrawn=n.withdrawn,
                pending=0,
            )
    return result


async def finish_sent(db: AsyncSession) -> int:
    """Store the final figures of campaigns whose last email left the queue (the sweep;
    before the outbox's old rows are purged); returns how many were finished."""
    sending = list(
        await db.scalars(select(Newsletter).where(Newsletter.status == NewsletterStatus.SENDING))
    )
    finished = 0
    for newsletter, figure in (await figures(db, sending)).items():
        if figure.status != NewsletterStatus.SENT:
            continue
        last_sent = await db.scalar(
            select(func.max(OutboxMessage.sent_at)).where(
                OutboxMessage.newsletter_id == newsletter, OutboxMessage.template == bulk.TEMPLATE
            )
        )
        await db.execute(
            update(Newsletter)
            .where(Newsletter.id == newsletter, Newsletter.status == NewsletterStatus.SENDING)
            .values(
                status=NewsletterStatus.SENT,
                delivered=figure.sent,
                failed=figure.failed,
                withdrawn=figure.withdrawn,
                finished_at=last_sent or utcnow(),
            )
        )
        finished += 1
    return finished


async def unsubscribe(db: AsyncSession, user_id: uuid.UUID) -> None:
    """Stop newsletters to the user: opt-in off, queued ones withdrawn. Idempotent; no
    such user (the account was deleted since the email went out) is nothing to stop."""
    user = await db.get(User, user_id)
    if user is None:
        return
    user.newsletter_opt_in = False
    await withdraw_bulk(db, user_id)


async def load_content(
    db: AsyncSession, ids: Collection[uuid.UUID]
) -> Mapping[uuid.UUID, BulkSource]:
    """The dispatcher's ContentLoader: these newsletters' content, as written."""
    rows = await db.execute(
        select(Newsletter.id, Newsletter.subject, Newsletter.html, Newsletter.text).where(
            Newsletter.id.in_(ids)
        )
    )
    return {
        newsletter_id: BulkSource(subject=subject, html=html, text=text)
        for newsletter_id, subject, html, text in rows.all()
    }
