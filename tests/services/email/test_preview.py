"""The staff preview route, on a small app of its own until /admin mounts it."""

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from app.core.config import load_settings
from app.core.errors import install_error_handlers
from app.core.openapi import ERROR_REF, error_responses
from app.services.email import preview
from app.services.email.samples import SAMPLES
from app.services.email.service import EmailService


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    settings = load_settings(env_file=None, SECRET_KEY=secrets.token_urlsafe(48))
    app.state.email = EmailService(settings)
    app.include_router(preview.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://shop.test") as client:
        yield client


@pytest.mark.parametrize(
    ("locale", "subject"), [("ru", "Подтвердите адрес почты"), ("en", "Confirm your email address")]
)
async def test_preview_shows_the_template_with_sample_data(client, locale, subject):
    response = await client.get(f"/emails/preview/confirmation_code?locale={locale}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    code = SAMPLES["confirmation_code"]["code"]
    assert f"<title>{subject}</title>" in response.text
    assert f"<h1>{subject}</h1>" in response.text
    assert code in response.text
    assert "<iframe" in response.text and "srcdoc=" in response.text
    assert "&lt;p class=&quot;code&quot; style=&quot;" in response.text  # the inlined HTML
    assert f"\n    {code}\n" in response.text  # the text part
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_preview_defaults_to_russian(client):
    response = await client.get("/emails/preview/password_changed")
    assert response.status_code == 200 and "Пароль от вашего аккаунта изменён" in response.text


async def test_every_template_has_a_preview(client):
    for name in SAMPLES:
        assert (await client.get(f"/emails/preview/{name}?locale=en")).status_code == 200


async def test_unknown_template_is_404_with_its_code(client):
    response = await client.get("/emails/preview/no_such_email")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "EMAIL_TEMPLATE_NOT_FOUND"
    assert body["message"] == "Такого шаблона письма нет."
    layout = await client.get("/emails/preview/_layout")
    assert layout.status_code == 404


async def test_unknown_locale_is_422(client):
    response = await client.get("/emails/preview/confirmation_code?locale=de")
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_ERROR"


def test_the_route_is_described_for_the_docs():
    """As /admin mounts it: the gate's own errors must stay JSON beside the HTML page."""
    admin = APIRouter(prefix="/admin", responses=error_responses("UNAUTHORIZED"))
    admin.include_router(preview.router)
    app = FastAPI()
    app.include_router(admin)
    operation = app.openapi()["paths"]["/admin/emails/preview/{template}"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["text/html"]
    assert list(operation["responses"]["401"]["content"]) == ["application/json"]
    assert operation["summary"].startswith("Просмотр письма · ")
    assert "text/html" in operation["responses"]["200"]["content"]
    not_found = operation["responses"]["404"]["content"]
    assert list(not_found) == ["application/json"]  # errors are JSON, not the page's HTML
    assert not_found["application/json"]["schema"] == ERROR_REF
    assert "EMAIL_TEMPLATE_NOT_FOUND" in not_found["application/json"]["examples"]
    [path_param] = [p for p in operation["parameters"] if p["in"] == "path"]
    assert "Имя шаблона" in path_param["description"]
