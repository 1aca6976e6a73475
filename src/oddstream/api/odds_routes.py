"""The fixed-odds markets in the odds service's shapes: ``POST /odds``, ``PATCH`` and
``DELETE /odds/{external_id}``, ``POST /odds/{external_id}/suspend``, ``/resume``,
``/close``, ``/result`` and ``/void`` (a provider's commands), ``GET /odds``, ``GET
/odds/{external_id}`` and ``GET /odds/{external_id}/events`` (anyone). The work is the
application's (:mod:`oddstream.application.odds`); refusals are answered in the
clients' shape (``Status: fail``, ``Msg``) with the API's ``error`` and ``message``.

JSON by default; protobuf (``application/x-protobuf``) for a command body of that
``Content-Type`` and an answer whose ``Accept`` prefers it (``negotiation.py``,
``application/odds_proto.py``)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..application import odds, odds_proto
from ..application.bodies import schema_of
from ..application.errors import render
from ..application.services import await_reads
from ..logs import correlation_id
from .auth import request_principal
from .negotiation import answer_type, is_protobuf_body
from .openapi import COMPONENTS, MIN_POSITION
from .schemas import require_json
from .services import services_of

router = APIRouter(tags=["fixed odds"])

JSON = "application/json"
#: prices go out as JSON numbers with their exact digits
_encoder = msgspec.json.Encoder(decimal_format="number")
_GENERIC = re.compile(r"(\w+)_typing\.Annotated[^\"]*")
_GENERIC_TITLE = re.compile(r"\"(\w+)\[typing\.Annotated[^\"]*\"")


def _body_schema(command: str) -> dict[str, Any]:
    """The ``requestBody`` of a command (components named without the price type)."""
    schema, components = schema_of(odds.request_schema_type(command))
    text = json.dumps([schema, components])
    text = _GENERIC_TITLE.sub(r'"\1"', _GENERIC.sub(r"\1", text))
    schema, components = json.loads(text)
    COMPONENTS.update(components)
    return {"required": True, "content": {JSON: {"schema": schema}}}


_COMMAND_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["RequestID", "Status", "Msg", "ExternalID", "Position", "Repeated"],
    "properties": {
        "RequestID": {"type": "string"},
        "Status": {"enum": ["success"]},
        "Msg": {"type": "string"},
        "ExternalID": {"type": "string", "format": "uuid"},
        "Position": {"type": "integer", "description": "read your write with ?min_position="},
        "Repeated": {"type": "boolean", "description": "a retry: nothing was written"},
    },
}
_PRICE = {"type": "number", "description": "exact decimal odds"}
_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["ID", "ExternalID", "GameID", "MoneyLine", "Deleted", "CreatedAt", "UpdatedAt"],
    "properties": {
        "ID": {"type": "integer"},
        "ExternalID": {"type": "string", "format": "uuid"},
        "GameID": {"type": "string"},
        "MoneyLine": {
            "type": "object",
            "required": ["Home", "Away", "Draw"],
            "properties": {
                "Home": _PRICE,
                "Away": _PRICE,
                "Draw": {"anyOf": [_PRICE, {"type": "null"}]},
            },
        },
        "Deleted": {"type": "boolean"},
        "CreatedAt": {"type": "string", "format": "date-time"},
        "UpdatedAt": {"type": "string", "format": "date-time"},
        "Status": {
            "enum": list(odds.MARKET_STATUSES),
            "description": "the market's lifecycle status (always present): open, "
            "suspended (no bets until resumed), closed (no more bets), resulted, voided, "
            "deleted (Deleted is true)",
        },
    },
}
_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["ID", "OddsID", "EventID", "CreatedAt"],
    "properties": {
        "ID": {"type": "integer", "description": "the event's position in the log"},
        "OddsID": {"type": "integer", "description": "the market's ID"},
        "EventID": {"type": "string", "format": "uuid"},
        "CreatedAt": {"type": "string", "format": "date-time"},
    },
}


def _query_answer(data: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "a QueryResponse",
            "content": {
                JSON: {
                    "schema": {
                        "type": "object",
                        "required": ["RequestID", "Status", "Msg", "Data"],
                        "properties": {
                            "RequestID": {"type": "string"},
                            "Status": {"enum": ["success"]},
                            "Msg": {"type": "string"},
                            "Data": data,
                        },
                    }
                }
            },
        }
    }


#: the ``external_id`` path parameter (the bets on markets' route has it too)
EXTERNAL_ID = {
    "name": "external_id",
    "in": "path",
    "required": True,
    "description": "the market's ExternalID (a UUID, lower case)",
    "schema": {"type": "string", "pattern": odds._UUID},
}


def _page_params(what: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "page_no",
            "in": "query",
            "required": False,
            "description": f"the page of {what}, from 1",
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**62, "default": 1},
        },
        {
            "name": "page_size",
            "in": "query",
            "required": False,
            "description": f"{what} a page (at most {odds.MAX_PAGE_SIZE})",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": odds.MAX_PAGE_SIZE,
                "default": odds.DEFAULT_PAGE_SIZE,
            },
        },
        MIN_POSITION,
    ]


#: ``GET /odds``'s cursor
_AFTER_ID: dict[str, Any] = {
    "name": "after_id",
    "in": "query",
    "required": False,
    "description": "only the markets whose `ID` is above this (the last `ID` seen): pages "
    "that neither skip nor repeat a market as markets finish",
    "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "default": 0},
}


def _answer(
    status: int, body: Any, headers: dict[str, str] | None = None, media_type: str = JSON
) -> Response:
    """``body`` in JSON, or a protobuf message (``media_type`` a protobuf type)."""
    if media_type != JSON:
        return Response(body.SerializeToString(), status, headers=headers, media_type=media_type)
    return Response(_encoder.encode(body), status, headers=headers, media_type=JSON)


def _refusal(
    exc: Exception, request_id: str | None, media_type: str = JSON, *, query: bool = False
) -> Response:
    status, body, headers = render(exc)
    answer: Any = odds.fail_body(request_id, body)
    if media_type != JSON:
        answer = odds_proto.query_fail(answer) if query else odds_proto.command_message(answer)
    return _answer(status, answer, headers or None, media_type)


def _query_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """A query's headers: its answer depends on ``Accept``."""
    return {**(headers or {}), "Vary": "Accept"}


class _WithRequestId(msgspec.Struct):
    """Only a body's RequestID: the other fields are skipped, not built (a number out of
    every range elsewhere does not hide the RequestID)."""

    RequestID: object = None


_request_id_decoder = msgspec.json.Decoder(_WithRequestId)


def _request_id_of(raw: bytes) -> str | None:
    """The RequestID of a body, if it has a readable one (for the answer of a refusal)."""
    try:
        found = _request_id_decoder.decode(raw).RequestID
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        # RecursionError: nesting too deep to skip (the body is refused all the same)
        return None
    return found if isinstance(found, str) else None


#: what a command did, for the answer's ``Msg``
_DONE = {
    "UpdateOdds": "prices updated",
    "DeleteOdds": "deleted",
    "SuspendOdds": "suspended",
    "ResumeOdds": "resumed",
    "CloseOdds": "closed",
    "ResultOdds": "resulted",
    "VoidOdds": "voided",
}


async def _command(request: Request, command: str, external_id: str | None) -> Response:
    raw = b""
    proto_body = is_protobuf_body(request.headers.get("content-type"))
    media_type = answer_type(
        request.headers.get("accept"), default=odds_proto.PROTOBUF if proto_body else JSON
    )
    request_id_of = odds_proto.request_id_of if proto_body else _request_id_of
    try:
        if not proto_body:
            require_json(request.scope["headers"])
        raw = await request.body()
        services = services_of(request)
        principal = request_principal(request)
        assert services.markets is not None
        commands = odds.OddsCommands(services.markets)
        if proto_body:
            decoded = odds_proto.decode_request(command, raw)
            market, outcome = await commands.run(principal, decoded, external_id)
        else:
            market, outcome = await commands.execute(principal, command, raw, external_id)
    except Exception as exc:
        return _refusal(exc, request_id_of(raw), media_type)
    request_id = request_id_of(raw)
    services.metrics.commands.labels(command).inc()
    headers = {}
    if command == "NewOdds":
        status, done, headers = 201, "created", {"Location": f"/odds/{market}"}
    else:
        status, done = 200, _DONE[command]
    answer: Any = odds.command_response(request_id, market, outcome, f"market {market} {done}")
    if media_type != JSON:
        answer = odds_proto.command_message(answer)
    return _answer(status, answer, headers or None, media_type)


async def _query(request: Request, make: Callable[[str], Awaitable[Response]]) -> Response:
    """Answer a query with ``make(media_type)`` once the view includes ``min_position``."""
    cid = correlation_id.get() or ""
    media_type = answer_type(request.headers.get("accept"))
    try:
        services = services_of(request)
        assert services.odds_view is not None
        min_position = odds.min_position_of(request.query_params)
        await await_reads(services, services.odds_view, min_position, "odds reads")
        return await make(media_type)
    except Exception as exc:
        refusal = _refusal(exc, cid, media_type, query=True)
        refusal.headers["Vary"] = "Accept"
        return refusal


@router.post(
    "/odds",
    summary="NewOdds: a market for a game (a provider's or an admin key)",
    description="A `CommandRequest` with `Command: NewOdds`; answered 201 with a "
    "`CommandResponse` holding the market's `ExternalID` (also in `Location`) and the "
    "log `Position`. A retry with the same `RequestID` answers the same, writing nothing.",
    response_class=Response,
    openapi_extra={"requestBody": _body_schema("NewOdds")},
    responses={201: {"content": {JSON: {"schema": _COMMAND_ANSWER}}}},
    status_code=201,
)
async def new_odds(request: Request) -> Response:
    return await _command(request, "NewOdds", None)


@router.patch(
    "/odds/{external_id}",
    summary="UpdateOdds: new prices for a market (its provider's key, or an admin's)",
    response_class=Response,
    openapi_extra={"requestBody": _body_schema("UpdateOdds"), "parameters": [EXTERNAL_ID]},
    responses={200: {"content": {JSON: {"schema": _COMMAND_ANSWER}}}},
)
async def update_odds(request: Request) -> Response:
    return await _command(request, "UpdateOdds", request.path_params["external_id"])


@router.delete(
    "/odds/{external_id}",
    summary="DeleteOdds: delete a market (its provider's key, or an admin's)",
    response_class=Response,
    openapi_extra={"requestBody": _body_schema("DeleteOdds"), "parameters": [EXTERNAL_ID]},
    responses={200: {"content": {JSON: {"schema": _COMMAND_ANSWER}}}},
)
async def delete_odds(request: Request) -> Response:
    return await _command(request, "DeleteOdds", request.path_params["external_id"])


def _lifecycle_route(command: str, summary: str, description: str) -> dict[str, Any]:
    """The route arguments of a lifecycle command (``POST /odds/{external_id}/…``)."""
    return {
        "summary": f"{command}: {summary} (its provider's key, or an admin's)",
        "description": description
        + " A `CommandRequest` answered with a `CommandResponse` (`Position`: read your "
        "write with `?min_position=`); a retry with the same `RequestID` answers the same, "
        "writing nothing. A JSON body, or a protobuf `CommandRequest` with "
        "`Content-Type: application/x-protobuf` (docs/protobuf.md).",
        "response_class": Response,
        "openapi_extra": {"requestBody": _body_schema(command), "parameters": [EXTERNAL_ID]},
        "responses": {200: {"content": {JSON: {"schema": _COMMAND_ANSWER}}}},
    }


@router.post(
    "/odds/{external_id}/suspend",
    **_lifecycle_route(
        "SuspendOdds",
        "stop taking bets on an open market",
        "Bets are refused (`market_suspended`) until it is resumed; prices may change.",
    ),
)
async def suspend_odds(request: Request) -> Response:
    return await _command(request, "SuspendOdds", request.path_params["external_id"])


@router.post(
    "/odds/{external_id}/resume",
    **_lifecycle_route("ResumeOdds", "take bets again on a suspended market", ""),
)
async def resume_odds(request: Request) -> Response:
    return await _command(request, "ResumeOdds", request.path_params["external_id"])


@router.post(
    "/odds/{external_id}/close",
    **_lifecycle_route(
        "CloseOdds",
        "no more bets: the game is under way (an open or suspended market)",
        "A closed market is resulted or voided next.",
    ),
)
async def close_odds(request: Request) -> Response:
    return await _command(request, "CloseOdds", request.path_params["external_id"])


@router.post(
    "/odds/{external_id}/result",
    **_lifecycle_route(
        "ResultOdds",
        "the winning outcome(s) of a closed market, settling every bet",
        "`Payload.Winners` names one outcome, or several for a dead heat (a winning bet "
        "is paid `stake × price / n`, rounded down to the cent). The winnings are credited "
        "to the wallets once each, by the markets' cashier following the log.",
    ),
)
async def result_odds(request: Request) -> Response:
    return await _command(request, "ResultOdds", request.path_params["external_id"])


@router.post(
    "/odds/{external_id}/void",
    **_lifecycle_route(
        "VoidOdds",
        "void an open, suspended or closed market: every stake back",
        "`Payload.Reason` is recorded with the void.",
    ),
)
async def void_odds(request: Request) -> Response:
    return await _command(request, "VoidOdds", request.path_params["external_id"])


def _page_message(page_no: int, page_size: int, shown: int, total: int) -> str:
    """A page's ``Msg``: which page, of what size, and how many of how many markets."""
    return f"page {page_no} ({page_size} a page): {shown} of {total} markets"


@router.get(
    "/odds",
    summary="A page of markets, oldest first (anyone)",
    description="The markets listed are every market not over and the last "
    "`ODDSTREAM_KEEP_FINISHED_MARKETS` that are (older ones: `GET /odds/{external_id}`); "
    "`Msg` and the `X-Total-Count` header say how many are listed. Paging by `page_no` "
    "while markets finish may skip or repeat one; `after_id` (the last `ID` seen, with "
    "`page_no=1`) pages without either.",
    response_class=Response,
    openapi_extra={"parameters": [*_page_params("markets"), _AFTER_ID]},
    responses=_query_answer({"type": "array", "items": _RECORD}),
)
async def list_odds(request: Request) -> Response:
    async def make(media_type: str) -> Response:
        services = services_of(request)
        view = services.odds_view
        assert view is not None
        page_no, page_size = odds.page_of(request.query_params)
        after_id = odds.after_id_of(request.query_params)
        cid = correlation_id.get() or ""
        headers = _query_headers({"X-Total-Count": str(len(view))})
        if media_type != JSON:
            records = view.page(page_no, page_size, after_id)
            msg = _page_message(page_no, page_size, len(records), len(view))
            answer = odds_proto.query_message(cid, msg, records=records)
            return _answer(200, answer, headers, media_type)
        data, total = odds.odds_page(view, page_no, page_size, after_id)
        msg = _page_message(page_no, page_size, len(data), total)
        return _answer(200, odds.query_response(cid, data, msg), headers)

    return await _query(request, make)


@router.get(
    "/odds/{external_id}",
    summary="A market's odds record (anyone)",
    response_class=Response,
    openapi_extra={"parameters": [EXTERNAL_ID, MIN_POSITION]},
    responses=_query_answer(_RECORD),
)
async def get_odds(request: Request) -> Response:
    async def make(media_type: str) -> Response:
        services = services_of(request)
        assert services.odds_view is not None
        external_id = request.path_params["external_id"]
        record = await odds.odds_record(services.odds_view, external_id)
        cid = correlation_id.get() or ""
        if media_type != JSON:
            answer = odds_proto.query_message(cid, "ok", record=record)
            return _answer(200, answer, _query_headers(), media_type)
        return _answer(200, odds.query_response(cid, odds.record_json(record)), _query_headers())

    return await _query(request, make)


@router.get(
    "/odds/{external_id}/events",
    summary="A market's odds event log, oldest first (anyone)",
    description="`X-Total-Count` says how many events the market has.",
    response_class=Response,
    openapi_extra={"parameters": [EXTERNAL_ID, *_page_params("events")]},
    responses=_query_answer({"type": "array", "items": _EVENT}),
)
async def odds_events(request: Request) -> Response:
    async def make(media_type: str) -> Response:
        services = services_of(request)
        assert services.odds_view is not None
        page_no, page_size = odds.page_of(request.query_params)
        data, total = await odds.odds_events(
            services.odds_view,
            services.store,
            request.path_params["external_id"],
            page_no,
            page_size,
        )
        cid, msg = correlation_id.get() or "", f"{total} events"
        headers = _query_headers({"X-Total-Count": str(total)})
        if media_type != JSON:
            answer = odds_proto.query_message(cid, msg, events=data)
            return _answer(200, answer, headers, media_type)
        return _answer(200, odds.query_response(cid, data, msg), headers)

    return await _query(request, make)
