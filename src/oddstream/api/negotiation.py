"""Content negotiation between JSON and protobuf (the odds routes): which of the two an
``Accept`` header prefers, and whether a request's body is protobuf.

``Accept`` is read as RFC 9110 says: each media range with its ``q`` (default 1), a
type's quality the one of the most specific range that matches it (``application/json``
over ``application/*`` over ``*/*``). Protobuf is answered when its quality is above
JSON's, or equal and above 0 when the caller's default is protobuf (a protobuf body);
anything else, an absent or unreadable ``Accept`` and one that names neither included,
is answered in JSON, as every other route of the API answers (none refuses with 406).
"""

from __future__ import annotations

from ..application.odds_proto import PROTOBUF, PROTOBUF_TYPES

JSON = "application/json"


def _ranges(accept: str) -> list[tuple[str, float]]:
    """``(media range, q)`` of each element of an ``Accept`` value (bad ones skipped)."""
    out = []
    for element in accept.split(",")[:64]:
        media, *params = (part.strip() for part in element.split(";"))
        if media.count("/") != 1:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        out.append((media.lower(), q))
    return out


def _quality(ranges: list[tuple[str, float]], media_type: str) -> float:
    main = media_type.split("/")[0]
    best: tuple[int, float] = (-1, 0.0)
    for media, q in ranges:
        if media == media_type:
            rank = 2
        elif media == f"{main}/*":
            rank = 1
        elif media == "*/*":
            rank = 0
        else:
            continue
        if rank > best[0]:
            best = (rank, q)
    return best[1]


def answer_type(accept: str | None, *, default: str = JSON) -> str:
    """The media type to answer with, :data:`JSON` or a protobuf one (the name the caller
    prefers of ``application/x-protobuf`` and ``application/protobuf``)."""
    if not accept:
        return default
    ranges = _ranges(accept)
    json_q = _quality(ranges, JSON)
    proto_type = max(PROTOBUF_TYPES, key=lambda t: (_quality(ranges, t), t == PROTOBUF))
    proto_q = _quality(ranges, proto_type)
    if proto_q > json_q or (proto_q == json_q > 0 and default != JSON):
        return proto_type
    return JSON


def is_protobuf_body(content_type: str | None) -> bool:
    """Whether a body's ``Content-Type`` is protobuf (parameters allowed)."""
    if content_type is None:
        return False
    return content_type.split(";")[0].strip().lower() in PROTOBUF_TYPES
