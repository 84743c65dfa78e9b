"""Staff routes over newsletters; mounted under the gated /admin router."""

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from app.auth.deps import AdminUser
from app.core.cursor import PageCursor, PageSize
from app.core.db import SessionDep
from app.core.openapi import error_responses
from app.newsletters import service
from app.newsletters.models import Newsletter
from app.newsletters.schemas import (
    CREATE_EXAMPLES,
    NewsletterCreate,
    NewsletterPage,
    NewsletterRead,
    SendAccepted,
    TestAccepted,
)
from app.newsletters.service import Figures, Newsletters
from app.services.email import bulk
from app.services.email.preview import CONTENT_SECURITY_POLICY, preview_page
from app.services.email.render import RenderedEmail
from app.services.email.service import EmailService

router = APIRouter(prefix="/newsletters", tags=["admin: newsletters"])

NewsletterId = Annotated[uuid.UUID, PathParam(description="Идентификатор рассылки · Newsletter id")]


def _newsletters(request: Request) -> Newsletters:
    newsletters: Newsletters = request.app.state.newsletters
    return newsletters


def _read(newsletter: Newsletter, figures: Figures) -> NewsletterRead:
    return NewsletterRead(
        id=newsletter.id,
        subject=newsletter.subject,
        status=figures.status,
        recipients=figures.recipients,
        sent=figures.sent,
        failed=figures.failed,
        withdrawn=figures.withdrawn,
        pending=figures.pending,
        created_at=newsletter.created_at,
        sent_at=newsletter.sent_at,
        finished_at=newsletter.finished_at,
    )


async def _one(db: SessionDep, newsletter: Newsletter) -> NewsletterRead:
    return _read(newsletter, (await service.figures(db, [newsletter]))[newsletter.id])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=NewsletterRead,
    summary="Создать черновик рассылки · Create a newsletter draft",
    description=(
        "Черновик: тема, HTML и текст. Текст проверяется сразу: неизвестное поле или ошибка "
        "шаблона — 422 с указанием места. A draft; the content is checked at once (an "
        "unknown merge field or a template error is a 422 saying where)."
    ),
    responses=error_responses("NEWSLETTER_CONTENT_INVALID"),
)
async def create_newsletter(
    body: Annotated[NewsletterCreate, Body(openapi_examples=CREATE_EXAMPLES)],
    admin: AdminUser,
    db: SessionDep,
    request: Request,
) -> NewsletterRead:
    newsletter = await _newsletters(request).create(
        db, author=admin, subject=body.subject, html=body.html, text=body.text
    )
    return await _one(db, newsletter)


@router.get(
    "",
    response_model=NewsletterPage,
    summary="Список рассылок · List newsletters",
    description=(
        "Сначала новые, по `limit` на странице; следующая страница — с `cursor` из "
        "`next_cursor`. Newest first; pass the previous page's `next_cursor` as `cursor`."
    ),
    responses=error_responses("INVALID_CURSOR"),
)
async def list_newsletters(
    db: SessionDep,
    limit: PageSize = 20,
    cursor: PageCursor = None,
) -> NewsletterPage:
    items, next_cursor = await service.list_newsletters(db, limit=limit, cursor=cursor)
    figures = await service.figures(db, items)
    return NewsletterPage(items=[_read(n, figures[n.id]) for n in items], next_cursor=next_cursor)


@router.get(
    "/{newsletter_id}",
    response_model=NewsletterRead,
    summary="Рассылка и её цифры · A newsletter and its figures",
    description="Статус и сколько писем отправлено, не доставлено, отменено, ждёт.",
    responses=error_responses("NEWSLETTER_NOT_FOUND"),
)
async def get_newsletter(newsletter_id: NewsletterId, db: SessionDep) -> NewsletterRead:
    return await _one(db, await service.get(db, newsletter_id))


@router.get(
    "/{newsletter_id}/preview",
    # Not HTMLResponse: see app.services.email.preview (error models would read as HTML).
    response_class=Response,
    summary="Просмотр рассылки · Preview a newsletter",
    description=(
        "Письмо, каким его получит подписчик (с вашим именем и ссылкой отписки): тема, "
        "HTML-версия и текст. The email as a subscriber gets it, with your name."
    ),
    responses={
        200: {
            "description": "HTML-страница с письмом · An HTML page showing the email",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **error_responses("NEWSLETTER_NOT_FOUND"),
    },
)
async def preview_newsletter(
    newsletter_id: NewsletterId, admin: AdminUser, db: SessionDep, request: Request
) -> HTMLResponse:
    newsletter = await service.get(db, newsletter_id)
    email: EmailService = request.app.state.email
    locale = email.settings.EMAIL_LOCALE
    fields = _newsletters(request).merge_fields(admin.id, admin.name)

    def render() -> RenderedEmail:  # CPU work: in a worker thread
        content = bulk.compile_content(
            subject=newsletter.subject, html=newsletter.html, text=newsletter.text
        )
        return email.renderer.render(bulk.TEMPLATE, locale, content.render(fields))

    rendered = await asyncio.to_thread(render)
    page = preview_page(bulk.TEMPLATE, locale, rendered)
    return HTMLResponse(
        page,
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"},
    )


@router.post(
    "/{newsletter_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TestAccepted,
    summary="Тестовое письмо себе · Send a test to yourself",
    description=(
        "Ставит в очередь одно письмо на ваш адрес, с пометкой «[Тест]»; в цифры рассылки "
        "не входит. Queues one email to you, marked as a test; not counted."
    ),
    responses=error_responses("NEWSLETTER_NOT_FOUND"),
)
async def send_test(
    newsletter_id: NewsletterId, admin: AdminUser, db: SessionDep, request: Request
) -> TestAccepted:
    newsletter = await service.get(db, newsletter_id)
    await _newsletters(request).send_test(db, newsletter, admin)
    return TestAccepted(to=admin.email)


@router.post(
    "/{newsletter_id}/send",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SendAccepted,
    summary="Отправить рассылку · Send the newsletter",
    description=(
        "Ставит письмо в очередь каждому активному подтверждённому пользователю, "
        "согласившемуся на рассылку; письма уходят в фоне (цифры — в GET). Повторно — 409. "
        "Queues the email for every active, confirmed, opted-in user; delivery runs in "
        "the background. A second send is a 409."
    ),
    responses=error_responses("NEWSLETTER_NOT_FOUND", "NEWSLETTER_ALREADY_SENT"),
)
async def send_newsletter(
    newsletter_id: NewsletterId, db: SessionDep, request: Request
) -> SendAccepted:
    recipients = await _newsletters(request).send(db, newsletter_id)
    return SendAccepted(id=newsletter_id, recipients=recipients)
