"""/docs and /redoc are served with local assets only; the schema reads well for QA."""

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from app.auth.cookie import COOKIE_NAME
from app.docs import ASSETS_URL
from app.main import OPENAPI_TAGS

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def referenced_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    name = ref.removeprefix("#/components/schemas/")
    return schema["components"]["schemas"][name]


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
async def test_docs_pages_load_only_local_assets(client, page, assets):
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "://" not in html  # no CDN, no Google Fonts: nothing absolute at all
    urls = set(referenced_urls(html))
    assert urls == {f"{ASSETS_URL}/{name}" for name in assets}
    assert "'/openapi.json'" in html or 'spec-url="/openapi.json"' in html

    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "img-src 'self' data:" in policy

    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].startswith(ASSET_TYPES[suffix]), url
        assert len(asset.content) > 1000, url


async def test_swagger_ui_sends_the_cookie_and_asks_no_validator(client):
    html = (await client.get("/docs")).text
    assert '"withCredentials": true' in html
    assert '"validatorUrl": null' in html
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in html


async def test_swagger_ui_is_version_5(client):
    # Swagger UI 4 (what swagger-ui-bundle ships) cannot render FastAPI's OpenAPI 3.1 schema.
    swagger = (await client.get(f"{ASSETS_URL}/swagger-ui-bundle.js")).text
    assert re.search(r'PACKAGE_VERSION:"5\.\d+\.\d+"', swagger)


async def test_oauth2_redirect_page_is_served(client):
    response = await client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert "oauth2" in response.text.lower()


async def test_the_favicon_is_a_png(client):
    response = await client.get(f"{ASSETS_URL}/favicon.png")
    assert response.status_code == 200
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


async def test_every_operation_has_a_written_summary(app, client):
    """Not the one FastAPI makes up from the route name, like "Auth:Cookie.Login"."""
    written = {
        (method, context.path): context.summary
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.include_in_schema
        for method in context.methods
    }
    schema = (await client.get("/openapi.json")).json()
    listed = {(method, path): op["summary"] for method, path, op in operations(schema)}
    assert listed.keys() == written.keys()
    missing = sorted(key for key, summary in written.items() if not summary)
    assert missing == []
    assert listed == written
    assert listed[("POST", "/auth/login")] == "Вход · Log in"
    # labels are Russian first, English second
    assert all(" · " in summary for summary in listed.values()), listed


async def test_every_operation_has_one_declared_tag(client):
    schema = (await client.get("/openapi.json")).json()
    declared = [tag["name"] for tag in schema["tags"]]
    assert declared == [tag["name"] for tag in OPENAPI_TAGS]
    for method, path, operation in operations(schema):
        assert len(operation.get("tags", [])) == 1, (method, path)
        assert operation["tags"][0] in declared, (method, path)
    for tag in schema["tags"]:
        assert " · " in tag["description"]  # Russian · English


async def test_every_request_body_has_an_example(client):
    schema = (await client.get("/openapi.json")).json()
    without = []
    for method, path, operation in operations(schema):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            body = resolve(schema, media["schema"])
            if not ("example" in media or "examples" in media or "examples" in body):
                without.append((method, path))
    assert without == []


async def test_the_examples_register_and_log_in(client):
    """QA can press Execute on register, then on login, without typing anything."""
    schema = (await client.get("/openapi.json")).json()
    register_body = schema["components"]["schemas"]["UserCreate"]["examples"][0]
    login_media = schema["paths"]["/auth/login"]["post"]["requestBody"]["content"][
        "application/x-www-form-urlencoded"
    ]
    login_form = login_media["example"]
    fields = login_media["schema"]["properties"]
    assert fields["username"]["examples"] == [login_form["username"]]
    assert fields["password"]["examples"] == [login_form["password"]]

    assert (await client.post("/auth/register", json=register_body)).status_code == 201
    assert (await client.post("/auth/login", data=login_form)).status_code == 204
    me = await client.get("/users/me")
    assert me.status_code == 200
    assert me.json()["email"] == register_body["email"]


async def test_the_session_cookie_is_a_declared_security_scheme(client):
    schema = (await client.get("/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    cookie_schemes = [
        name for name, s in schemes.items()
        if s == {"type": "apiKey", "in": "cookie", "name": COOKIE_NAME}
    ]
    assert len(cookie_schemes) == 1
    me = schema["paths"]["/users/me"]["get"]
    assert me["security"] == [{cookie_schemes[0]: []}]
    assert "security" not in schema["paths"]["/auth/register"]["post"]
