"""``POST /quotes/events`` without the web framework: the body's media type decides how
it splits into messages; each message is answered on its own. Only a request that is
unusable as a whole is refused: a media type that is neither JSON nor NDJSON (415), an
empty JSON body or more than :data:`MAX_EVENTS_PER_REQUEST` messages (422). An empty
batch (``[]``, or NDJSON of blank lines) is answered with no outcome; the body limit (413)
is the app's edge's."""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import ApiError
from .ingest import QuoteIngest
from .messages import Message, json_messages, ndjson_lines
from .outcomes import Summary

#: the most messages one request may hold (a larger load: ``oddstream import quotes``)
MAX_EVENTS_PER_REQUEST = 10_000
JSON = "application/json"
#: bodies up to this size are split on the event loop (no thread hop)
_INLINE_BYTES = 64 * 1024
NDJSON = "application/x-ndjson"
_NDJSON_TYPES = frozenset({NDJSON, "application/ndjson", "application/jsonl"})


def media_kind(content_type: str | None) -> str:
    """``json`` or ``ndjson`` for a ``Content-Type``, else 415."""
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise ApiError(415, "unsupported_media_type", "quote events are UTF-8 JSON")
    if media == JSON or (media.startswith("application/") and media.endswith("+json")):
        return "json"
    if media in _NDJSON_TYPES:
        return "ndjson"
    raise ApiError(
        415,
        "unsupported_media_type",
        f"send quote events as {JSON} (an event or an array of them) or {NDJSON} "
        f"(an event a line), not {content_type!r}"
        if content_type
        else f"send Content-Type: {JSON} or {NDJSON}",
    )


def messages_of(content_type: str | None, body: bytes) -> list[Message]:
    """The request's messages, or a refusal of the whole request."""
    kind = media_kind(content_type)
    messages: list[Message] = []
    found = ndjson_lines(body) if kind == "ndjson" else json_messages(body)
    for message in found:
        if len(messages) == MAX_EVENTS_PER_REQUEST:
            raise ApiError(
                422,
                "too_many_events",
                f"at most {MAX_EVENTS_PER_REQUEST} events a request: split the batch, "
                "or load a file with `oddstream import quotes`",
            )
        messages.append(message)
    if kind == "json" and not body.strip():
        raise ApiError(422, "empty_body", "a JSON body holds an event or an array of them")
    return messages


async def post_events(ingest: QuoteIngest, content_type: str | None, body: bytes) -> dict[str, Any]:
    """The answer to ``POST /quotes/events``: each message's outcome, and the counts."""
    # splitting walks the body byte by byte where it nests: up to seconds for a body at
    # the size limit, in a thread so that the event loop is not held meanwhile
    messages = (
        await asyncio.to_thread(messages_of, content_type, body)
        if len(body) > _INLINE_BYTES
        else messages_of(content_type, body)
    )
    outcomes = await ingest.ingest(messages, via="http")
    return {
        **Summary.of(outcomes).to_json(),
        "results": [outcome.to_json() for outcome in outcomes],
    }
