"""Unsubscribe tokens: opaque, signed, naming one user, valid until SECRET_KEY changes.

`base64url(user id (16 bytes) + HMAC-SHA256(key, user id)[:16])`, 43 characters. The key
is derived from SECRET_KEY for this purpose only, so a token is no use anywhere else. No
expiry: an unsubscribe link must work for as long as the email is in someone's mailbox
(RFC 8058 asks for it to keep working), and it can do one thing only, stop newsletters.
"""

import base64
import binascii
import hashlib
import hmac
import uuid

TOKEN_LENGTH = 43  # what `issue` returns; the routes refuse anything longer at once
_MAC_BYTES = 16


class UnsubscribeTokens:
    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"newsletter-unsubscribe", hashlib.sha256).digest()

    def _mac(self, user_bytes: bytes) -> bytes:
        return hmac.new(self._key, user_bytes, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, user_id: uuid.UUID) -> str:
        raw = user_id.bytes + self._mac(user_id.bytes)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def read(self, token: str) -> uuid.UUID | None:
        """The user a token names, or None if it is not one `issue` made with this key."""
        if len(token) != TOKEN_LENGTH:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=")
        except (binascii.Error, ValueError):
            return None
        user_bytes, mac = raw[:16], raw[16:]
        if len(raw) != 16 + _MAC_BYTES or not hmac.compare_digest(mac, self._mac(user_bytes)):
            return None
        # Canonical spelling only: base64 has look-alike spellings of the same bytes.
        if base64.urlsafe_b64encode(raw).decode().rstrip("=") != token:
            return None
        return uuid.UUID(bytes=user_bytes)
