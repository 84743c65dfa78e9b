"""The one place that decides the auth cookie's attributes."""

from fastapi import Response
from fastapi_users.authentication import CookieTransport

from app.core.config import Settings

COOKIE_NAME = "shop_session"


class SessionCookie(CookieTransport):
    """fastapi-users' cookie transport, plus the raw header the renewal middleware sends."""

    def set_cookie_header(self, token: str) -> bytes:
        response = self._set_login_cookie(Response(), token)
        return response.headers["set-cookie"].encode("latin-1")

    def logout_response(self, status_code: int = 204) -> Response:
        return self._set_logout_cookie(Response(status_code=status_code))


def build_session_cookie(settings: Settings) -> SessionCookie:
    return SessionCookie(
        cookie_name=COOKIE_NAME,
        cookie_max_age=settings.SESSION_LIFETIME_SECONDS,
        cookie_path="/",
        cookie_domain=None,
        cookie_secure=settings.COOKIE_SECURE,
        cookie_httponly=True,
        cookie_samesite="lax",
    )
