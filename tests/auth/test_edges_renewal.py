"""The renewal middleware around a route that answers with headers of its own: called as
ASGI with the app's real cookie and codec."""

import uuid

from app.auth.renewal import SessionRenewalMiddleware
from app.auth.strategy import AUTH_STATE_KEY
from app.core.security import SessionClaims


def route(headers: list[tuple[bytes, bytes]]):
    async def app(scope, receive, send):
        scope["state"][AUTH_STATE_KEY] = SessionClaims(uuid.uuid4(), uuid.uuid4())
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def respond(app, inner) -> list[tuple[bytes, bytes]]:
    auth = app.state.auth
    middleware = SessionRenewalMiddleware(inner, auth.cookie, auth.codec)
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await middleware({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send)
    return sent[0]["headers"]


async def test_a_routes_own_cache_control_is_kept_in_any_case(app):
    headers = await respond(app, route([(b"Cache-Control", b"private, max-age=60")]))
    assert [v for n, v in headers if n.lower() == b"cache-control"] == [b"private, max-age=60"]
    assert any(n == b"set-cookie" and v.startswith(b"shop_session=") for n, v in headers)


async def test_another_cookie_does_not_stop_the_renewal(app):
    headers = await respond(app, route([(b"set-cookie", b"theme=dark; Path=/")]))
    cookies = [v for n, v in headers if n == b"set-cookie"]
    assert cookies[0] == b"theme=dark; Path=/"
    assert len(cookies) == 2 and cookies[1].startswith(b"shop_session=")
    assert (b"cache-control", b"no-store") in headers
