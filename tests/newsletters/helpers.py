"""Users and newsletters for the newsletter tests, written straight to the database (a
campaign's test needs thousands of recipients; registering each would hash a password)."""

import uuid
from typing import Any

import httpx
from sqlalchemy import insert, select, update

from app.newsletters import service
from app.newsletters.models import Newsletter
from app.services.email.outbox import OutboxMessage
from app.types.enums import UserRole
from app.users.models import User
from tests.helpers import PASSWORD, login, make_admin, register

# One real hash of tests.helpers.PASSWORD, made once per run: bulk users can log in.
_HASH: dict[str, str] = {}


async def add_users(
    app: Any,
    count: int,
    *,
    opt_in: bool = True,
    verified: bool = True,
    active: bool = True,
    prefix: str = "reader",
) -> list[dict[str, Any]]:
    """`count` users in one INSERT; returns their id, email and name."""
    if "hash" not in _HASH:
        _HASH["hash"] = await app.state.auth.hasher.hash(PASSWORD)
    tag = uuid.uuid4().hex[:8]
    rows = [
        {
            "id": uuid.uuid4(),
            "email": f"{prefix}-{tag}-{i}@example.com",
            "hashed_password": _HASH["hash"],
            "name": f"Читатель {i}",
            "phone": None,
            "role": UserRole.USER,
            "is_active": active,
            "is_verified": verified,
            "newsletter_opt_in": opt_in,
        }
        for i in range(count)
    ]
    async with app.state.sessionmaker.begin() as db:
        await db.execute(insert(User), rows)
    return [{"id": r["id"], "email": r["email"], "name": r["name"]} for r in rows]


async def admin_client(app: Any, client: httpx.AsyncClient) -> dict[str, Any]:
    """Register, promote and sign in `client` as an admin; returns the admin's data."""
    admin = await register(client)
    await make_admin(app, admin["email"])
    response = await login(client, admin["email"])
    assert response.status_code == 204, response.text
    return admin


DRAFT = {
    "subject": "{{ name }}, скидки недели",
    "html": "<h1>Скидки</h1><p>{{ name }}, для вас −20%.</p>",
    "text": "{{ name }}, для вас −20%.",
}


async def create_draft(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/admin/newsletters", json={**DRAFT, **overrides})
    assert response.status_code == 201, response.text
    return response.json()


async def outbox_rows(app: Any, newsletter_id: str | uuid.UUID) -> list[OutboxMessage]:
    async with app.state.sessionmaker() as db:
        stmt = select(OutboxMessage).where(
            OutboxMessage.newsletter_id == uuid.UUID(str(newsletter_id))
        )
        return list(await db.scalars(stmt.order_by(OutboxMessage.id)))


async def stored_newsletter(app: Any, newsletter_id: str | uuid.UUID) -> Newsletter:
    """The newsletter's row as stored (404s as NewsletterNotFound)."""
    async with app.state.sessionmaker() as db:
        return await service.get(db, uuid.UUID(str(newsletter_id)))


async def deliver_all(app: Any) -> None:
    """Run the app's dispatcher until nothing is due."""
    while (await app.state.dispatcher.run_once()).claimed:
        pass


async def verify(app: Any, email: str) -> None:
    """Mark an account confirmed, as a right confirmation code would."""
    async with app.state.sessionmaker.begin() as db:
        await db.execute(update(User).where(User.email == email).values(is_verified=True))
