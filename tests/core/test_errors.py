"""Bad input of any kind: a 4xx JSON error with a stable code, never a 500 or a trace."""

import httpx
import pytest
from fastapi import APIRouter

from tests.helpers import make_admin, new_user_data, signed_in


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/nope", {}, 404, "NOT_FOUND"),
        ("DELETE", "/healthz", {}, 405, "METHOD_NOT_ALLOWED"),
        ("POST", "/auth/register", {"content": b"{not json"}, 422, "VALIDATION_ERROR"),
        ("POST", "/auth/register", {"content": b"[]"}, 422, "VALIDATION_ERROR"),
        ("POST", "/auth/register", {"json": {"email": 5}}, 422, "VALIDATION_ERROR"),
        ("POST", "/auth/login", {"content": b"\xff\xfe"}, 422, "VALIDATION_ERROR"),
        ("GET", "/users/me/sessions", {}, 401, "UNAUTHORIZED"),
    ],
)
async def test_errors_have_a_stable_code(client, method, path, kwargs, status, code):
    response = await client.request(method, path, **kwargs)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == code


async def test_validation_errors_do_not_echo_input(client):
    response = await client.post(
        "/auth/register",
        json={"email": "bad", "password": "s3cret-value-123", "name": "", "phone": "x"},
    )
    assert response.status_code == 422
    assert "s3cret-value-123" not in response.text
    assert {tuple(e["loc"]) for e in response.json()["detail"]} >= {
        ("body", "email"),
        ("body", "name"),
        ("body", "phone"),
    }


async def test_bad_input_on_authenticated_routes(client):
    await signed_in(client)
    for path in ("/users/me/sessions/not-a-uuid",):
        response = await client.delete(path)
        assert response.status_code == 422
    response = await client.patch(
        "/users/me", content=b"{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_unexpected_errors_are_a_json_500_without_details(make_app):
    app = make_app()
    boom = APIRouter()

    @boom.get("/boom")
    async def explode() -> None:
        raise RuntimeError("secret internals")

    app.include_router(boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://shop.test") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "code": "INTERNAL_ERROR",
        "detail": "Internal server error",
        "message": "Внутренняя ошибка сервера. Мы уже разбираемся.",
    }
    assert "secret internals" not in response.text


async def test_nul_and_control_characters_never_reach_the_database(app, client):
    # PostgreSQL cannot store NUL: without these checks each of these was a 500 there.
    response = await client.post(
        "/auth/login", data={"username": "a\x00b@example.com", "password": "whatever long"}
    )
    assert response.status_code == 400
    response = await client.post("/auth/register", json=new_user_data(name="Ив\x00ан"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
    me = await signed_in(client)
    assert (await client.patch("/users/me", json={"name": "tab\there"})).status_code == 422
    await make_admin(app, me["email"])
    response = await client.get("/admin/users", params={"q": "a\x00"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "q"]
