from tests.helpers import signed_in


async def test_register_login_me(client):
    user = await signed_in(client)
    response = await client.get("/users/me")
    assert response.status_code == 200
    assert response.json()["email"] == user["email"]
