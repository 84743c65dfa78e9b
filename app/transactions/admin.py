"""Staff routes over orders; mounted under the gated /admin router."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request

from app.auth.deps import AdminUser
from app.core.clock import utcnow
from app.core.cursor import PageCursor, PageSize
from app.core.db import SessionDep
from app.core.openapi import error_responses
from app.transactions import service
from app.transactions.models import Transaction
from app.transactions.router import StatusFilter, TransactionId, transactions_of
from app.transactions.schemas import (
    STATUS_CHANGE_EXAMPLES,
    AdminHistoryEntry,
    AdminTransactionDetail,
    AdminTransactionPage,
    AdminTransactionRead,
    StatusChange,
)
from app.types.enums import TransactionActor

router = APIRouter(prefix="/transactions", tags=["admin: transactions"])


async def _detail(db: SessionDep, transaction: Transaction) -> AdminTransactionDetail:
    now = utcnow()
    history = [AdminHistoryEntry.of(row) for row in await service.history(db, transaction, now)]
    return AdminTransactionDetail.of(transaction, now, user_id=transaction.user_id, history=history)


@router.get(
    "",
    response_model=AdminTransactionPage,
    summary="Все заказы · All orders",
    description=(
        "Сначала новые; фильтры по статусу, покупателю и пометке «оплата после срока». "
        "Newest first; filter by status, customer, flagged."
    ),
    responses=error_responses("INVALID_CURSOR"),
)
async def list_transactions(
    db: SessionDep,
    status: StatusFilter = None,
    user_id: Annotated[
        uuid.UUID | None, Query(description="Заказы этого покупателя · This customer's orders")
    ] = None,
    flagged: Annotated[
        bool | None,
        Query(description="Только помеченные к возврату (true) или без пометки (false)"),
    ] = None,
    limit: PageSize = 20,
    cursor: PageCursor = None,
) -> AdminTransactionPage:
    now = utcnow()
    items, next_cursor = await service.list_page(
        db, now=now, limit=limit, cursor=cursor, user_id=user_id, status=status, flagged=flagged
    )
    return AdminTransactionPage(
        items=[AdminTransactionRead.of(item, now, user_id=item.user_id) for item in items],
        next_cursor=next_cursor,
    )


@router.get(
    "/{transaction_id}",
    response_model=AdminTransactionDetail,
    summary="Заказ и его история · An order and its history",
    description="Любой заказ, с историей статусов и тем, кто их менял.",
    responses=error_responses("TRANSACTION_NOT_FOUND"),
)
async def get_transaction(transaction_id: TransactionId, db: SessionDep) -> AdminTransactionDetail:
    return await _detail(db, await service.get(db, transaction_id))


@router.patch(
    "/{transaction_id}",
    response_model=AdminTransactionDetail,
    summary="Сменить статус заказа · Change an order's status",
    description=(
        "Только по таблице переходов: оплата подтверждена (payment_in_progress → "
        "processing), передан в доставку (processing → in_delivery), доставлен "
        "(in_delivery → delivered). Иначе 409 со списком допустимых статусов в "
        "`detail.allowed`. Покупателю уходит письмо о доставке. Moves follow the "
        "transition table; anything else is a 409 naming the allowed next statuses."
    ),
    responses=error_responses("TRANSACTION_NOT_FOUND", "TRANSACTION_TRANSITION_NOT_ALLOWED"),
)
async def change_status(
    transaction_id: TransactionId,
    body: Annotated[StatusChange, Body(openapi_examples=STATUS_CHANGE_EXAMPLES)],
    admin: AdminUser,
    db: SessionDep,
    request: Request,
) -> AdminTransactionDetail:
    transaction = await service.get(db, transaction_id)
    await transactions_of(request).move(
        db,
        transaction,
        body.status,
        actor=TransactionActor.ADMIN,
        now=utcnow(),
        actor_user_id=admin.id,
        note=body.note,
    )
    return await _detail(db, transaction)
