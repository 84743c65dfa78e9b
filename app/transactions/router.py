"""The customer's orders: create, list, read. Only confirmed users (VerifiedUser)."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from app.auth.deps import EMAIL_NOT_CONFIRMED, VerifiedUser
from app.core.clock import utcnow
from app.core.cursor import PageCursor, PageSize
from app.core.db import SessionDep
from app.core.openapi import error_responses
from app.transactions import idempotency, service
from app.transactions.idempotency import IdempotencyKeyHeader
from app.transactions.schemas import (
    CREATE_EXAMPLES,
    HistoryEntry,
    TransactionCreate,
    TransactionDetail,
    TransactionPage,
    TransactionRead,
)
from app.transactions.service import Transactions
from app.types.enums import TransactionStatus

router = APIRouter(prefix="/transactions", tags=["transactions"])

TransactionId = Annotated[uuid.UUID, PathParam(description="Идентификатор заказа · Order id")]
StatusFilter = Annotated[
    TransactionStatus | None,
    Query(description="Только в этом статусе · Only orders in this status"),
]
SIGNED_IN_ERRORS = ("UNAUTHORIZED", EMAIL_NOT_CONFIRMED.code)


def transactions_of(request: Request) -> Transactions:
    transactions: Transactions = request.app.state.transactions
    return transactions


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TransactionDetail,
    summary="Создать заказ · Create an order",
    description=(
        "Новый заказ ждёт оплаты `PAYMENT_TIMEOUT_SECONDS` (по умолчанию 30 минут), потом "
        "становится «Не оплачено вовремя». Статус, владелец и даты задаются сервером. С "
        "заголовком `Idempotency-Key` повтор запроса не создаёт второй заказ. A new order "
        "awaits payment until `payment_due_at`; retries with the same `Idempotency-Key` "
        "return the first response."
    ),
    responses=error_responses(
        *SIGNED_IN_ERRORS, "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_IN_USE"
    ),
)
async def create_transaction(
    body: Annotated[TransactionCreate, Body(openapi_examples=CREATE_EXAMPLES)],
    user: VerifiedUser,
    db: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKeyHeader = None,
) -> TransactionDetail | JSONResponse:
    now = utcnow()
    print_ = idempotency.fingerprint(body.model_dump(mode="json"))
    if idempotency_key is not None:
        stored = await idempotency.claim(db, user.id, idempotency_key, print_, now)
        if stored is not None:
            return JSONResponse(
                stored.body,
                status_code=stored.status,
                headers={idempotency.REPLAYED_HEADER: "true"},
            )
    transaction = await transactions_of(request).create(
        db, user, amount=body.amount, currency=body.currency, description=body.description, now=now
    )
    detail = TransactionDetail.of(
        transaction,
        now,
        history=[HistoryEntry.of(row) for row in await service.history(db, transaction, now)],
    )
    if idempotency_key is not None:
        await idempotency.remember(
            db,
            user.id,
            idempotency_key,
            transaction.id,
            status.HTTP_201_CREATED,
            detail.model_dump(mode="json"),
        )
    return detail


@router.get(
    "",
    response_model=TransactionPage,
    summary="Мои заказы · My orders",
    description=(
        "Сначала новые, по `limit` на странице; следующая страница — с `cursor` из "
        "`next_cursor`. Only your own orders, newest first, keyset-paginated."
    ),
    responses=error_responses(*SIGNED_IN_ERRORS, "INVALID_CURSOR"),
)
async def list_transactions(
    user: VerifiedUser,
    db: SessionDep,
    status: StatusFilter = None,
    limit: PageSize = 20,
    cursor: PageCursor = None,
) -> TransactionPage:
    now = utcnow()
    items, next_cursor = await service.list_page(
        db, now=now, limit=limit, cursor=cursor, user_id=user.id, status=status
    )
    return TransactionPage(
        items=[TransactionRead.of(item, now) for item in items], next_cursor=next_cursor
    )


@router.get(
    "/{transaction_id}",
    response_model=TransactionDetail,
    summary="Заказ и история его статусов · An order and its status history",
    description="Только свой заказ: чужой — 404. Only your own: another's answers 404.",
    responses=error_responses(*SIGNED_IN_ERRORS, "TRANSACTION_NOT_FOUND"),
)
async def get_transaction(
    transaction_id: TransactionId, user: VerifiedUser, db: SessionDep
) -> TransactionDetail:
    now = utcnow()
    transaction = await service.get_own(db, user.id, transaction_id)
    history = [HistoryEntry.of(row) for row in await service.history(db, transaction, now)]
    return TransactionDetail.of(transaction, now, history=history)
