"""`python -m app seed --demo`: the demo accounts QA signs in with. Fresh passwords,
printed once; only into an empty database unless `--force`, which resets just the demo
accounts. Each test runs the CLI as a subprocess against the test's migrated database and
signs in through the app with what it printed."""

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from app.types.enums import UserRole
from app.users.models import User
from tests.cli.helpers import cli, login_status, one_line, stored_user, user_count
from tests.conftest import client_for
from tests.helpers import PASSWORD, login, signed_in

DEMO = {"admin@example.com": "admin", "anna@example.com": "user", "boris@example.com": "user"}


def printed_accounts(stdout: str) -> dict[str, str]:
    """email → password, from the rows of the table the command printed."""
    rows = [line.split() for line in stdout.splitlines()]
    accounts = {row[0]: row[1] for row in rows if row and row[0] in DEMO}
    assert set(accounts) == set(DEMO), stdout
    return accounts


def seed(database_url: str, *args: str) -> dict[str, str]:
    result = cli(database_url, "seed", "--demo", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return printed_accounts(result.stdout)


async def signed_in_as(app: FastAPI, email: str, password: str) -> httpx.AsyncClient:
    client = client_for(app)
    await login(client, email, password)
    return client


async def test_seed_creates_verified_demo_accounts_that_sign_in(app, database_url):
    result = cli(database_url, "seed", "--demo")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    passwords = printed_accounts(result.stdout)
    assert len(set(passwords.values())) == 3
    assert all(len(password) >= 16 for password in passwords.values())
    assert "shown only this once" in result.stdout

    for email, role in DEMO.items():
        async with client_for(app) as client:
            await login(client, email, passwords[email])
            me = (await client.get("/users/me")).json()
            assert (me["email"], me["role"], me["is_verified"]) == (email, role, True)
            assert me["name"] in result.stdout and not me["name"].isascii()  # Russian
            assert me["phone"].startswith("+7")
            admin_users = await client.get("/admin/users")
            assert admin_users.status_code == (200 if role == "admin" else 403)
    assert await user_count(app) == 3


async def test_fresh_passwords_on_every_database(app, database_url, databases):
    other_database = await databases.create()
    try:
        assert set(seed(database_url).values()).isdisjoint(seed(other_database).values())
    finally:
        await databases.drop(other_database)


async def test_a_second_run_is_refused_and_changes_nothing(app, database_url):
    passwords = seed(database_url)
    again = cli(database_url, "seed", "--demo")
    assert again.returncode == 1
    assert again.stdout == ""  # no passwords that would not work
    reason = one_line(again.stderr)
    assert reason.startswith("error: the database already has 3 accounts; nothing changed")
    assert "--force" in reason
    for email, password in passwords.items():
        assert await login_status(app, email, password) == 204
    assert await user_count(app) == 3


async def test_any_account_at_all_is_refused(app, database_url):
    async with client_for(app) as client:
        user = await signed_in(client)
        result = cli(database_url, "seed", "--demo")
        assert result.returncode == 1
        assert result.stdout == ""
        assert "already has 1 account;" in one_line(result.stderr)
        assert await user_count(app) == 1
        assert (await client.get("/users/me")).status_code == 200
    assert (await stored_user(app, user["email"])).role == UserRole.USER


async def test_force_resets_only_the_demo_accounts(app, database_url):
    old = seed(database_url)
    async with client_for(app) as bystander:
        other = await signed_in(bystander, name="Посторонний")
        demo_clients = {email: await signed_in_as(app, email, old[email]) for email in DEMO}
        try:
            # QA changed the demo accounts meanwhile: --force puts them back as they were.
            async with app.state.sessionmaker() as db, db.begin():
                await db.execute(
                    update(User)
                    .where(User.email == "admin@example.com")
                    .values(role=UserRole.USER, is_active=False, is_verified=False)
                )
                await db.execute(
                    update(User).where(User.email == "anna@example.com").values(name="Другая")
                )

            new = seed(database_url, "--force")

            for email, client in demo_clients.items():
                assert (await client.get("/users/me")).status_code == 401, email
        finally:
            for client in demo_clients.values():
                await client.aclose()
        # the other account: same session, same password, same details
        assert (await bystander.get("/users/me")).status_code == 200
        stored_other = await stored_user(app, other["email"])
        assert (stored_other.name, stored_other.role) == ("Посторонний", UserRole.USER)
    assert await login_status(app, other["email"], PASSWORD) == 204

    for email, role in DEMO.items():
        assert new[email] != old[email]
        assert await login_status(app, email, old[email]) == 400
        async with client_for(app) as client:
            await login(client, email, new[email])
            me = (await client.get("/users/me")).json()
            assert (me["role"], me["is_active"], me["is_verified"]) == (role, True, True)
    assert (await stored_user(app, "anna@example.com")).name == "Анна Кузнецова"
    assert await user_count(app) == 4


async def test_force_creates_missing_demo_accounts_next_to_others(app, database_url):
    async with client_for(app) as client:
        other = await signed_in(client)
        result = cli(database_url, "seed", "--demo", "--force")
        assert result.returncode == 0, result.stderr
        passwords = printed_accounts(result.stdout)
        assert "Created: admin@example.com, anna@example.com, boris@example.com." in result.stdout
        assert "Reset" not in result.stdout
        assert (await client.get("/users/me")).status_code == 200
    for email, password in passwords.items():
        assert await login_status(app, email, password) == 204
    assert await login_status(app, other["email"], PASSWORD) == 204
    assert await user_count(app) == 4


async def test_without_demo_it_is_a_usage_error(app, database_url):
    for args in ((), ("--force",)):
        result = cli(database_url, "seed", *args)
        assert result.returncode == 2, args
        assert result.stdout == ""
        assert "--demo" in result.stderr.splitlines()[-1]
    assert await user_count(app) == 0
