"""PATCH /users/me: the current-password budget is each user's own, and a right password
forgets the wrong ones before it."""

from tests.conftest import client_for
from tests.helpers import PASSWORD, signed_in


async def change_email(client, email: str, current_password: str):
    return await client.patch(
        "/users/me", json={"email": email, "current_password": current_password}
    )


async def test_one_users_wrong_guesses_do_not_spend_anothers_budget(app):
    async with client_for(app) as mallory, client_for(app) as alice:
        await signed_in(mallory)
        await signed_in(alice)
        for _ in range(5):
            response = await change_email(mallory, "m2@example.com", "wrong guess")
            assert response.json()["code"] == "CURRENT_PASSWORD_INVALID"
        assert (await change_email(mallory, "m2@example.com", PASSWORD)).status_code == 429
        response = await change_email(alice, "alice.new@example.com", PASSWORD)
        assert response.status_code == 200, response.text
        assert (await alice.get("/users/me")).json()["email"] == "alice.new@example.com"


async def test_the_right_password_forgets_earlier_wrong_ones(client):
    await signed_in(client)
    for round_ in range(3):  # 4 wrong + 1 right, three times: 15 attempts, never refused
        for _ in range(4):
            response = await change_email(client, "x@example.com", "wrong guess")
            assert response.json()["code"] == "CURRENT_PASSWORD_INVALID", round_
        email = f"new{round_}@example.com"
        response = await change_email(client, email, PASSWORD)
        assert response.status_code == 200, response.text
        assert response.json()["email"] == email
