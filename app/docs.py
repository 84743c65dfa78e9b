"""Self-hosted API docs for QA: Swagger UI at /docs and ReDoc at /redoc, no CDN.

The JavaScript, CSS and favicon come from the `fastapi-offline` package, which ships current
Swagger UI 5 and ReDoc 2 builds; only its static files are used, the pages are FastAPI's own.
Also here: the schema those pages show (`install_openapi`): the error catalogue in the
API description, the errors shared by every route, and what the cookie security scheme
means for someone on the page.
"""

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.core.errors import CATALOGUE
from app.core.openapi import describe_shared_errors

ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/static/docs"
DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"

SWAGGER_UI_PARAMETERS: dict[str, Any] = {
    # Send the session cookie with "Try it out" requests, so logging in on the page works.
    "withCredentials": True,
    # Swagger UI would otherwise ask validator.swagger.io to check the schema.
    "validatorUrl": None,
    "displayRequestDuration": True,
}

# The docs pages may load nothing from other hosts; the browser refuses what would.
# ReDoc 2.5 shows a Redocly logo from its CDN that no option turns off: this blocks it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:"
)


def same_origin_only(response: HTMLResponse) -> HTMLResponse:
    """The docs page with the policy that keeps it on this host."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


SECURITY_SCHEME_DESCRIPTION = (
    "Кнопка Authorize не нужна: выполните `POST /auth/login` на этой странице, и браузер "
    "сам сохранит HttpOnly-cookie сеанса и будет отправлять её со всеми запросами. "
    "Вставить cookie сюда нельзя: браузер не позволяет странице задавать заголовок Cookie. "
    "· You don't need the Authorize button: run `POST /auth/login` on this page and the "
    "browser keeps the HttpOnly session cookie and sends it with every request. Pasting a "
    "token here does nothing: browsers don't let a page set the Cookie header. From a "
    "terminal: `curl -c jar -b jar` (see the README's QA section)."
)


def error_catalogue_markdown() -> str:
    """Every stable error code, its status and meaning: generated from the catalogue."""
    rows = [
        f"| `{spec.code}` | {spec.status} | {spec.ru} | {spec.en} |"
        for spec in sorted(CATALOGUE.values(), key=lambda s: (s.status, s.code))
    ]
    return "\n".join(["| Код · Code | HTTP | Значение | Meaning |", "|---|---|---|---|", *rows])


def install_openapi(app: FastAPI) -> None:
    """The schema the app serves: shared errors declared on every operation they apply
    to, the error catalogue in the description, and a security scheme that says how
    signing in really works."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=f"{app.description}\n\n## Коды ошибок · Error codes\n\n"
                f"{error_catalogue_markdown()}",
                routes=app.routes,
                tags=app.openapi_tags,
            )
            for scheme in schema.get("components", {}).get("securitySchemes", {}).values():
                scheme["description"] = SECURITY_SCHEME_DESCRIPTION
            app.openapi_schema = describe_shared_errors(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /docs/oauth2-redirect and /redoc with local assets.
    The app must be built with `docs_url=None, redoc_url=None`."""
    install_openapi(app)
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    def prefix(request: Request) -> str:
        """The path a proxy serves the app under, if any."""
        return request.scope.get("root_path", "").rstrip("/")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = prefix(request)
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} · Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
        return same_origin_only(page)

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return same_origin_only(get_swagger_ui_oauth2_redirect_html())

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = prefix(request)
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} · ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        return same_origin_only(page)
