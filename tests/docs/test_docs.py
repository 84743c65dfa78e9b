"""/docs and /redoc are served with local assets only (the schema itself: test_contract)."""

import re

import pytest

from app.docs import ASSETS_URL

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def referenced_urls(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)


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
