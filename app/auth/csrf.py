"""Cross-origin request protection for cookie auth, after Go 1.25's
net/http.CrossOriginProtection: no token to copy, same-origin pages and Swagger UI work.

Unsafe methods are refused with 403 when the browser says the request is cross-site
(`Sec-Fetch-Site` other than same-origin/none), or, for browsers without Fetch Metadata,
when `Origin` is present and is neither this host nor one of TRUSTED_ORIGINS.
"""

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import define_error, send_error

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_CROSS_ORIGIN = define_error(
    "CSRF_CROSS_ORIGIN",
    403,
    "Запрос с другого сайта отклонён: войдите и повторите действие на сайте магазина.",
    "A request from another site was refused: repeat it on the shop's own site.",
    detail="Cross-origin request refused",
)


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
            await send_error(scope, send, CSRF_CROSS_ORIGIN.code, CSRF_CROSS_ORIGIN.detail, 403)
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
