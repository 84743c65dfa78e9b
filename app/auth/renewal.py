"""Sliding sessions: every authenticated response carries a fresh 7-day cookie.

A pure ASGI middleware. The auth strategy records the session's claims on the request
state; when the response starts, this adds a Set-Cookie with a new token, unless the
route already set the cookie itself (login, logout, logout-all, ending this session).
Every response that is authenticated or sets the cookie gets `Cache-Control: no-store`
(unless the route chose its own): no shared or browser cache keeps a user's data.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.cookie import SessionCookie
from app.auth.strategy import AUTH_STATE_KEY
from app.core.clock import utcnow
from app.core.security import SessionTokenCodec

NO_STORE = (b"cache-control", b"no-store")


class SessionRenewalMiddleware:
    def __init__(self, app: ASGIApp, cookie: SessionCookie, codec: SessionTokenCodec):
        self.app = app
        self.cookie = cookie
        self.codec = codec
        self._own_cookie_prefix = f"{cookie.cookie_name}=".encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                claims = state.get(AUTH_STATE_KEY)
                headers = list(message.get("headers", []))
                sets_cookie = self._sets_own_cookie(headers)
                if claims is not None and not sets_cookie:
                    token = self.codec.encode(claims, utcnow())
                    headers.append((b"set-cookie", self.cookie.set_cookie_header(token)))
                if (claims is not None or sets_cookie) and not any(
                    name.lower() == b"cache-control" for name, _ in headers
                ):
                    headers.append(NO_STORE)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _sets_own_cookie(self, headers: list[tuple[bytes, bytes]]) -> bool:
        return any(
            name.lower() == b"set-cookie" and value.startswith(self._own_cookie_prefix)
            for name, value in headers
        )
