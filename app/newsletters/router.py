"""Unsubscribe by link: `GET /unsubscribe/{token}` shows a page with one button; `POST`
unsubscribes (the button, and RFC 8058 one-click from the mailbox provider).

No cookie, no login: the signed token is the authority, and all it can do is stop
newsletters. The POST takes any body (providers send `List-Unsubscribe=One-Click`) and is
idempotent. Browsers (Accept: text/html) get pages; other clients get JSON, errors in the
one error model.
"""

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from app.core.db import SessionDep
from app.core.errors import NotFound, error_response
from app.core.openapi import error_responses
from app.newsletters import service
from app.newsletters.service import Newsletters

router = APIRouter(prefix="/unsubscribe", tags=["newsletters"])

# The pages run no script and load nothing.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


class UnsubscribeLinkInvalid(NotFound):
    """A token this service did not sign (or signed with another SECRET_KEY): 404, like
    any path naming nothing."""

    code = "UNSUBSCRIBE_LINK_INVALID"
    message = "This unsubscribe link is not valid"
    message_ru = (
        "Ссылка для отписки недействительна. Скопируйте её из письма целиком или отпишитесь "
        "в настройках профиля."
    )


class Unsubscribed(BaseModel):
    status: str = Field(description="Всегда `unsubscribed` · Always `unsubscribed`")


Token = Annotated[
    str,
    PathParam(
        max_length=64,
        description="Ключ из ссылки в письме · The token from the email's link",
        examples=["d65p3CsEREahK8dgVBsK_w7neOtnjduKqJrw0fesQJ4"],
    ),
]

_STYLE = (
    "body{margin:0;padding:48px 16px;background:#f3f4f6;font-family:system-ui,sans-serif;"
    "color:#111827}main{max-width:480px;margin:0 auto;background:#fff;padding:32px;"
    "border-radius:8px}h1{font-size:22px;margin:0 0 12px}p{line-height:1.5}"
    "button{font-size:16px;padding:12px 20px;border:0;border-radius:6px;background:#1d4ed8;"
    "color:#fff;cursor:pointer}.en{color:#6b7280;font-size:14px}"
)
_HTML_200: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Страница (Accept: text/html) или JSON · A page (browsers) or JSON",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    page = f"""<!DOCTYPE html>
<html lang="ru">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body><main>
{body}
</main></body>
</html>
"""
    return HTMLResponse(
        page,
        status_code=status_code,
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",  # the token is in the URL
        },
    )


def _invalid(request: Request) -> Response:
    error = UnsubscribeLinkInvalid()
    if _wants_html(request):
        return _page(
            "Ссылка недействительна",
            f"<h1>Ссылка недействительна</h1><p>{escape(error.message_ru)}</p>"
            f'<p class="en">{escape(error.message)}.</p>',
            error.status_code,
        )
    return error_response(request, error.code, error.message, error.status_code)


def _newsletters(request: Request) -> Newsletters:
    newsletters: Newsletters = request.app.state.newsletters
    return newsletters


@router.get(
    "/{token}",
    response_class=Response,
    summary="Страница отписки · The unsubscribe page",
    description=(
        "Страница с одной кнопкой «Отписаться» (ничего не меняет сама по себе: почтовые "
        "программы открывают ссылки заранее). A page with one button; opening it changes "
        "nothing (mail scanners open links)."
    ),
    responses={**_HTML_200, **error_responses("UNSUBSCRIBE_LINK_INVALID")},
)
async def unsubscribe_page(token: Token, request: Request) -> Response:
    if _newsletters(request).tokens.read(token) is None:
        return _invalid(request)
    return _page(
        "Отписаться от рассылки",
        "<h1>Отписаться от рассылки?</h1>"
        "<p>Вы больше не будете получать рассылку магазина. Письма о заказах и безопасности "
        "аккаунта продолжат приходить.</p>"
        '<p class="en">Stop the shop\'s newsletters? Order and security emails still come.</p>'
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Отписаться · Unsubscribe</button></form>',
    )


@router.post(
    "/{token}",
    response_model=Unsubscribed,
    summary="Отписаться от рассылки · Unsubscribe",
    description=(
        "Отписка в один клик (RFC 8058): без cookie и входа, повторный запрос — тоже 200. "
        "Отменяет и ещё не отправленные письма рассылок. One-click unsubscribe: no cookie, "
        "idempotent; newsletters not yet sent are withdrawn too."
    ),
    responses={
        200: {
            "description": "Отписан · Unsubscribed",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **error_responses("UNSUBSCRIBE_LINK_INVALID"),
    },
)
async def unsubscribe(token: Token, request: Request, db: SessionDep) -> Response:
    user_id = _newsletters(request).tokens.read(token)
    if user_id is None:
        return _invalid(request)
    # A token for an account that no longer exists: nothing to stop, same answer.
    await service.unsubscribe(db, user_id)
    if _wants_html(request):
        return _page(
            "Вы отписались",
            "<h1>Вы отписались от рассылки</h1>"
            "<p>Больше писем рассылки не будет. Подписаться снова можно в профиле.</p>"
            '<p class="en">You will get no more newsletters; subscribe again in your '
            "profile.</p>",
        )
    return JSONResponse(Unsubscribed(status="unsubscribed").model_dump())
