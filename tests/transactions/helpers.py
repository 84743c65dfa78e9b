"""Customers, staff and signed webhook calls for the order tests."""

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from app.transactions.models import Transaction, TransactionHistory
from app.transactions.webhook import SIGNATURE_HEADER
from tests.helpers import signed_in
from tests.newsletters.helpers import admin_client, verify

WEBHOOK_SECRET = "whsec_test_3c1f9a8e2b7d4c6f"
ORDER = {"amount": 249900, "description": "Кофемолка ручная, 1 шт."}

__all__ = ["ORDER", "WEBHOOK_SECRET", "admin_client", "customer", "history_rows", "pay", "stored"]


async def customer(
    app: Any, client: httpx.AsyncClient, *, confirmed: bool = True
) -> dict[str, Any]:
    """Register and sign in `client`; confirm the email unless told not to."""
    user = await signed_in(client)
    if confirmed:
        await verify(app, user["email"])
    return user


async def create_order(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/transactions", json={**ORDER, **overrides})
    assert response.status_code == 201, response.text
    return response.json()


def provider_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The v1 signature as the provider's documentation defines it (hex HMAC-SHA256 of
    "<t>." + body), computed here rather than with the app's own `sign`, so a change
    to the scheme on the app's side fails the tests instead of moving both sides."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signed_headers(
    body: bytes, *, secret: str = WEBHOOK_SECRET, at: float | None = None
) -> dict[str, str]:
    timestamp = int(time.time() if at is None else at)
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: f"t={timestamp},v1={provider_signature(secret, timestamp, body)}",
    }


def event(
    transaction_id: str, *, type_: str = "payment.succeeded", event_id: str | None = None
) -> bytes:
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex}",
            "type": type_,
            "transaction_id": transaction_id,
        }
    ).encode()


async def pay(
    client: httpx.AsyncClient, transaction_id: str, *, event_id: str | None = None
) -> httpx.Response:
    """The payment provider reporting a successful payment, signed as it would."""
    body = event(transaction_id, event_id=event_id)
    return await client.post("/payments/webhook", content=body, headers=signed_headers(body))


async def stored(app: Any, order_id: str) -> Transaction:
    """The order's row as the database holds it now."""
    async with app.state.sessionmaker() as db:
        transaction = await db.get(Transaction, uuid.UUID(order_id))
    assert transaction is not None
    return transaction


async def history_rows(app: Any, transaction_id: str) -> list[TransactionHistory]:
    async with app.state.sessionmaker() as db:
        rows = await db.scalars(
            select(TransactionHistory)
            .where(TransactionHistory.transaction_id == uuid.UUID(transaction_id))
            .order_by(TransactionHistory.id)
        )
        return list(rows)
