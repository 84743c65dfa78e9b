"""Self-hosted API docs for QA: Swagger UI at /docs and ReDoc at /redoc, no CDN.

The JavaScript, CSS and favicon come from the `fastapi-offline` package, which ships current
Swagger UI 5 and ReDoc 2 builds; only its static files are used, the pages are FastAPI's own.
Also here: readable summaries and a login form example for the routes fastapi-users builds,
whose generated summaries read like "Auth:Cookie.Login".
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
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.staticfiles import StaticFiles

from app.users.schemas import UserCreate

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


# The registration example's credentials: QA can Execute register, then login, as shown.
_registration = UserCreate.model_config["json_schema_extra"]["examples"][0]  # type: ignore[index]
LOGIN_FORM_EXAMPLE = {"username": _registration["email"], "password": _registration["password"]}

# (method, path) → what the operation shows, for routes whose decorator is not ours.
OPERATION_DOCS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/auth/register"): {
        "summary": "Регистрация · Register",
        "description": "Creates a customer account. Then log in with `POST /auth/login`.",
    },
    ("POST", "/auth/login"): {
        "summary": "Вход · Log in",
        "description": (
            "Form fields: `username` is the email, `password`. On success (204, empty body) "
            "the HttpOnly session cookie is set, and every later request from this page "
            "is signed in."
        ),
        "openapi_extra": {
            "requestBody": {
                "content": {
                    "application/x-www-form-urlencoded": {
                        "example": LOGIN_FORM_EXAMPLE,
                        # OpenAPI 3.1 allows keywords beside the generated `$ref`: these narrow
                        # the six OAuth2 form fields to the two that matter, with examples, and
                        # Swagger UI's "Try it out" shows just these two, filled in.
                        "schema": {
                            "required": ["username", "password"],
                            "properties": {
                                "username": {
                                    "type": "string",
                                    "format": "email",
                                    "examples": [LOGIN_FORM_EXAMPLE["username"]],
                                },
                                "password": {
                                    "type": "string",
                                    "format": "password",
                                    "examples": [LOGIN_FORM_EXAMPLE["password"]],
                                },
                            },
                        },
                    }
                }
            }
        },
    },
    ("POST", "/auth/logout"): {
        "summary": "Выход · Log out",
        "description": "Ends this session and clears the cookie.",
    },
}


def describe_operations(app: FastAPI) -> None:
    """Apply OPERATION_DOCS to the app's routes (the fastapi-users routers are built once at
    import, so this sets the same values again for every app). Call it before the first
    `app.openapi()`: FastAPI caches the schema and the included routes' copies of these."""
    routes: dict[tuple[str, str], APIRoute] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            for method in route.methods:
                routes[(method, context.path)] = route
    for key, attributes in OPERATION_DOCS.items():
        if key not in routes:
            raise RuntimeError(f"OPERATION_DOCS names a missing operation: {key}")
        for name, value in attributes.items():
            setattr(routes[key], name, value)


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /docs/oauth2-redirect and /redoc with local assets.
    The app must be built with `docs_url=None, redoc_url=None`."""
    describe_operations(app)
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
