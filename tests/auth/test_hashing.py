"""Password hashing never runs on the event loop's thread."""

import threading

from tests.helpers import PASSWORD, login, register


async def test_hashing_and_verifying_run_off_the_event_loop(app, client):
    helper = app.state.auth.hasher.helper
    threads: list[int] = []
    original_hash, original_verify = helper.hash, helper.verify_and_update

    def recording_hash(password):
        threads.append(threading.get_ident())
        return original_hash(password)

    def recording_verify(password, hashed):
        threads.append(threading.get_ident())
        return original_verify(password, hashed)

    helper.hash, helper.verify_and_update = recording_hash, recording_verify
    user = await register(client)  # hash
    await login(client, user["email"])  # verify
    await client.post("/auth/login", data={"username": "nobody@x.example", "password": PASSWORD})
    await client.patch("/users/me", json={"password": "new password!", "current_password": PASSWORD})

    assert len(threads) == 5  # register, login, unknown-user dummy hash, verify + new hash
    assert threading.get_ident() not in threads
