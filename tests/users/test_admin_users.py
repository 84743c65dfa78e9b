"""/admin/users: listing, one user, role and activity changes."""

import base64
import json
import uuid

import pytest

from tests.conftest import client_for
from tests.helpers import PASSWORD, login, make_admin, register, signed_in


def cursor_of(created_at: object, *rest: object) -> str:
    raw = json.dumps([created_at, *(rest or [str(uuid.UUID(int=0))])]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encoded(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.fixture
async def admin(app, client):
    me = await signed_in(client, name="Админ")
    await make_admin(app, me["email"])
    return me


async def test_pagination_walks_every_user_once(client, admin):
    created = [await register(client) for _ in range(7)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/admin/users", params=params)).json()
        assert len(page["items"]) <= 3
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([admin["id"], *(u["id"] for u in created)])
    assert len(seen) == len(set(seen)) == 8
    # newest first: the last registered user opens the first page, the admin ends the last
    assert seen[0] == created[-1]["id"]
    assert seen[-1] == admin["id"]


async def test_filters(client, admin):
    await register(client, name="Мария Сидорова", email="maria@example.com")
    await register(client, phone="+7 999 111-22-33")
    by_role = (await client.get("/admin/users", params={"role": "admin"})).json()["items"]
    assert [u["id"] for u in by_role] == [admin["id"]]
    by_email = (await client.get("/admin/users", params={"q": "MARIA@"})).json()["items"]
    assert [u["email"] for u in by_email] == ["maria@example.com"]
    by_phone = (await client.get("/admin/users", params={"q": "9991112233"})).json()["items"]
    assert [u["phone"] for u in by_phone] == ["+79991112233"]
    await register(client, name="Иван Петров")
    by_cyrillic = (await client.get("/admin/users", params={"q": "петров"})).json()["items"]
    assert [u["name"] for u in by_cyrillic] == ["Иван Петров"]  # on SQLite too
    wildcard = (await client.get("/admin/users", params={"q": "%"})).json()["items"]
    assert wildcard == []


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"cursor": "bm9wZQ"}, 400, "INVALID_CURSOR"),
        ({"cursor": "!!!"}, 400, "INVALID_CURSOR"),
        # well-formed, but out of datetime's range once in UTC (was a 500)
        ({"cursor": cursor_of("9999-12-31T23:59:59-14:00")}, 400, "INVALID_CURSOR"),
        ({"cursor": cursor_of("0001-01-01T00:00:00+14:00")}, 400, "INVALID_CURSOR"),
        ({"cursor": cursor_of("2026-01-01T00:00:00")}, 400, "INVALID_CURSOR"),
        # well-formed JSON of the wrong types (each was a 500 found by the probe)
        ({"cursor": cursor_of("2024-01-01T00:00:00+00:00", 123)}, 400, "INVALID_CURSOR"),
        ({"cursor": cursor_of(1700000000)}, 400, "INVALID_CURSOR"),
        ({"cursor": encoded(["x"])}, 400, "INVALID_CURSOR"),
        ({"cursor": encoded({"x": 1})}, 400, "INVALID_CURSOR"),
        ({"cursor": encoded(True)}, 400, "INVALID_CURSOR"),
        ({"cursor": encoded(1.5)}, 400, "INVALID_CURSOR"),
        ({"cursor": encoded(None)}, 400, "INVALID_CURSOR"),
        (
            {"cursor": cursor_of("2024-01-01T00:00:00+00:00", str(uuid.UUID(int=0)), 1)},
            400,
            "INVALID_CURSOR",
        ),
        ({"limit": 0}, 422, "VALIDATION_ERROR"),
        ({"limit": 101}, 422, "VALIDATION_ERROR"),
        ({"role": "king"}, 422, "VALIDATION_ERROR"),
    ],
)
async def test_bad_listing_input(client, admin, params, status, code):
    response = await client.get("/admin/users", params=params)
    assert response.status_code == status
    assert response.json()["code"] == code


async def test_one_user(client, admin):
    other = await register(client)
    response = await client.get(f"/admin/users/{other['id']}")
    assert response.status_code == 200
    assert response.json()["email"] == other["email"]
    assert (await client.get(f"/admin/users/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/admin/users/not-a-uuid")).status_code == 422


async def test_role_change_ends_the_users_sessions(app, client, admin):
    async with client_for(app) as target:
        user = await signed_in(target)
        response = await client.patch(f"/admin/users/{user['id']}", json={"role": "admin"})
        assert response.status_code == 200
        assert response.json()["role"] == "admin"
        assert (await target.get("/users/me")).status_code == 401
        await login(target, user["email"])
        assert (await target.get("/admin/users")).status_code == 200


async def test_deactivation_ends_sessions_and_blocks_login(app, client, admin):
    async with client_for(app) as target:
        user = await signed_in(target)
        response = await client.patch(f"/admin/users/{user['id']}", json={"is_active": False})
        assert response.json()["is_active"] is False
        assert (await target.get("/users/me")).status_code == 401
        response = await target.post(
            "/auth/login", data={"username": user["email"], "password": PASSWORD}
        )
        assert response.status_code == 400


async def test_reactivation_does_not_revive_old_sessions(app, client, admin):
    # The 401 after deactivation must come from revocation, not only from is_active.
    async with client_for(app) as target:
        user = await signed_in(target)
        await client.patch(f"/admin/users/{user['id']}", json={"is_active": False})
        response = await client.patch(f"/admin/users/{user['id']}", json={"is_active": True})
        assert response.json()["is_active"] is True
        assert (await target.get("/users/me")).status_code == 401
        await login(target, user["email"])
        assert (await target.get("/users/me")).status_code == 200


async def test_unchanged_values_do_not_end_sessions(app, client, admin):
    async with client_for(app) as target:
        user = await signed_in(target)
        response = await client.patch(f"/admin/users/{user['id']}", json={"role": "user"})
        assert response.status_code == 200
        assert (await target.get("/users/me")).status_code == 200


async def test_an_admin_cannot_lock_themselves_out(client, admin):
    response = await client.patch(f"/admin/users/{admin['id']}", json={"role": "user"})
    assert response.status_code == 400
    assert response.json()["code"] == "ADMIN_CANNOT_CHANGE_OWN_ACCESS"
    assert (await client.get("/admin/users")).status_code == 200
    response = await client.patch(f"/admin/users/{admin['id']}", json={"is_active": False})
    assert response.status_code == 400
    me = (await client.get(f"/admin/users/{admin['id']}")).json()
    assert (me["role"], me["is_active"]) == ("admin", True)


@pytest.mark.parametrize(
    "body", [{"role": None}, {"is_active": None}, {"role": "king"}, {"email": "x@example.com"}]
)
async def test_bad_admin_updates_are_422(client, admin, body):
    other = await register(client)
    response = await client.patch(f"/admin/users/{other['id']}", json=body)
    assert response.status_code == 422
    unchanged = (await client.get(f"/admin/users/{other['id']}")).json()
    assert {k: unchanged[k] for k in ("role", "is_active", "email")} == {
        "role": "user",
        "is_active": True,
        "email": other["email"],
    }
