"""`python -m app newsletter send --subject S --html-file F --text-file F [--no-deliver]`:
a newsletter from the shell, as staff send one through /admin/newsletters.

Creates the draft (the same checks as the API: merge fields, sandbox, sizes), queues it
for every active, confirmed, opted-in user with a progress bar, then delivers it with a
dispatcher of its own (alongside any other: claims keep them apart) and a second bar,
until no email of it is pending. `--no-deliver` leaves delivery to the app's dispatcher
or `python -m app outbox run`. Ctrl-C while delivering stops this process only: what is
left stays queued. The bars go to stderr and only on a terminal.
"""

import argparse
import asyncio
import contextlib
import uuid
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tqdm import tqdm

from app.cli.common import BAD_INPUT, Command, CommandError, database, validated
from app.core.config import Settings, get_settings
from app.newsletters import service
from app.newsletters.schemas import NewsletterCreate
from app.newsletters.service import Figures, NewsletterContentInvalid, Newsletters
from app.services.email.dispatcher import Dispatcher
from app.services.email.outbox import Outbox
from app.services.email.service import EmailService

# Read before validation; the schema's own bounds are smaller.
FILE_MAX_BYTES = 1_000_000


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > FILE_MAX_BYTES:
            raise CommandError(f"{path}: larger than {FILE_MAX_BYTES} bytes", BAD_INPUT)
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{path}: {exc.strerror}", BAD_INPUT) from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text", BAD_INPUT) from None


async def _figures(
    sessionmaker: async_sessionmaker[AsyncSession], newsletter_id: uuid.UUID
) -> Figures:
    async with sessionmaker() as db:
        newsletter = await service.get(db, newsletter_id)
        return (await service.figures(db, [newsletter]))[newsletter_id]


async def _deliver(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    newsletter_id: uuid.UUID,
    queued: int,
) -> Figures:
    dispatcher = Dispatcher(
        sessionmaker, EmailService(settings), settings, load_content=service.load_content
    )
    with (
        tqdm(total=queued, desc="delivered", unit="email", disable=None) as bar,
        contextlib.closing(dispatcher),
    ):
        while True:
            result = await dispatcher.run_once()
            figures = await _figures(sessionmaker, newsletter_id)
            bar.update(queued - figures.pending - bar.n)
            if figures.pending == 0:
                return figures
            if not result.claimed or result.deferred:  # wait for the next retry to be due
                await asyncio.sleep(min(1.0, settings.OUTBOX_POLL_SECONDS))


async def _send(args: argparse.Namespace) -> str:
    settings = get_settings()
    body = validated(
        NewsletterCreate,
        subject=args.subject,
        html=_read(args.html_file),
        text=_read(args.text_file),
    )
    newsletters = Newsletters.from_settings(
        settings, Outbox(settings.EMAIL_FROM, settings.EMAIL_LOCALE)
    )
    async with database() as sessionmaker:
        async with sessionmaker.begin() as db:
            try:
                draft = await newsletters.create(
                    db, author=None, subject=body.subject, html=body.html, text=body.text
                )
            except NewsletterContentInvalid as exc:
                raise CommandError(
                    f"the newsletter cannot be rendered: {exc.message}", BAD_INPUT
                ) from None
            total = await db.scalar(
                select(func.count()).select_from(service.recipients_query().subquery())
            )
            with tqdm(total=total, desc="queued", unit="email", disable=None) as bar:
                queued = await newsletters.send(
                    db, draft.id, progress=lambda n: bar.update(n - bar.n)
                )
        head = f"newsletter {draft.id}: {queued} emails queued"
        if args.no_deliver or queued == 0:
            return head
        try:
            figures = await _deliver(sessionmaker, settings, draft.id, queued)
        except (KeyboardInterrupt, asyncio.CancelledError):
            return f"{head}; delivery interrupted: the rest stays queued"
    return f"{head}; sent {figures.sent}, failed {figures.failed}, withdrawn {figures.withdrawn}"


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    send = actions.add_parser("send", help="create a newsletter, queue it and deliver it")
    send.add_argument("--subject", required=True, help="the subject (merge fields allowed)")
    send.add_argument("--html-file", type=Path, required=True, help="the HTML part (a fragment)")
    send.add_argument("--text-file", type=Path, required=True, help="the plain-text part")
    send.add_argument(
        "--no-deliver", action="store_true", help="only queue; the app's dispatcher delivers"
    )


def run(args: argparse.Namespace) -> str:
    return asyncio.run(_send(args))


COMMAND = Command(
    name="newsletter",
    help="send a newsletter to every opted-in user (send)",
    description=(
        "send: create a newsletter from a subject and two files (HTML fragment, plain text;"
        " merge fields {{ name }} and {{ unsubscribe_url }}), queue it for every active,"
        " confirmed, opted-in user and deliver it, with progress bars."
    ),
    configure=configure,
    run=run,
)
