"""Cross-site state-changing requests are refused; same-origin and trusted ones pass."""

import pytest

from tests.conftest import client_for
from tests.helpers import PASSWORD, register, signed_in

TRUSTED = "https://app.shop.test"  # TRUSTED_ORIGINS in the test settings


async def login_with(client, email, headers):
    return await client.post(
        "/auth/login", data={"username": email, "password": PASSWORD}, headers=headers
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://shop.test.evil.example"},
    ],
)
async def test_cross_origin_unsafe_requests_are_403(client, headers):
    user = await register(client)
    response = await login_with(client, user["email"], headers)
    assert response.status_code == 403
    assert response.json()["code"] == "CSRF_CROSS_ORIGIN"
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://shop.test"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "https://shop.test"},
        {"Sec-Fetch-Site": "cross-site", "Origin": TRUSTED},
        {"Origin": TRUSTED},
    ],
)
async def test_same_origin_and_trusted_requests_pass(client, headers):
    user = await register(client)
    response = await login_with(client, user["email"], headers)
    assert response.status_code == 204


async def test_safe_methods_are_not_checked(client):
    response = await client.get("/healthz", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200


async def test_cors_lets_trusted_origins_send_the_cookie(client):
    response = await client.options(
        "/users/me",
        headers={"Origin": TRUSTED, "Access-Control-Request-Method": "PATCH"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == TRUSTED
    assert response.headers["access-control-allow-credentials"] == "true"
    response = await client.options(
        "/users/me",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "PATCH"},
    )
    assert "access-control-allow-origin" not in response.headers


async def test_a_mixed_case_trusted_origin_still_matches_the_browsers(make_app):
    # Settings normalise origins once; CORS compares them with the browser's lower-case Origin.
    app = make_app(TRUSTED_ORIGINS="HTTPS://App.Shop.Test")
    async with client_for(app) as client:
        preflight = await client.options(
            "/users/me",
            headers={
                "Origin": TRUSTED,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        user = await register(client)
        cross = await login_with(
            client, user["email"], {"Origin": TRUSTED, "Sec-Fetch-Site": "same-site"}
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == TRUSTED
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert cross.status_code == 204


CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/users/me", {"name": "Чужое имя"}),
        ("DELETE", "/users/me/sessions/{sid}", None),
        ("POST", "/auth/logout-all", None),
        ("POST", "/auth/logout", None),
    ],
)
async def test_every_unsafe_method_is_checked_and_changes_nothing(client, method, path, body):
    user = await signed_in(client)
    sid = (await client.get("/users/me/sessions")).json()["items"][0]["id"]
    response = await client.request(method, path.format(sid=sid), json=body, headers=CROSS_SITE)
    assert response.status_code == 403
    assert response.json()["code"] == "CSRF_CROSS_ORIGIN"
    me = await client.get("/users/me")  # the session lives, the name is unchanged
    assert me.status_code == 200
    assert me.json()["name"] == user["name"]
