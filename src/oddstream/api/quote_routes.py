"""``POST /quotes/events``: quote events in, one by one, a batch or NDJSON (an ingest
or admin key). The work is the application's (:mod:`oddstream.application.quotes`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..application.quotes import QuoteIngest
from ..application.quotes.requests import JSON, MAX_EVENTS_PER_REQUEST, NDJSON, post_events
from .auth import require_ingest
from .lean import encoder
from .services import services_of

router = APIRouter(tags=["quotes"])

_ANY_MESSAGE: dict[str, Any] = {
    "description": "an event (an object) or a batch (an array); any other value is one "
    "message, answered dead-lettered"
}
_OUTCOME: dict[str, Any] = {
    "type": "object",
    "required": ["index", "status"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "line": {"type": "integer", "minimum": 1},
        "status": {"type": "string", "enum": ["stored", "repeated", "dead_lettered"]},
        "event_type": {"type": "string"},
        "quote_id": {"type": "string"},
        "stream": {"type": "string"},
        "position": {"type": "integer"},
        "reason": {"type": "string"},
        "path": {"type": "string"},
        "message": {"type": "string"},
        "letter_id": {"type": "string"},
    },
}
_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["stored", "repeated", "dead_lettered", "dead_lettered_by_reason", "results"],
    "properties": {
        "stored": {"type": "integer"},
        "repeated": {"type": "integer"},
        "dead_lettered": {"type": "integer"},
        "dead_lettered_by_reason": {
            "type": "object",
            "additionalProperties": {"type": "integer"},
        },
        "results": {"type": "array", "items": _OUTCOME},
    },
}


@router.post(
    "/quotes/events",
    summary="Quote events in: one, a batch or NDJSON (an ingest or admin key)",
    description=(
        "Each message is answered on its own, in order: `stored` (in `quote-<id>`), "
        "`repeated` (in the log already: nothing written) or `dead_lettered` (with its "
        "reason, the field's path and the letter's id; `oddstream dlq` replays it). "
        f"At most {MAX_EVENTS_PER_REQUEST} messages a request. See docs/analytics.md."
    ),
    response_class=Response,
    dependencies=[Depends(require_ingest)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": _ANY_MESSAGE},
                NDJSON: {"schema": {"type": "string", "description": "one JSON event a line"}},
            },
        }
    },
    responses={200: {"content": {JSON: {"schema": _ANSWER}}}},
)
async def post_quote_events(request: Request) -> Response:
    services = services_of(request)
    body = await request.body()
    answer = await post_events(
        QuoteIngest(services.store), request.headers.get("content-type"), body
    )
    return Response(encoder.encode(answer), media_type=JSON)
