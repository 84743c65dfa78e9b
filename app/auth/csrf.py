"""Cross-origin request protection for cookie auth, after Go 1.25's
net/http.CrossOriginProtection: no token to copy, same-origin pages and Swagger UI work.

Unsafe methods are refused with 403 when the browser says the request is cross-site
(`Sec-Fetch-Site` other than same-origin/none), or, for browsers without Fetch Metadata,
when `Origin` is present and is neither this host nor one of TRUSTED_ORIGINS.
"""

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_ERROR = json.dumps(
    {"code": "CSRF_CROSS_ORIGIN", "detail": "Cross-origin request refused"}
).encode()


class CrossOriginProtectionMiddleware:
    def __init__(self, app: ASGIApp, trusted_origins: list[str]):
        self.app = app
        self.trusted = frozenset(trusted_origins)  # normalised by Settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and not self._allowed(dict(scope["headers"]))
        ):
            await send(
                {
                    "type": "http.response.start",
                    "status": 403,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(CSRF_ERROR)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": CSRF_ERROR})
            return
        await self.app(scope, receive, send)

    def _allowed(self, headers: dict[bytes, bytes]) -> bool:
        origin = headers.get(b"origin", b"").decode("latin-1").lower().rstrip("/")
        fetch_site = headers.get(b"sec-fetch-site", b"").decode("latin-1").lower()
        if fetch_site in ("same-origin", "none"):
            return True
        if fetch_site:
            return origin in self.trusted
        if not origin:
            return True  # not a browser, or a browser that sends neither header
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if origin != "null" and urlsplit(origin).netloc == host:
            return True
        return origin in self.trusted
