"""POST /auth/login and the cookie it sets."""

import jwt
import pytest

from app.auth.cookie import COOKIE_NAME
from app.core.errors import CATALOGUE
from app.core.security import SESSION_AUDIENCE
from tests.conftest import TEST_SECRET, client_for
from tests.helpers import PASSWORD, login, register, session_cookie


def cookie_attributes(header: str) -> dict[str, str]:
    parts = [p.strip() for p in header.split(";")]
    attrs = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        attrs[key.lower()] = value
    return attrs


async def test_login_sets_the_session_cookie(client):
    user = await register(client)
    response = await login(client, user["email"])
    assert response.status_code == 204
    header = session_cookie(response)
    assert header is not None
    attrs = cookie_attributes(header)
    assert "httponly" in attrs
    assert "secure" in attrs
    assert attrs["samesite"].lower() == "lax"
    assert attrs["path"] == "/"
    assert "domain" not in attrs
    assert attrs["max-age"] == "604800"
    assert len(response.headers.get_list("set-cookie")) == 1


async def test_the_cookie_is_a_session_jwt(client):
    user = await register(client)
    response = await login(client, user["email"])
    token = response.cookies[COOKIE_NAME]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"], audience=SESSION_AUDIENCE)
    assert claims["sub"] == user["id"]
    assert claims["exp"] - claims["iat"] == 604800
    assert claims["sid"]


async def test_cookie_secure_can_be_switched_off(make_app):
    app = make_app(COOKIE_SECURE=False)
    async with client_for(app) as client:
        user = await register(client)
        response = await login(client, user["email"])
    assert "secure" not in cookie_attributes(session_cookie(response))


async def test_login_is_case_insensitive_on_email(client):
    user = await register(client)
    await login(client, user["email"].upper())


@pytest.mark.parametrize("which", ["password", "email"])
async def test_wrong_credentials_are_400(client, which):
    user = await register(client)
    form = {"username": user["email"], "password": PASSWORD}
    form["username" if which == "email" else "password"] = (
        "nobody@example.com" if which == "email" else "wrong password"
    )
    response = await client.post("/auth/login", data=form)
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["detail"]) == ("LOGIN_BAD_CREDENTIALS", "LOGIN_BAD_CREDENTIALS")
    assert body["message"] == CATALOGUE["LOGIN_BAD_CREDENTIALS"].ru
    assert session_cookie(response) is None


async def test_login_without_form_fields_is_422(client):
    response = await client.post("/auth/login", data={"username": "a@example.com"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "password"]
