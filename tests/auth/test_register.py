"""POST /auth/register: the contract other clients rely on."""

import pytest

from tests.helpers import login, new_user_data, register


async def test_register_returns_the_public_user(client):
    data = new_user_data(email="Ivan.Petrov@Example.COM", phone="+7 912 345-67-89")
    response = await client.post("/auth/register", json=data)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "email",
        "name",
        "phone",
        "role",
        "is_active",
        "is_verified",
        "newsletter_opt_in",
        "created_at",
    }
    assert body["newsletter_opt_in"] is False
    assert body["email"] == "ivan.petrov@example.com"
    assert body["phone"] == "+79123456789"
    assert body["role"] == "user"
    assert body["is_active"] is True
    assert body["is_verified"] is False


@pytest.mark.parametrize(
    "spelling", ["8 (912) 345-67-89", "+7-912-345-67-89", "89123456789", "+7 912 3456789"]
)
async def test_phone_is_stored_in_e164(client, spelling):
    user = await register(client, phone=spelling)
    assert user["phone"] == "+79123456789"


async def test_duplicate_email_in_any_case_is_refused(client):
    user = await register(client)
    response = await client.post("/auth/register", json=new_user_data(email=user["email"].upper()))
    assert response.status_code == 400
    assert response.json()["code"] == "REGISTER_USER_ALREADY_EXISTS"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("phone", "12345"),
        ("phone", "call me maybe"),
        ("name", ""),
        ("name", "x" * 101),
    ],
)
async def test_bad_fields_are_422_naming_the_field(client, field, value):
    response = await client.post("/auth/register", json=new_user_data(**{field: value}))
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert any(err["loc"][-1] == field for err in body["detail"])


async def test_missing_field_is_named(client):
    data = new_user_data()
    del data["phone"]
    response = await client.post("/auth/register", json=data)
    assert response.status_code == 422
    assert [err["loc"] for err in response.json()["detail"]] == [["body", "phone"]]


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 8"),
        ("x" * 129, "at most 128"),
    ],
)
async def test_password_length_rules(client, password, reason):
    response = await client.post("/auth/register", json=new_user_data(password=password))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "REGISTER_INVALID_PASSWORD"
    assert reason in body["detail"]["reason"]


async def test_password_may_not_be_the_email(client):
    data = new_user_data(email="anna@example.com", password="Anna@Example.com")
    response = await client.post("/auth/register", json=data)
    assert response.status_code == 400
    assert response.json()["detail"]["reason"] == "Password must not be the email"


@pytest.mark.parametrize("password", ["12345678", "пароль пароль", "x" * 128, "        a"])
async def test_any_characters_are_accepted_within_the_length(client, password):
    user = await register(client, password=password)
    assert user["role"] == "user"
    await login(client, user["email"], password)  # stored as given: it opens the account
    assert (await client.get("/users/me")).json()["id"] == user["id"]
    wrong = await client.post(
        "/auth/login", data={"username": user["email"], "password": password + "x"}
    )
    assert wrong.status_code == 400


@pytest.mark.parametrize(
    "extra", [{"role": "admin"}, {"is_superuser": True}, {"is_verified": True}]
)
async def test_privileged_fields_cannot_be_sent(client, extra):
    data = new_user_data(**extra)
    response = await client.post("/auth/register", json=data)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "extra_forbidden"
    # and nothing was written: the same email can still register, as a plain user
    del data[next(iter(extra))]
    response = await client.post("/auth/register", json=data)
    assert response.status_code == 201
    assert response.json()["role"] == "user"
    assert response.json()["is_verified"] is False


async def test_the_hash_is_never_returned(client):
    response = await client.post("/auth/register", json=new_user_data())
    assert "password" not in response.text
    assert "argon2" not in response.text


@pytest.mark.parametrize("email", ["ｕ@example.com", "ﬁle@example.com", "u@ｅxample.com"])
async def test_look_alike_emails_are_refused(client, email):
    # fullwidth or ligature forms would register a second "u@example.com"
    await register(client, email="u@example.com")
    response = await client.post("/auth/register", json=new_user_data(email=email))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "email"]


@pytest.mark.parametrize(
    "name", ["\u202egnp.exe", "Иван\u2066", "\u200b", " \u200b\u200d ", "\u200e"]
)
async def test_names_must_be_visible_and_without_direction_controls(client, name):
    response = await client.post("/auth/register", json=new_user_data(name=name))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize("name", ["Анна-Мария О'Нил", "李小龍", "🙂", "J. R. R."])
async def test_real_names_pass(client, name):
    response = await client.post("/auth/register", json=new_user_data(name=name))
    assert response.status_code == 201
    assert response.json()["name"] == name
