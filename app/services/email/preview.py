"""Staff preview of the email templates: each rendered with its sample data.

Mounted under the gated /admin router. The page shows the subject, the HTML part as a
mail client would (in a sandboxed frame, so the email's styles stay its own) and the text
part. The renderer is the app's `EmailService` (`app.state.email`).
"""

from html import escape
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from app.core.errors import NotFound
from app.core.openapi import error_responses
from app.services.email.render import RenderedEmail, TemplateRenderer, UnknownTemplate
from app.services.email.samples import SAMPLES

router = APIRouter(prefix="/emails", tags=["admin: emails"])

# The page runs no script and loads nothing; the email in the frame inherits this policy.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


class EmailTemplateNotFound(NotFound):
    code = "EMAIL_TEMPLATE_NOT_FOUND"
    message = "No such email template"
    message_ru = "Такого шаблона письма нет."


TemplateName = Annotated[
    str,
    PathParam(
        max_length=64,
        description="Имя шаблона письма · Email template name",
        examples=["confirmation_code"],
    ),
]
Locale = Annotated[Literal["ru", "en"], Query(description="Язык письма · The email's language")]


def preview_page(template: str, locale: str, email: RenderedEmail) -> str:
    subject = escape(email.subject)
    return f"""<!DOCTYPE html>
<html lang="{locale}">
<head>
<meta charset="utf-8">
<title>{subject}</title>
<style>
body {{ margin: 0; padding: 16px; font-family: system-ui, sans-serif; background: #e5e7eb; }}
header, section {{ max-width: 720px; margin: 0 auto 16px; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }}
.meta {{ color: #4b5563; font-size: 14px; }}
iframe {{ width: 100%; height: 640px; border: 1px solid #9ca3af; background: #fff; }}
pre {{ white-space: pre-wrap; background: #fff; padding: 16px; border: 1px solid #9ca3af; }}
</style>
</head>
<body>
<header>
<h1>{subject}</h1>
<p class="meta">{escape(template)} · {locale} · образец данных · sample data</p>
</header>
<section>
<iframe title="HTML" sandbox srcdoc="{escape(email.html, quote=True)}"></iframe>
</section>
<section>
<pre>{escape(email.text)}</pre>
</section>
</body>
</html>
"""


def _renderer(request: Request) -> TemplateRenderer:
    renderer: TemplateRenderer = request.app.state.email.renderer
    return renderer


@router.get(
    "/preview/{template}",
    # Not HTMLResponse: FastAPI lists every declared error model under the route's media
    # type, so the /admin gate's 401/403 would read as text/html. The 200 says text/html.
    response_class=Response,
    summary="Просмотр письма · Preview an email",
    description=(
        "Шаблон письма с образцом данных: тема, HTML-версия, как её покажет почтовая "
        "программа, и текстовая версия. The template rendered with sample data: the "
        "subject, the HTML part as a mail client shows it, and the text part."
    ),
    responses={
        200: {
            "description": "HTML-страница с письмом · An HTML page showing the email",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **error_responses("EMAIL_TEMPLATE_NOT_FOUND"),
    },
)
def preview_email(template: TemplateName, request: Request, locale: Locale = "ru") -> HTMLResponse:
    # A plain def: rendering is CPU work, so FastAPI runs it in its thread pool.
    try:
        # A template without a sample fails on its missing variables (a test prevents it).
        email = _renderer(request).render(template, locale, SAMPLES.get(template, {}))
    except UnknownTemplate:
        raise EmailTemplateNotFound() from None
    return HTMLResponse(
        preview_page(template, locale, email),
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"},
    )
