"""/admin/users edges the mutation run found untested: the 404 body, the search's case."""

import uuid
from datetime import UTC, datetime

import pytest
import time_machine
from sqlalchemy import event, select

from app.users.models import User
from tests.helpers import make_admin, register, signed_in


@pytest.fixture
async def admin(app, client):
    me = await signed_in(client, name="Админ")
    await make_admin(app, me["email"])
    return me


async def test_an_unknown_user_is_a_404_that_says_so(client, admin):
    response = await client.get(f"/admin/users/{uuid.uuid4()}")
    assert response.status_code == 404
    assert (response.json()["code"], response.json()["detail"]) == (
        "USER_NOT_FOUND",
        "No such user",
    )
    response = await client.patch(f"/admin/users/{uuid.uuid4()}", json={"role": "admin"})
    assert response.status_code == 404
    assert (response.json()["code"], response.json()["detail"]) == (
        "USER_NOT_FOUND",
        "No such user",
    )


async def test_the_search_lower_cases_what_is_typed(client, admin):
    """The query is lower-cased before it meets the lower-cased columns. Lower-case Cyrillic
    is stored here: SQLite's lower() and LIKE fold ASCII only (see docs/mutation.md)."""
    wanted = await register(client, name="иван петров")
    await register(client, name="пётр иванов")
    for q in ("Петров", "ПЕТРОВ", "петров"):
        items = (await client.get("/admin/users", params={"q": q})).json()["items"]
        assert [u["id"] for u in items] == [wanted["id"]], q


async def expected_order(app) -> list[str]:
    """Newest first, ties by id, newest id first: computed here, not by the listing."""
    async with app.state.sessionmaker() as db:
        rows = (await db.execute(select(User.created_at, User.id))).all()
    return [str(user_id) for _, user_id in sorted(rows, reverse=True)]


async def walk(client, limit: int) -> list[str]:
    seen, cursor = [], None
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/admin/users", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        assert len(page["items"]) == limit
        assert len(seen) < 100, "the cursor does not advance"


async def test_pages_split_users_registered_at_the_same_instant(app, client, admin):
    """Keyset pagination on (created_at, id): users created in the same microsecond (a
    batch import, a coarse clock) are each listed once, across page boundaries."""
    for minute in (1, 2, 3):
        with time_machine.travel(datetime(2026, 1, 1, 12, minute, tzinfo=UTC), tick=False):
            for _ in range(3):
                await register(client)
    expected = await expected_order(app)
    assert len(expected) == 10
    for limit in (2, 4, 5, 10):
        assert await walk(client, limit) == expected, limit
    # A page that ends exactly at the last user says there is no next one.
    last = (await client.get("/admin/users", params={"limit": 10})).json()
    assert len(last["items"]) == 10 and last["next_cursor"] is None


async def test_a_page_reads_one_row_more_than_it_shows(app, client, admin):
    """limit + 1 rows tell whether a next page exists; the table is never read whole."""
    for _ in range(4):
        await register(client)
    limits: list[int] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "FROM user" in statement.replace('"', ""):
            limits.append(context.compiled.statement._limit)  # the LIMIT the query sent

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        page = (await client.get("/admin/users", params={"limit": 2})).json()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(page["items"]) == 2 and page["next_cursor"] is not None
    assert limits == [3]
