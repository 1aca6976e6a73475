"""Placing bets: one (a lean route, :mod:`.lean`) or a batch. The work is the
application's (:mod:`oddstream.application.bets`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..application.bets import BetBatchBody, BetBody, batch_decoder, place_bet_json, place_bets
from ..application.bodies import decode
from .auth import request_principal
from .lean import Call, LeanRoute, encoder
from .openapi import error_responses, json_answer, json_body, path_id
from .schemas import Id, json_writes
from .services import services_of

router = APIRouter(tags=["tote"], dependencies=[Depends(json_writes)])


async def _place_bet(call: Call) -> tuple[int, Any]:
    return 201, await place_bet_json(call.services, call.param, call.body, call.principal)


lean = [
    LeanRoute(
        "POST",
        "/races/{race_id}/bets",
        endpoint=_place_bet,
        operation={
            "tags": ["tote"],
            "summary": "Place a bet",
            "description": "Without a key, a cash bet; with a customer key (or a "
            "`wallet_id` the key may use), staked from the wallet.",
            "operationId": "place_bet",
            "parameters": [path_id("race_id")],
            "requestBody": json_body(BetBody),
            "responses": {
                "201": json_answer("The bet, and the position of its event"),
                **error_responses(401, 403, 404, 409, 413, 415, 422, 429, 503),
            },
        },
    )
]


@router.post(
    "/races/{race_id}/bets/batch",
    summary="Place up to 10,000 bets; each is accepted or rejected on its own",
    response_class=Response,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    openapi_extra={"requestBody": json_body(BetBatchBody)},
)
async def place_batch(request: Request, race_id: Id) -> Response:
    body = decode(batch_decoder, await request.body())
    answer = await place_bets(services_of(request), race_id, body, request_principal(request))
    return Response(encoder.encode(answer), media_type="application/json")
