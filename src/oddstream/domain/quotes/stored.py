"""How a quote event sits in the log: its type and version, and its data kept as the
exact JSON text of the wire form. Pure.

The log's JSON is read back through binary floats (``orjson``), which would round the
free-form numbers a quote event may carry (``ratingInputs``, unknown fields) and could
not hold a ``Decimal`` at all; so the event's wire ``data`` (camelCase names, money in
pounds as exact decimal numbers, :meth:`~.codec.QuoteCodec.to_wire`) is stored as JSON
*text* beside the quote's id::

    type "quotes.QuoteStarted", schema_version 1,
    data {"quote_id": "q-1", "data_json": "{\\"id\\":\\"q-1\\",…}"}

:func:`from_stored` rebuilds the envelope and decodes it with the quote codec, so an
event stored at an older version is lifted by the codec's upcasters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from .codec import DEFAULT_CODEC, QuoteCodec
from .errors import BAD_VALUE, MISSING_FIELD, UNSUPPORTED_VERSION, WRONG_TYPE, InvalidQuoteEvent
from .events import EVENT_CLASSES, QuoteEvent, QuoteProductsUpdated, QuoteStarted

#: the log's type of each event, by the name it is sent under
STORED_TYPES: dict[str, str] = {name: f"quotes.{name}" for name in EVENT_CLASSES}
_NAMES = {stored: name for name, stored in STORED_TYPES.items()}
#: the category of the quotes' streams: ``quote-<quote id>``
STREAM_CATEGORY = "quote"

_ENCODER = msgspec.json.Encoder(decimal_format="number")


class StoredQuoteEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The data of a stored quote event (either type): the quote's id and the event's
    wire data as exact JSON text."""

    quote_id: str
    data_json: str


class StoredQuoteStarted(StoredQuoteEvent, frozen=True, kw_only=True):
    """``quotes.QuoteStarted`` as stored."""


class StoredQuoteProductsUpdated(StoredQuoteEvent, frozen=True, kw_only=True):
    """``quotes.QuoteProductsUpdated`` as stored."""


#: the stored classes, by the log's type (registered in ``runtime/codec.py``)
STORED_CLASSES: dict[str, type[StoredQuoteEvent]] = {
    STORED_TYPES["QuoteStarted"]: StoredQuoteStarted,
    STORED_TYPES["QuoteProductsUpdated"]: StoredQuoteProductsUpdated,
}


def quote_id_of(event: QuoteEvent) -> str:
    return event.id if isinstance(event, QuoteStarted) else event.quote_id


def stream_of(quote_id: str) -> str:
    """The stream of a quote's events."""
    return f"{STREAM_CATEGORY}-{quote_id}"


def to_stored(event: QuoteEvent, codec: QuoteCodec = DEFAULT_CODEC) -> StoredQuoteEvent:
    """``event`` as stored (its wire data, exactly, as JSON text)."""
    wire = codec.to_wire(event)
    cls = STORED_CLASSES[STORED_TYPES[wire["type"]]]
    return cls(quote_id=quote_id_of(event), data_json=_ENCODER.encode(wire["data"]).decode())


def _envelope(name: str, version: int, data_json: str) -> bytes:
    return (
        b'{"type":"'
        + name.encode()
        + b'","version":'
        + str(version).encode()
        + b',"data":'
        + data_json.encode("utf-8", "surrogatepass")  # not UTF-8: refused by the codec
        + b"}"
    )


def wire_of_stored(stored_type: str, schema_version: int, data: Mapping[str, Any]) -> bytes:
    """A stored quote event as the wire envelope it was sent as (``{"type", "version",
    "data"}`` JSON, its data exactly as stored): what a client would post again."""
    name = _NAMES.get(stored_type)
    if name is None:
        raise ValueError(f"{stored_type!r} is not a stored quote event type")
    return _envelope(name, int(schema_version), data["data_json"])


def from_stored(
    stored_type: str,
    schema_version: int,
    data: Mapping[str, Any],
    codec: QuoteCodec = DEFAULT_CODEC,
) -> QuoteEvent:
    """The quote event of a stored one, exactly, lifted to the current version.

    :class:`InvalidQuoteEvent` for a stored form this code cannot read: a version newer
    than the code's (whatever its shape), no ``data_json`` text, or a ``quote_id`` that
    is not the event's — so a reader of the log dead-letters it rather than failing on
    it for ever."""
    name = _NAMES.get(stored_type)
    if name is None:
        raise ValueError(f"{stored_type!r} is not a stored quote event type")
    version = int(schema_version)
    text = data.get("data_json") if isinstance(data, Mapping) else None
    if not isinstance(text, str):
        supported = codec.versions[name]
        if version > supported:  # a later code's stored form, perhaps another shape
            raise InvalidQuoteEvent(
                UNSUPPORTED_VERSION,
                "$",
                f"stored at version {version}, this code reads up to {supported}",
                event_type=name,
                version=version,
            )
        raise InvalidQuoteEvent(
            MISSING_FIELD if text is None else WRONG_TYPE,
            "$.data_json",
            "the stored event has no data_json text",
            event_type=name,
            version=version,
        )
    event = codec.decode(_envelope(name, version, text))
    if data.get("quote_id") != quote_id_of(event):
        raise InvalidQuoteEvent(
            BAD_VALUE,
            "$.quote_id",
            f"stored under quote id {data.get('quote_id')!r}, the event's is "
            f"{quote_id_of(event)!r}",
            event_type=name,
            version=version,
        )
    return event


__all__ = [
    "STORED_CLASSES",
    "STORED_TYPES",
    "STREAM_CATEGORY",
    "QuoteProductsUpdated",
    "StoredQuoteEvent",
    "StoredQuoteProductsUpdated",
    "StoredQuoteStarted",
    "from_stored",
    "quote_id_of",
    "stream_of",
    "to_stored",
    "wire_of_stored",
]
