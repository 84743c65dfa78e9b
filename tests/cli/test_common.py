"""What the commands share: the email lookup uses the canonical spelling emails are
stored under (NFKC, lower case), whatever spelling the command was given."""

from app.cli.common import find_user
from tests.conftest import client_for
from tests.helpers import register


async def test_find_user_looks_up_the_canonical_email(app):
    async with client_for(app) as client:
        user = await register(client, email="boss@example.com")
    async with app.state.sessionmaker() as db:
        for spelling in ("boss@example.com", " Boss@EXAMPLE.com ", "ｂｏｓｓ@example.com"):
            found = await find_user(db, spelling)
            assert found is not None and str(found.id) == user["id"], spelling
        assert await find_user(db, "boss2@example.com") is None
