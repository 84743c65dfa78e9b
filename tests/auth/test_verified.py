"""VerifiedUser (app.auth.deps.require_verified): the gate of routes for confirmed accounts
only (orders). Anonymous → 401; signed in but unconfirmed → 403 EMAIL_NOT_CONFIRMED with
a sentence saying what to do; confirmed → through."""

from tests.helpers import signed_in
from tests.newsletters.helpers import verify


async def test_an_unconfirmed_account_is_stopped_with_its_own_code(app, client):
    await signed_in(client)
    response = await client.get("/transactions")
    assert response.status_code == 403
    body = response.json()
    assert (body["code"], body["detail"]) == ("EMAIL_NOT_CONFIRMED", "EMAIL_NOT_CONFIRMED")
    assert "/auth/confirm" in body["message"]


async def test_a_confirmed_account_goes_through(app, client):
    user = await signed_in(client)
    await verify(app, user["email"])
    response = await client.get("/transactions")
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


async def test_anonymous_callers_are_asked_to_sign_in_first(client):
    response = await client.get("/transactions")
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHORIZED"
