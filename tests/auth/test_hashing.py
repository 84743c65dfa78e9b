"""Password hashing never runs on the event loop's thread, and at most
PASSWORD_HASH_THREADS hashes run at once."""

import asyncio
import threading
import time

import pytest

from tests.conftest import client_for
from tests.helpers import PASSWORD, login, new_user_data, register


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
    await client.patch(
        "/users/me", json={"password": "new password!", "current_password": PASSWORD}
    )

    assert len(threads) == 5  # register, login, unknown-user dummy hash, verify + new hash
    assert threading.get_ident() not in threads


@pytest.mark.parametrize("threads", [1, 2])
async def test_hashes_queue_beyond_the_configured_threads(make_app, threads):
    app = make_app(PASSWORD_HASH_THREADS=threads, RATE_LIMIT_ENABLED=False)
    helper = app.state.auth.hasher.helper
    original_hash = helper.hash
    lock = threading.Lock()
    running, most = 0, 0

    def slow_hash(password):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)  # long enough for every queued request to be waiting
        try:
            return original_hash(password)
        finally:
            with lock:
                running -= 1

    helper.hash = slow_hash
    async with client_for(app) as client:
        responses = await asyncio.gather(
            *(client.post("/auth/register", json=new_user_data()) for _ in range(5))
        )
    assert [r.status_code for r in responses] == [201] * 5
    assert most == threads
