"""Registration and login edges: the longest allowed password logs in; each refused field
says why in the 422 body (what a form shows next to the field)."""

import pytest

from tests.helpers import login, new_user_data, register


async def test_the_longest_allowed_password_logs_in(client):
    user = await register(client, password="p" * 128)
    await login(client, user["email"], "p" * 128)
    assert (await client.get("/users/me")).json()["email"] == user["email"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("phone", "not a number", "not a phone number"),
        ("phone", "+7 000 000-00-00", "not a valid phone number"),
        ("name", "Ivan \u202eRTL", "must not contain text-direction control characters"),
        ("name", "\u200b\u200b", "must contain at least one visible character"),
        (
            "email",
            "\uff55@example.com",
            "use plain characters: the address contains look-alike (compatibility) forms",
        ),
    ],
)
async def test_a_refused_field_says_why(client, field, value, reason):
    response = await client.post("/auth/register", json=new_user_data(**{field: value}))
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [error["loc"] for error in errors] == [["body", field]]
    assert errors[0]["msg"] == f"Value error, {reason}"
