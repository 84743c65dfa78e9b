"""Request size limits: bodies (BodyLimitMiddleware) and heads (LimitedHttpToolsProtocol).

The first tests drive the app's ASGI interface directly, with a receive() that counts what
the app pulls. The last ones attack a real uvicorn started with the flags of `make run`.
"""

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.bodylimit import AUTH_MAX_BODY_BYTES, MAX_HEADER_BYTES
from app.core.config import Settings
from tests.helpers import login, new_user_data, register
from tests.server import Served, make_run_flags, send_head, serve

MIB = 1024 * 1024


# --- the middleware, in process ---------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    pulled: int  # http.request messages the app asked for

    def json(self) -> Any:
        return json.loads(self.body)


async def call(
    app: Any,
    method: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    chunks: Iterator[bytes] | None = None,
) -> Answer:
    """One request through the ASGI interface. Without `chunks` any read of the body
    fails the request, so a 413 with pulled == 0 means the body was never read."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        if chunks is None:
            raise AssertionError("the body was read")
        body = next(chunks, None)
        if body is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"shop.test"), *headers],
        "client": ("203.0.113.10", 40000),
        "server": ("shop.test", 443),
        "state": {},
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(start["status"], dict(start.get("headers", [])), body, pulled)


def declared(length: int, content_type: bytes = b"application/json") -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type), (b"content-length", str(length).encode())]


def endless(size: int = 4096, total: int = 8 * MIB) -> Iterator[bytes]:
    """Chunks with no end in sight; it does come after `total` bytes, so that an app
    without the limit fails the test rather than fill the memory."""
    for _ in range(total // size):
        yield b"a" * size


def assert_payload_too_large(answer: Answer, limit: int) -> None:
    assert answer.status == 413, answer.body
    assert answer.headers[b"content-type"] == b"application/json"
    assert answer.headers[b"connection"] == b"close"
    assert answer.json() == {
        "code": "PAYLOAD_TOO_LARGE",
        "detail": f"Request body is larger than {limit} bytes",
        "message": "Слишком большой запрос.",
    }


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/auth/register", b"application/json"),
        ("/auth/login", b"application/x-www-form-urlencoded"),
    ],
)
async def test_a_declared_length_over_the_auth_limit_is_refused_unread(app, path, content_type):
    answer = await call(app, "POST", path, declared(AUTH_MAX_BODY_BYTES + 1, content_type))

    assert_payload_too_large(answer, AUTH_MAX_BODY_BYTES)
    assert answer.pulled == 0


async def test_other_routes_allow_up_to_max_body_bytes(app, settings):
    # Over the auth limit but under MAX_BODY_BYTES: read, then 401 (not signed in).
    body = iter([b"{}"])
    answer = await call(app, "PATCH", "/users/me", declared(AUTH_MAX_BODY_BYTES + 1), body)
    assert answer.status == 401

    answer = await call(app, "PATCH", "/users/me", declared(settings.MAX_BODY_BYTES + 1))
    assert_payload_too_large(answer, settings.MAX_BODY_BYTES)
    assert answer.pulled == 0


async def test_the_limit_follows_the_max_body_bytes_setting(make_app):
    app = make_app(MAX_BODY_BYTES=1000)
    refused = await call(app, "POST", "/auth/register", declared(1001))
    allowed = await call(app, "POST", "/auth/register", declared(1000), iter([b"{}"]))
    assert_payload_too_large(refused, 1000)
    assert refused.pulled == 0
    assert allowed.status == 422  # read and validated: {} is not a user


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("POST", "/auth/register", b"application/json"),
        ("POST", "/auth/login", b"application/x-www-form-urlencoded"),
        ("PATCH", "/users/me", b"application/json"),
    ],
)
async def test_a_chunked_body_is_refused_once_past_the_limit(
    app, settings, method, path, content_type
):
    chunk = 4096
    limit = AUTH_MAX_BODY_BYTES if path.startswith("/auth/") else settings.MAX_BODY_BYTES

    answer = await call(app, method, path, [(b"content-type", content_type)], endless(chunk))

    assert_payload_too_large(answer, limit)
    # The message that passed the limit was the last one pulled.
    assert answer.pulled == limit // chunk + 1


async def test_a_chunked_body_left_unread_closes_the_connection(app):
    # The server would otherwise read (and drop) an endless body to keep the connection.
    answer = await call(app, "POST", "/no-such-route", [], endless())
    assert answer.status == 404
    assert answer.headers[b"connection"] == b"close"
    assert answer.pulled == 0


async def test_a_chunked_body_under_the_limit_is_served(app):
    body = json.dumps(new_user_data()).encode()
    answer = await call(
        app,
        "POST",
        "/auth/register",
        [(b"content-type", b"application/json")],
        iter([body[:10], body[10:]]),
    )
    assert answer.status == 201, answer.body
    assert b"connection" not in answer.headers


async def test_bodies_under_the_limit_register_and_log_in(client):
    user = await register(client, name="Б" * 100)
    await login(client, user["email"], user["password"])
    assert (await client.get("/users/me")).json()["email"] == user["email"]


# --- a real uvicorn, started as `make run` starts it --------------------------------------


def test_make_run_serves_with_the_size_limits():
    # The image's `python -m app serve` passes the same (tests/cli/test_serve.py).
    flags = make_run_flags()
    assert "app.core.bodylimit:LimitedHttpToolsProtocol" in flags
    assert "--no-proxy-headers" in flags
    assert "--proxy-headers" not in flags


@pytest.fixture
def served(settings: Settings, tmp_path: Path) -> Iterator[Served]:
    """`uvicorn app.main:app` with the flags of `make run` (tests/server.py), on this test's
    database."""
    with serve(settings, tmp_path) as server:
        yield server


def stream(size: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    """`size` bytes of a JSON document, made as they are sent."""
    head, tail = b'{"name": "', b'"}'
    yield head
    block = b"a" * chunk
    left = size - len(head) - len(tail)
    while left > 0:
        yield block[: min(chunk, left)]
        left -= chunk
    yield tail


def post_big(client: httpx.Client, size: int, *, declare: bool = True) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if declare:
        headers["content-length"] = str(size)  # else httpx sends it chunked
    return client.post("/auth/register", content=stream(size), headers=headers)


def test_a_head_over_the_cap_is_refused(served):
    status, _ = send_head(served.port, MAX_HEADER_BYTES * 2)
    assert status == b"HTTP/1.1 431 Request Header Fields Too Large"

    rss_before, peak_before = served.memory_mb()
    status, sent = send_head(served.port, 50 * MIB)
    rss_after, peak_after = served.memory_mb()

    assert status in (b"HTTP/1.1 431 Request Header Fields Too Large", None)
    assert sent < 50 * MIB  # the server closed long before the end
    assert peak_after - peak_before < 20 and rss_after - rss_before < 20
    assert httpx.get(f"{served.base}/healthz").status_code == 200


def test_a_100_mb_body_is_refused_and_a_keep_alive_client_sees_413(served):
    with httpx.Client(base_url=served.base, timeout=20) as client:
        for declare in (True, False):
            response = post_big(client, 100 * MIB, declare=declare)
            assert response.status_code == 413
            assert response.headers["content-type"] == "application/json"
            assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
            assert response.headers["connection"] == "close"
        # A body that fits in the socket buffers, read by nobody, does not reset the
        # connection before the client reads the 413 either.
        response = client.patch(
            "/users/me", content=b"a" * (2 * MIB), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert client.get("/healthz").status_code == 200


def test_six_parallel_100_mb_bodies_leave_the_memory_flat(served):
    def attack() -> int:
        with httpx.Client(base_url=served.base, timeout=20) as client:
            return post_big(client, 100 * MIB).status_code

    with httpx.Client(base_url=served.base, timeout=20) as client:  # warm the paths up
        post_big(client, 100 * MIB)
        client.post("/auth/register", json=new_user_data())
    rss_before, peak_before = served.memory_mb()

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: attack(), range(6)))
    rss_after, peak_after = served.memory_mb()

    assert peak_after - peak_before < 20, f"peak {peak_before:.0f} -> {peak_after:.0f} MB"
    assert rss_after - rss_before < 20, f"RSS {rss_before:.0f} -> {rss_after:.0f} MB"
    assert statuses == [413] * 6
