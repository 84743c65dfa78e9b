"""The CSRF refusal is a well-formed JSON response; origins are compared as browsers send
them (a trailing slash or upper case does not make a trusted origin foreign)."""

import json

import pytest

from tests.helpers import PASSWORD, register

TRUSTED = "https://app.shop.test"  # TRUSTED_ORIGINS in the test settings


async def login_with(client, email, headers):
    return await client.post(
        "/auth/login", data={"username": email, "password": PASSWORD}, headers=headers
    )


async def test_the_refusal_is_json_with_its_exact_length(client):
    user = await register(client)
    response = await login_with(client, user["email"], {"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    body = json.loads(response.content)
    assert body["code"] == "CSRF_CROSS_ORIGIN"
    assert body["detail"] == "Cross-origin request refused"
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": TRUSTED + "/"},
        {"Origin": TRUSTED.upper() + "/", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://shop.test/"},
        {"Origin": "HTTPS://SHOP.TEST"},
        {"Origin": "https://shop.test", "Sec-Fetch-Site": "Same-Origin"},
    ],
)
async def test_spellings_of_an_allowed_origin_pass(client, headers):
    user = await register(client)
    response = await login_with(client, user["email"], headers)
    assert response.status_code == 204, response.text
    assert (await client.get("/users/me")).json()["email"] == user["email"]
