"""Validation and serialization of appends, before any database is touched.

Everything a caller can get wrong is caught here and raised as :class:`InvalidEvent`, so
that an adapter only ever sees well-formed, already-encoded rows and nothing is written
for a bad call.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

import orjson

from .envelope import ExpectedVersion, NewEvent, StreamAppend
from .errors import InvalidEvent

MAX_STREAM_ID_LENGTH = 200
MAX_TYPE_LENGTH = 200
MAX_EVENTS_PER_APPEND = 100_000
MAX_EVENT_BYTES = 1 << 20  # data + metadata, encoded
MAX_APPEND_BYTES = 64 << 20  # all events of one append, encoded
MAX_SCHEMA_VERSION = 2**31 - 1  # PostgreSQL integer
MAX_INT64 = 2**63 - 1  # versions, positions and limits are 64-bit in both databases

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_valid_types: set[str] = set()


@dataclass(slots=True)
class PreparedPart:
    """One stream's part of an append, validated and encoded (column lists, one entry an
    event, so the adapters can build rows without touching an object per event)."""

    stream_id: str
    expected: int | ExpectedVersion
    event_ids: list[bytes]
    #: Which ids the caller supplied; ``None`` when the store made them all.
    supplied: list[bool] | None
    types: list[str]
    schema_versions: list[int]
    data: list[bytes]
    metadata: list[bytes]

    def __len__(self) -> int:
        return len(self.event_ids)


def validate_stream_id(stream_id: object) -> str:
    """Return ``stream_id`` if it is acceptable, else raise :class:`InvalidEvent`."""
    if not isinstance(stream_id, str):
        raise InvalidEvent(f"stream id must be a string, not {type(stream_id).__name__}")
    if not stream_id:
        raise InvalidEvent("stream id must not be empty")
    if len(stream_id) > MAX_STREAM_ID_LENGTH:
        raise InvalidEvent(
            f"stream id is {len(stream_id)} characters long; the limit is {MAX_STREAM_ID_LENGTH}"
        )
    if _CONTROL.search(stream_id):
        raise InvalidEvent(f"stream id {stream_id!r} contains control characters")
    if stream_id != stream_id.strip():
        raise InvalidEvent(f"stream id {stream_id!r} has leading or trailing white space")
    _check_encodable(stream_id, "stream id")
    return stream_id


def _check_encodable(text: str, what: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise InvalidEvent(f"{what} {text!r} is not valid Unicode (lone surrogate)") from None


def validate_type(event_type: object) -> str:
    """Return ``event_type`` if it is an acceptable event type name."""
    if type(event_type) is not str or not event_type:
        raise InvalidEvent("event type must be a non-empty string")
    if event_type in _valid_types:
        return event_type
    if len(event_type) > MAX_TYPE_LENGTH:
        raise InvalidEvent(f"event type is longer than {MAX_TYPE_LENGTH} characters")
    if _CONTROL.search(event_type) or event_type != event_type.strip():
        raise InvalidEvent(f"event type {event_type!r} contains control characters or padding")
    _check_encodable(event_type, "event type")
    if len(_valid_types) < 10_000:
        _valid_types.add(event_type)
    return event_type


def validate_expected(expected: object) -> int | ExpectedVersion:
    """Accept an exact version (an ``int`` ≥ 0) or an :class:`ExpectedVersion`."""
    if isinstance(expected, ExpectedVersion):
        return expected
    if isinstance(expected, int) and not isinstance(expected, bool):
        if expected < 0:
            raise InvalidEvent(
                f"expected version {expected} is negative; use NO_STREAM for a new stream"
            )
        if expected > MAX_INT64:
            raise InvalidEvent(f"expected version {expected} is above 2**63 - 1")
        return expected
    raise InvalidEvent(
        f"expected version must be an int >= 0, ANY, NO_STREAM or STREAM_EXISTS, not {expected!r}"
    )


def validate_position(value: object, what: str = "position") -> int:
    if type(value) is not int or not 0 <= value <= MAX_INT64:
        raise InvalidEvent(f"{what} must be an int from 0 to 2**63 - 1, not {value!r}")
    return value


def validate_limit(limit: object) -> int:
    if type(limit) is not int or not 1 <= limit <= MAX_INT64:
        raise InvalidEvent(f"limit must be an int from 1 to 2**63 - 1, not {limit!r}")
    return limit


def new_event_ids(count: int) -> list[bytes]:
    """``count`` fresh UUIDv7 values as bytes: time-ordered, so index inserts stay local."""
    prefix = (time.time_ns() // 1_000_000).to_bytes(6, "big")
    rand = os.urandom(10 * count)
    return [
        prefix
        + bytes((0x70 | (rand[j] & 0x0F), rand[j + 1], 0x80 | (rand[j + 2] & 0x3F)))
        + rand[j + 3 : j + 10]
        for j in range(0, 10 * count, 10)
    ]


_EMPTY_OBJECT = b"{}"


def _encode(obj: object, what: str, index: int) -> bytes:
    if type(obj) is not dict:
        if isinstance(obj, Mapping):
            obj = dict(obj)
        else:
            raise InvalidEvent(
                f"event {index}: {what} must be a JSON object, not {type(obj).__name__}"
            )
    if not obj:
        return _EMPTY_OBJECT
    try:
        encoded = orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidEvent(f"event {index}: {what} is not JSON-serializable: {exc}") from None
    if b"\\u0000" in encoded and _has_nul(obj):
        # PostgreSQL's jsonb cannot hold NUL; refuse it everywhere so both stores agree
        raise InvalidEvent(f"event {index}: {what} contains a NUL character (\\u0000)")
    return encoded


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


def prepare_part(part: StreamAppend) -> PreparedPart:
    """Validate and encode one stream's part of an append."""
    if not isinstance(part, StreamAppend):
        raise InvalidEvent(f"expected a StreamAppend, not {type(part).__name__}")
    stream_id = validate_stream_id(part.stream_id)
    expected = validate_expected(part.expected)
    events = part.events
    if not isinstance(events, list | tuple):
        raise InvalidEvent("events must be a list of NewEvent")
    n = len(events)
    if not n:
        raise InvalidEvent(f"append to {stream_id!r} has no events")
    if n > MAX_EVENTS_PER_APPEND:
        raise InvalidEvent(
            f"append to {stream_id!r} has {n} events; the limit is {MAX_EVENTS_PER_APPEND}"
        )
    for index, event in enumerate(events):
        if type(event) is not NewEvent:
            raise InvalidEvent(f"event {index} is a {type(event).__name__}, not a NewEvent")
    given = [e.event_id for e in events]
    supplied: list[bool] | None = None
    if given.count(None) == n:
        event_ids = new_event_ids(n)
    else:
        fresh = iter(new_event_ids(given.count(None)))
        event_ids, supplied = [], []
        for index, eid in enumerate(given):
            if eid is None:
                event_ids.append(next(fresh))
                supplied.append(False)
            elif isinstance(eid, UUID):
                event_ids.append(eid.bytes)
                supplied.append(True)
            else:
                raise InvalidEvent(f"event {index}: event_id must be a UUID or None")
        ids = [b for b, s in zip(event_ids, supplied, strict=True) if s]
        if len(set(ids)) != len(ids):
            raise InvalidEvent("the same event id appears twice in one append")
    types = [e.type for e in events]
    valid = _valid_types
    for t in types:
        if type(t) is not str or t not in valid:
            validate_type(t)
    schema_versions = [e.schema_version for e in events]
    for sv in schema_versions:
        if type(sv) is not int or not 1 <= sv <= MAX_SCHEMA_VERSION:
            raise InvalidEvent(f"schema_version must be an int from 1 to 2**31 - 1, not {sv!r}")
    encode = _encode
    data = [encode(e.data, "data", i) for i, e in enumerate(events)]
    metadata = [encode(e.metadata, "metadata", i) for i, e in enumerate(events)]
    total = 0
    for index, (d, m) in enumerate(zip(data, metadata, strict=True)):
        size = len(d) + len(m)
        if size > MAX_EVENT_BYTES:
            raise InvalidEvent(
                f"event {index} is {size} bytes encoded; the limit is {MAX_EVENT_BYTES}"
            )
        total += size
    if total > MAX_APPEND_BYTES:
        raise InvalidEvent(f"the append is {total} bytes encoded; the limit is {MAX_APPEND_BYTES}")
    return PreparedPart(
        stream_id, expected, event_ids, supplied, types, schema_versions, data, metadata
    )


def prepare_append(parts: Sequence[StreamAppend]) -> list[PreparedPart]:
    """Validate a whole (possibly multi-stream) append; raise before anything is written."""
    if not parts:
        raise InvalidEvent("an append needs at least one stream")
    prepared = [prepare_part(p) for p in parts]
    if len(prepared) > 1:
        streams = [p.stream_id for p in prepared]
        if len(set(streams)) != len(streams):
            raise InvalidEvent("a multi-stream append names the same stream twice")
        ids = [
            eid
            for p in prepared
            if p.supplied
            for eid, s in zip(p.event_ids, p.supplied, strict=True)
            if s
        ]
        if len(set(ids)) != len(ids):
            raise InvalidEvent("the same event id appears twice in one append")
    return prepared
