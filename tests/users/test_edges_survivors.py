"""Tests written for mutants of app/users that survived `make mutate`: each names the
mutant(s) it kills. The survivors judged equivalent are listed, with reasons, in the
mutation report, not here."""

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, update

from app.services.email.outbox import OutboxState
from app.users.manager import UserDatabase
from app.users.models import User
from tests.confirmation.helpers import queued
from tests.conftest import client_for
from tests.helpers import PASSWORD, register, signed_in
from tests.newsletters.helpers import admin_client, create_draft, outbox_rows, verify

NEW_PASSWORD = "a brand new passphrase"


async def log_in(client, username: str, password: str = PASSWORD):
    return await client.post("/auth/login", data={"username": username, "password": password})


def assert_recent_stamp(text: str) -> None:
    """`changed_at` as the notice templates show it: `DD.MM.YYYY HH:MM UTC`, now."""
    stamp = datetime.strptime(text, "%d.%m.%Y %H:%M UTC").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=2), text


async def stored_user(app, user_id) -> User:
    async with app.state.sessionmaker() as db:
        user = await db.get(User, uuid.UUID(str(user_id)))
        assert user is not None
        return user


# --- login name bounds (UserManager.authenticate) --------------------------------------


async def test_a_login_name_is_read_only_up_to_four_times_the_email_limit(client):
    """Kills app.users.manager.xǁUserManagerǁauthenticate__mutmut_13 (EMAIL_MAX_LENGTH * 5):
    1280 spaces and then a real email are cut to the spaces alone, so the login fails; read
    300 characters further, the email would be found and the login succeed."""
    user = await register(client)
    response = await log_in(client, " " * 1280 + user["email"], user["password"])
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "LOGIN_BAD_CREDENTIALS"
    assert (await client.get("/users/me")).status_code == 401


async def test_a_login_name_of_exactly_the_email_limit_counts_against_its_account(client):
    """Kills app.users.manager.xǁUserManagerǁauthenticate__mutmut_14 (`>=` instead of `>`):
    a 320-character name is still a possible account, so its guesses are counted (the 6th
    within 5 minutes is refused with 429) instead of being dropped uncounted."""
    name = "a" * (320 - len("@example.com")) + "@example.com"
    assert len(name) == 320
    for _ in range(5):
        response = await log_in(client, name, "wrong guess")
        assert response.status_code == 400, response.text
    response = await log_in(client, name, "wrong guess")
    assert response.status_code == 429, response.text


# --- the compare-and-set password write (UserDatabase.replace_password) -----------------


async def test_replace_password_is_a_compare_and_set_on_one_user(app, client):
    """Kills app.users.manager.xǁUserDatabaseǁreplace_password__mutmut_6 (no `User.id ==`:
    every user with that hash changes), __mutmut_7 (no `hashed_password == old`: a stale
    hash still writes) and __mutmut_20 (the in-memory user keeps None as its hash)."""
    alice = await register(client)
    bob = await register(client)
    alice_id, bob_id = uuid.UUID(alice["id"]), uuid.UUID(bob["id"])
    shared = (await stored_user(app, bob_id)).hashed_password
    async with app.state.sessionmaker.begin() as db:  # two rows with one hash
        await db.execute(update(User).where(User.id == alice_id).values(hashed_password=shared))

    async with app.state.sessionmaker.begin() as db:
        user = await db.get(User, alice_id)
        assert await UserDatabase(db, User).replace_password(user, shared, "new-hash") is True
        assert user.hashed_password == "new-hash"
    assert (await stored_user(app, alice_id)).hashed_password == "new-hash"
    assert (await stored_user(app, bob_id)).hashed_password == shared

    async with app.state.sessionmaker.begin() as db:
        user = await db.get(User, bob_id)
        assert await UserDatabase(db, User).replace_password(user, "stale", "other") is False
        assert user.hashed_password == shared
    assert (await stored_user(app, bob_id)).hashed_password == shared
    await log_in(client, bob["email"])  # bob's real password still works
    assert (await client.get("/users/me")).json()["email"] == bob["email"]


# --- what the outbox holds after a reset request, a reset, and profile changes ----------


async def test_the_reset_email_names_its_account_and_whole_minutes(make_app):
    """Kills app.users.manager.xǁUserManagerǁon_after_forgot_password__mutmut_7 (user_id
    None), __mutmut_12 (user_id left out) and __mutmut_21 (`/ 60`: 5.5 minutes, not 5)."""
    app = make_app(RESET_PASSWORD_TOKEN_TTL_SECONDS=330)
    async with client_for(app) as client:
        user = await register(client)
        response = await client.post("/auth/forgot-password", json={"email": user["email"]})
        assert response.status_code == 202, response.text
    [row] = await queued(app, to=user["email"], template="password_reset")
    assert row.user_id == uuid.UUID(user["id"])
    assert row.data["ttl_minutes"] == 5
    assert type(row.data["ttl_minutes"]) is int


async def test_a_reset_notice_names_its_account_and_when(app, client):
    """Kills app.users.manager.xǁUserManagerǁon_after_reset_password__mutmut_11 (user_id
    None), app.users.notices.x_password_changed__mutmut_5 / __mutmut_10 (user_id None /
    left out) and app.users.notices.x__when__mutmut_2, _3, _4 (the stamp's format)."""
    user = await register(client)
    assert (await client.post("/auth/forgot-password", json={"email": user["email"]})).is_success
    [reset_row] = await queued(app, to=user["email"], template="password_reset")
    [token] = parse_qs(urlsplit(reset_row.data["reset_url"]).query)["token"]
    response = await client.post(
        "/auth/reset-password", json={"token": token, "password": NEW_PASSWORD}
    )
    assert response.status_code == 200, response.text
    [notice] = await queued(app, to=user["email"], template="password_changed")
    assert notice.user_id == uuid.UUID(user["id"])
    assert set(notice.data) == {"name", "changed_at"}
    assert notice.data["name"] == user["name"]
    assert_recent_stamp(notice.data["changed_at"])


async def test_a_password_change_notice_names_its_account(app, client):
    """Kills app.users.service.x_update_me__mutmut_59 (the notice's user_id None)."""
    user = await signed_in(client)
    response = await client.patch(
        "/users/me", json={"password": NEW_PASSWORD, "current_password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    [notice] = await queued(app, to=user["email"], template="password_changed")
    assert notice.user_id == uuid.UUID(user["id"])
    assert notice.data["name"] == user["name"]
    assert_recent_stamp(notice.data["changed_at"])


async def test_an_email_change_notice_holds_name_masked_address_and_time(app, client):
    """Kills app.users.service.x_update_me__mutmut_76 (name None) and __mutmut_77 (user_id
    None); app.users.notices.x_email_changed__mutmut_5 / __mutmut_10 (user_id None / left
    out), __mutmut_13 / _14 ("name" key renamed), __mutmut_18 / _19 ("changed_at" key
    renamed); app.users.notices.x__when__mutmut_2, _3, _4."""
    user = await signed_in(client)
    response = await client.patch(
        "/users/me", json={"email": "nikolai.new@example.com", "current_password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    [notice] = await queued(app, to=user["email"], template="email_changed")
    assert notice.user_id == uuid.UUID(user["id"])
    assert set(notice.data) == {"name", "new_email_masked", "changed_at"}
    assert notice.data["name"] == user["name"]
    assert notice.data["new_email_masked"] == "n***@example.com"
    assert_recent_stamp(notice.data["changed_at"])


# --- validation messages, the admin search, newsletters kept -----------------------------


async def test_a_control_character_in_a_name_says_why(client):
    """Kills app.users.schemas.x_printable__mutmut_2 … __mutmut_5 (the message None,
    "XX…XX", "nul", upper case): the 422 body says what a form shows next to the field."""
    response = await client.post(
        "/auth/register",
        json={
            "email": "tab@example.com",
            "password": PASSWORD,
            "name": "Ivan\tPetrov",
            "phone": "+7 912 345-67-89",
        },
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "name"]
    assert error["msg"] == (
        "Value error, must not contain control characters (tabs, line breaks, NUL)"
    )


async def test_the_admin_search_finds_a_user_by_part_of_the_email_in_any_case(app, client):
    """Kills app.users.service.x_list_users__mutmut_22 (func.upper(User.email) compared
    with the lower-cased needle: no email ever matches) on PostgreSQL, where LIKE is case
    sensitive; SQLite's LIKE ignores ASCII case, so there the mutant is not seen."""
    await admin_client(app, client)
    async with client_for(app) as other:
        target = await register(other, email="Zeta.Searchable@example.com", name="Иван")
    response = await client.get("/admin/users", params={"q": "ZETA.SEARCH"})
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["items"]] == [target["id"]]


async def test_a_name_change_keeps_queued_newsletters(app, client):
    """Kills app.users.service.x_update_me__mutmut_92 (`updated.email == old_email`: any
    profile change without a new email withdrew the user's newsletters not yet sent)."""
    async with client_for(app) as reader_client:
        reader = await signed_in(reader_client, newsletter_opt_in=True)
        await verify(app, reader["email"])
        await admin_client(app, client)
        draft = await create_draft(client)
        sent = await client.post(f"/admin/newsletters/{draft['id']}/send")
        assert sent.json()["recipients"] == 1, sent.text
        response = await reader_client.patch("/users/me", json={"name": "Новое имя"})
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "Новое имя"
    [row] = await outbox_rows(app, draft["id"])
    assert row.user_id == uuid.UUID(reader["id"])
    assert row.state == OutboxState.PENDING
    assert row.data != {}
    async with app.state.sessionmaker() as db:  # the profile change itself was stored
        name = await db.scalar(select(User.name).where(User.id == uuid.UUID(reader["id"])))
    assert name == "Новое имя"


async def test_a_nul_in_the_login_name_is_a_wrong_login_not_an_error(client):
    """Kills app.users.manager.xǁUserDatabaseǁget_by_email__mutmut_5 ("XX\\x00XX": the NUL
    guard never fires) on PostgreSQL, which cannot take NUL in a query (500 there); on
    SQLite the lookup just finds nothing, so only `make test-postgres` tells them apart."""
    user = await register(client)
    response = await log_in(client, user["email"].replace("@", "\x00@"), user["password"])
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "LOGIN_BAD_CREDENTIALS"
