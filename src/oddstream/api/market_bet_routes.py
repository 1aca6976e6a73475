"""Bets on fixed-odds markets: ``POST /odds/{external_id}/bets``, paid from a wallet.
The work is the application's (:mod:`oddstream.application.market_bets`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..application.market_bets import MarketBetBody, place_market_bet
from .auth import request_principal
from .lean import encoder
from .odds_routes import EXTERNAL_ID
from .openapi import error_responses, json_body
from .schemas import json_writes
from .services import services_of

router = APIRouter(tags=["fixed odds"], dependencies=[Depends(json_writes)])

_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"content": {"application/json": {"schema": {"type": "object"}}}}
}
_RESPONSES.update(error_responses(401, 403, 404, 409, 413, 415, 422, 429, 503))


@router.post(
    "/odds/{external_id}/bets",
    summary="Bet on a market at a price or better, paid from a wallet",
    description="A customer key pays from its own wallet; an admin key names "
    "`wallet_id`. Taken at the market's current price when it is at least the price "
    "asked (`price`, exact decimal odds, or `price_fractional`), else 409 "
    "`price_worse` and the stake stays in the wallet. A `request_id` makes a retry "
    "answer the first time's, without moving money.",
    status_code=201,
    response_class=Response,
    responses=_RESPONSES,
    openapi_extra={"requestBody": json_body(MarketBetBody), "parameters": [EXTERNAL_ID]},
)
async def place_bet_on_market(request: Request) -> Response:
    answer = await place_market_bet(
        services_of(request),
        request.path_params["external_id"],
        await request.body(),
        request_principal(request),
    )
    return Response(encoder.encode(answer), status_code=201, media_type="application/json")
