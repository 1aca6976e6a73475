"""The wallet API, in the wallet POC's shapes: ``POST /wallet/{id}/credit`` and
``/debit``, ``GET /wallet/{id}/balance`` (lean routes, :mod:`.lean`) and
``GET /wallet/{id}/transactions``. The work is the application's
(:mod:`oddstream.application.wallets`, which says who may do what)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ..application import wallets
from ..application.wallets import MAX_PAGE, MONEY_SCHEMA, STATEMENT_SCHEMA, MoneyBody
from ..projections.wallet_models.base import BOOK_FILTER
from .auth import request_principal
from .lean import Call, LeanRoute, encoder
from .openapi import MIN_POSITION, error_responses, json_answer, json_body, path_id
from .schemas import Id, MinPosition
from .services import services_of

router = APIRouter(tags=["wallets"])


async def _credit(call: Call) -> tuple[int, Any]:
    return 200, await wallets.move_money(
        call.services, call.principal, call.param, call.body, credit=True
    )


async def _debit(call: Call) -> tuple[int, Any]:
    return 200, await wallets.move_money(
        call.services, call.principal, call.param, call.body, credit=False
    )


async def _balance(call: Call) -> tuple[int, Any]:
    min_position = call.query_int("min_position")
    return 200, await wallets.balance(call.services, call.principal, call.param, min_position)


def _money_operation(summary: str, operation_id: str) -> dict[str, Any]:
    return {
        "tags": ["wallets"],
        "summary": summary,
        "operationId": operation_id,
        "parameters": [path_id("wallet_id")],
        "requestBody": json_body(MoneyBody, MONEY_SCHEMA),
        "responses": {
            "200": json_answer("The transaction, the balance after it and its position"),
            **error_responses(401, 403, 409, 413, 415, 422, 429, 503),
        },
    }


lean = [
    LeanRoute(
        "POST",
        "/wallet/{wallet_id}/credit",
        endpoint=_credit,
        operation=_money_operation("Credit a wallet (admin)", "credit"),
    ),
    LeanRoute(
        "POST",
        "/wallet/{wallet_id}/debit",
        endpoint=_debit,
        operation=_money_operation(
            "Debit a wallet (its customer or admin); an overdraft is 409 and recorded", "debit"
        ),
    ),
    LeanRoute(
        "GET",
        "/wallet/{wallet_id}/balance",
        endpoint=_balance,
        operation={
            "tags": ["wallets"],
            "summary": "A wallet's balance (its customer or admin)",
            "operationId": "balance",
            "parameters": [path_id("wallet_id"), MIN_POSITION],
            "responses": {
                "200": json_answer("The balance, the amount in play, and their position"),
                **error_responses(401, 403, 404, 409, 422, 429, 503),
            },
        },
    ),
]


@router.get(
    "/wallet/{wallet_id}/transactions",
    summary="A wallet's transactions, newest first, including refused ones",
    response_class=Response,
    responses={200: {"content": {"application/json": {"schema": STATEMENT_SCHEMA}}}},
)
async def transactions(
    request: Request,
    wallet_id: Id,
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    before: int | None = Query(None, ge=1, le=2**63 - 1, description="versions below this"),
    min_position: int | None = MinPosition,
    book: str | None = Query(
        None,
        pattern=BOOK_FILTER,
        description="only the lines of this book's bets: race-<race id> or market-<market id>",
    ),
) -> Response:
    body = await wallets.transactions(
        services_of(request),
        request_principal(request),
        wallet_id,
        limit=limit,
        before=before,
        min_position=min_position,
        book=book,
    )
    return Response(encoder.encode(body), media_type="application/json")
