"""Limits on the size of a request: its body (an ASGI middleware) and its head (a uvicorn
protocol), each refused before it is held in memory whole.

Body: `BodyLimitMiddleware` answers 413 `{"code": "PAYLOAD_TOO_LARGE", ...}` and closes the
connection when a request declares a `Content-Length` over the limit, without reading a
byte of the body; a body without a declared length (chunked) is counted as it arrives and
refused as soon as it passes the limit. `/auth/*` (unauthenticated, small forms) has a
tighter limit than the rest (MAX_BODY_BYTES).

Head: llhttp (httptools, uvicorn's default parser) has no limit on the request line and
headers. uvicorn keeps them whole and httptools joins a header's pieces by copying, so a
200 MB header costs about 400 MB and a minute of the event loop (measured). The h11 parser
has a limit but costs about 60 % more CPU per request. `LimitedHttpToolsProtocol` keeps
httptools and closes the connection with 431 once a request's head passes
MAX_HEADER_BYTES. Serve with it: `uvicorn app.main:app --http
app.core.bodylimit:LimitedHttpToolsProtocol` (`make run` and the Dockerfile do).
"""

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.errors import error_body, send_error

AUTH_PATH_PREFIX = "/auth/"
AUTH_MAX_BODY_BYTES = 16 * 1024  # register and login are a few hundred bytes
MAX_HEADER_BYTES = 64 * 1024  # request line and headers together
# No route reads a body on these. A body sent anyway stays with uvicorn, which buffers at
# most 64 KiB of it, then stops reading until the response is sent, and then reads and drops
# the rest.
NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CLOSE = (b"connection", b"close")


class _Refusal:
    """The 413 for one limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.detail = f"Request body is larger than {limit} bytes"

    async def send(self, scope: Scope, send: Send) -> None:
        # Connection: close rather than read the rest of the body to keep the connection.
        await send_error(scope, send, "PAYLOAD_TOO_LARGE", self.detail, 413, (CLOSE,))


class _BodyTooLarge(Exception):
    """Raised from receive() to the app once the body passes the limit."""


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        auth_max_body_bytes: int = AUTH_MAX_BODY_BYTES,
    ):
        self.app = app
        self.default = _Refusal(max_body_bytes)
        self.auth = _Refusal(min(auth_max_body_bytes, max_body_bytes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in NO_BODY_METHODS:
            await self.app(scope, receive, send)
            return
        auth = self._route_path(scope).startswith(AUTH_PATH_PREFIX)
        refusal = self.auth if auth else self.default
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    break  # the server refuses such a request; count the body if it did not
                if len(value) > 18 or int(value) > refusal.limit:
                    await refusal.send(scope, send)
                    return
                # The server delivers no more than the declared length: nothing to count.
                await self.app(scope, receive, send)
                return
        await self._counted(scope, receive, send, refusal)

    @staticmethod
    def _route_path(scope: Scope) -> str:
        path: str = scope["path"]
        root = scope.get("root_path")
        return path[len(root) :] if root and path.startswith(root) else path

    async def _counted(self, scope: Scope, receive: Receive, send: Send, refusal: _Refusal) -> None:
        """A body of unknown length: count it as it arrives. Past the limit, the app's
        next read fails, whatever it answers is dropped, and the 413 is sent instead.
        An answer given before the whole body was read (404, 405) closes the connection
        too: the server would otherwise read on to the end of an endless body."""
        received = 0
        refused = False
        complete = False
        started = False

        async def receive_counted() -> Message:
            nonlocal received, refused, complete
            if refused:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > refusal.limit:
                    refused = True
                    raise _BodyTooLarge
                complete = not message.get("more_body", False)
            return message

        async def send_unless_refused(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
                if not complete:
                    message = {**message, "headers": [*message.get("headers", []), CLOSE]}
            await send(message)

        try:
            await self.app(scope, receive_counted, send_unless_refused)
        except Exception:
            if not refused:
                raise
        if refused and not started:
            await refusal.send(scope, send)


def _head_refusal() -> bytes:
    body = json.dumps(
        error_body(
            "HEADERS_TOO_LARGE",
            f"Request line and headers are larger than {MAX_HEADER_BYTES} bytes",
        )
    ).encode()
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n\r\n" + body
    )


HEAD_REFUSAL = _head_refusal()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on each request's line and headers.

    Counts the bytes received while a request's head is incomplete; past the cap (checked
    after each read, so at most one read, 256 KiB, beyond it) answers 431 and closes.
    """

    max_head_bytes = MAX_HEADER_BYTES

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_bytes = 0
        self._reading_head = True
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._reading_head:
            super().data_received(data)
            return
        self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._reading_head
            and self._head_bytes > self.max_head_bytes
            and not self.transport.is_closing()
        ):
            self._refuse_head()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0

    def _refuse_head(self) -> None:
        self.logger.warning("Request head over %d bytes refused.", self.max_head_bytes)
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(HEAD_REFUSAL)
        self.transport.close()
