"""/users/me: reading and updating one's own account; role is never self-assigned."""

import uuid

import pytest
from sqlalchemy import update

from app.users.models import User
from tests.helpers import PASSWORD, login, register, signed_in


async def test_me_needs_a_session(client):
    response = await client.get("/users/me")
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"


async def test_update_name_and_phone(client):
    await signed_in(client)
    response = await client.patch(
        "/users/me", json={"name": "  Пётр Иванов ", "phone": "8 912 111 22 33"}
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Пётр Иванов"
    assert response.json()["phone"] == "+79121112233"
    assert (await client.get("/users/me")).json()["phone"] == "+79121112233"


@pytest.mark.parametrize(
    "body",
    [
        {"role": "admin"},
        {"name": "Eve", "role": "admin"},
        {"is_superuser": True},
        {"is_active": False},
        {"is_verified": True},
    ],
)
async def test_privileged_fields_cannot_be_self_assigned(client, body):
    await signed_in(client)
    response = await client.patch("/users/me", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "extra_forbidden"
    me = (await client.get("/users/me")).json()
    assert me["role"] == "user"
    assert me["is_verified"] is False
    assert me["is_active"] is True
    assert me["name"] != "Eve"


@pytest.mark.parametrize(
    "body", [{"name": None}, {"phone": None}, {"email": None}, {"phone": "junk"}, {"name": ""}]
)
async def test_nulls_and_junk_are_422(client, body):
    await signed_in(client)
    response = await client.patch("/users/me", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == next(iter(body))


async def test_email_change_needs_the_current_password(client):
    await signed_in(client)
    response = await client.patch("/users/me", json={"email": "new@example.com"})
    assert response.status_code == 400
    assert response.json()["code"] == "CURRENT_PASSWORD_REQUIRED"
    response = await client.patch(
        "/users/me", json={"email": "new@example.com", "current_password": "wrong password"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "CURRENT_PASSWORD_INVALID"
    response = await client.patch(
        "/users/me", json={"email": "New@Example.com", "current_password": PASSWORD}
    )
    assert response.status_code == 200
    assert response.json()["email"] == "new@example.com"
    assert response.json()["is_verified"] is False


async def test_a_new_email_must_be_confirmed_again(app, client):
    user = await signed_in(client)
    async with app.state.sessionmaker() as db, db.begin():
        await db.execute(
            update(User).where(User.id == uuid.UUID(user["id"])).values(is_verified=True)
        )
    assert (await client.get("/users/me")).json()["is_verified"] is True
    response = await client.patch("/users/me", json={"name": "Только имя"})
    assert response.json()["is_verified"] is True  # other changes keep it
    response = await client.patch(
        "/users/me", json={"email": "moved@example.com", "current_password": PASSWORD}
    )
    assert response.json()["is_verified"] is False
    async with app.state.sessionmaker() as db:
        stored = await db.get(User, uuid.UUID(user["id"]))
        assert (stored.email, stored.is_verified) == ("moved@example.com", False)


async def test_email_taken_is_400(client):
    other = await register(client)
    await signed_in(client)
    response = await client.patch(
        "/users/me", json={"email": other["email"], "current_password": PASSWORD}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "UPDATE_USER_EMAIL_ALREADY_EXISTS"


async def test_bad_new_password_is_400_and_nothing_changes(client):
    user = await signed_in(client)
    response = await client.patch(
        "/users/me", json={"password": "short", "name": "Changed", "current_password": PASSWORD}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "UPDATE_USER_INVALID_PASSWORD"
    assert (await client.get("/users/me")).json()["name"] == user["name"]
    await login(client, user["email"], PASSWORD)


async def test_new_password_works_and_old_one_does_not(client):
    user = await signed_in(client)
    response = await client.patch(
        "/users/me", json={"password": "another good one", "current_password": PASSWORD}
    )
    assert response.status_code == 200
    old = await client.post("/auth/login", data={"username": user["email"], "password": PASSWORD})
    assert old.status_code == 400
    await login(client, user["email"], "another good one")


async def test_current_password_guesses_have_a_budget(client):
    await signed_in(client)
    for _ in range(5):
        response = await client.patch(
            "/users/me", json={"email": "x@example.com", "current_password": "wrong guess"}
        )
        assert response.json()["code"] == "CURRENT_PASSWORD_INVALID"
    response = await client.patch(
        "/users/me", json={"email": "x@example.com", "current_password": PASSWORD}
    )
    assert response.status_code == 429
