"""`POST /payments/webhook`: the payment provider reports payments.

Signed like Stripe's webhooks: `X-Payment-Signature: t=<unix seconds>,v1=<hex>` where v1
is HMAC-SHA256 of `"<t>." + raw body` under PAYMENT_WEBHOOK_SECRET. Several v1 values may
be given (a provider rotating its secret); one must match. A timestamp more than
TOLERANCE_SECONDS from now (either way), a missing, malformed or wrong signature → 400,
and nothing is read or changed. Only then is the body parsed.

Each event is handled once (by its `id`, app.transactions.service.record_payment), so
redeliveries are harmless; so is disorder: a payment for an order already paid changes
nothing, one for an order past its deadline flags it for refund.
"""

import hashlib
import hmac
import re
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.core.clock import utcnow
from app.core.config import Settings
from app.core.db import SessionDep
from app.core.errors import DomainError
from app.core.openapi import error_responses
from app.transactions.router import transactions_of
from app.transactions.schemas import WEBHOOK_EXAMPLES, PaymentEventBody, WebhookResult

router = APIRouter(prefix="/payments", tags=["payments"])

SIGNATURE_HEADER = "X-Payment-Signature"
TOLERANCE_SECONDS = 300
SIGNATURE_HEADER_MAX_LENGTH = 1000
# What a v1 signature looks like; the header's other bytes (it is read as latin-1) never
# reach the comparison, which refuses non-ASCII strings.
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class WebhookDisabled(DomainError):
    status_code = 503
    code = "PAYMENT_WEBHOOK_DISABLED"
    message = "The payment webhook is not configured (PAYMENT_WEBHOOK_SECRET is unset)"
    message_ru = "Приём уведомлений об оплате не настроен."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "3600"})


class SignatureInvalid(DomainError):
    status_code = 400
    code = "WEBHOOK_SIGNATURE_INVALID"
    message = "The webhook signature is missing, malformed, wrong or too old"
    message_ru = "Подпись уведомления отсутствует, неверна или устарела."


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The v1 signature of `body` sent at `timestamp` (what the provider computes)."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, header: str | None, body: bytes, now: float) -> None:
    """Raise SignatureInvalid (with the reason in `detail`) unless `header` signs `body`
    within the tolerance."""
    if not header:
        raise SignatureInvalid(f"no {SIGNATURE_HEADER} header")
    if len(header) > SIGNATURE_HEADER_MAX_LENGTH:
        raise SignatureInvalid("signature header too long")
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and _HEX_SHA256.fullmatch(value):  # anything else cannot match
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureInvalid("expected t=<unix seconds>,v1=<hex HMAC-SHA256>")
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise SignatureInvalid(f"timestamp more than {TOLERANCE_SECONDS} s from now")
    expected = sign(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureInvalid("signature does not match")


def _body_schema() -> dict[str, Any]:
    schema = PaymentEventBody.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "examples": WEBHOOK_EXAMPLES}},
        }
    }


@router.post(
    "/webhook",
    response_model=WebhookResult,
    summary="Уведомление платёжной системы · Payment provider webhook",
    description=(
        "Для платёжной системы, не для браузера: без cookie, с подписью в заголовке "
        f'`{SIGNATURE_HEADER}: t=<unix-время>,v1=<hex HMAC-SHA256 от "<t>." + тело>` '
        "ключом PAYMENT_WEBHOOK_SECRET. Подпись старше 5 минут или неверная — 400. Событие "
        "`payment.succeeded` переводит заказ в «В обработке»; повтор события ничего не "
        "меняет (200). For the payment provider: a signed event; replays are harmless."
    ),
    responses=error_responses("WEBHOOK_SIGNATURE_INVALID", "PAYMENT_WEBHOOK_DISABLED"),
    openapi_extra=_body_schema(),
)
async def payment_webhook(
    request: Request,
    db: SessionDep,
    signature: str | None = Header(
        default=None,
        alias=SIGNATURE_HEADER,
        description='t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>',
    ),
) -> WebhookResult:
    settings: Settings = request.app.state.settings
    if settings.PAYMENT_WEBHOOK_SECRET is None:
        raise WebhookDisabled()
    body = await request.body()
    now = utcnow()
    verify(settings.PAYMENT_WEBHOOK_SECRET.get_secret_value(), signature, body, now.timestamp())
    try:
        event = PaymentEventBody.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]} for e in exc.errors()
        ]
        raise RequestValidationError(errors) from None
    result = await transactions_of(request).record_payment(
        db, event_id=event.id, event_type=event.type, transaction_id=event.transaction_id, now=now
    )
    return WebhookResult(result=result)
