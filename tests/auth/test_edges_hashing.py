"""A password stored under an older hashing policy is re-hashed at the next good login."""

from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy import select, update

from app.users.models import User
from tests.conftest import client_for
from tests.helpers import PASSWORD, login, register


async def stored_hash(app, email: str) -> str:
    async with app.state.sessionmaker() as db:
        return await db.scalar(select(User.hashed_password).where(User.email == email))


async def test_an_old_policy_hash_is_upgraded_at_login(app, client):
    user = await register(client)
    old = BcryptHasher().hash(PASSWORD)  # what an earlier policy stored
    async with app.state.sessionmaker() as db, db.begin():
        await db.execute(
            update(User).where(User.email == user["email"]).values(hashed_password=old)
        )

    wrong = await client.post(
        "/auth/login", data={"username": user["email"], "password": "not it at all"}
    )
    assert wrong.status_code == 400
    assert await stored_hash(app, user["email"]) == old  # a wrong password upgrades nothing

    await login(client, user["email"])
    upgraded = await stored_hash(app, user["email"])
    assert upgraded.startswith("$argon2id$")
    async with client_for(app) as again:  # the new hash verifies the same password
        await login(again, user["email"])
    assert await stored_hash(app, user["email"]) == upgraded  # current policy: left alone
