"""Quote events from the wire and back: envelope, versions, exact money, typed refusals.

**What a message is.** One JSON object, either

- an *envelope* ``{"type": "QuoteStarted", "version": 1, "data": {...}}`` — any object
  with a top-level ``type`` key is read as one; ``version`` (an integer ≥ 1) and ``data``
  (an object) are required, other envelope keys are ignored; or
- a *bare* event as the source system sends it: an object with ``contact`` or
  ``isFirstQuote`` is a ``QuoteStarted``, one with ``quoteId`` or ``products`` a
  ``QuoteProductsUpdated`` (both at once: ``unknown_type``). A bare event is version 1:
  the source's original shapes carry no version, so a later version must come in an
  envelope.

**Versions.** :data:`~.events.CURRENT_VERSIONS` says which version the classes in
:mod:`.events` describe (1 for both). A message at an older version is lifted one step
at a time by *upcasters* — functions from one version's ``data`` (the wire dict) to the
next's — before it is read; a newer version than the code knows is refused
(``unsupported_version``). To add ``QuoteStarted`` v2: change the class and its field
table (:mod:`.schema`), set its current version to 2 and register an upcaster for
``("QuoteStarted", 1)`` in :data:`UPCASTERS` (``tests/domain/quotes`` shows one).

**Unknown fields** are never fatal: in an event's own objects they are kept in the
object's ``extra`` (and written back by :func:`encode_quote_event`); in the envelope
they are ignored.

**Refusals.** Every bad input raises :class:`InvalidQuoteEvent` with a stable
``reason`` (one of :data:`REASONS`), the ``path`` of the offending field relative to
the event's data (``products[0].rates[2].total``; ``type``, ``version`` and ``data`` for
the envelope; ``$`` for the message as a whole) and a message saying what was wrong.

**Money** is read from the JSON number's own text as a ``Decimal`` (never a binary
float) and stored as integer pence; see :mod:`.money` for the rules and
:data:`.schema.NEGATIVE_ALLOWED` for the fields that may be negative. A ``dict`` passed in
instead of JSON text may hold ``float`` amounts: they are read through their shortest
``repr`` (``0.1`` → ``Decimal("0.1")``), which is the decimal that was parsed for every
amount of up to 15 significant digits; pass the raw bytes where you have them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from .errors import (
    INVALID_JSON,
    MISSING_FIELD,
    NULL_REQUIRED,
    TOO_BIG,
    UNKNOWN_TYPE,
    UNSUPPORTED_VERSION,
    UPCAST_FAILED,
    WRONG_TYPE,
    InvalidQuoteEvent,
)
from .events import CURRENT_VERSIONS, QuoteEvent, event_type_of
from .schema import BARE_MARKERS, SHAPES, json_type

#: The largest message accepted, in bytes of its UTF-8 JSON text.
MAX_EVENT_BYTES = 1024 * 1024
#: The longest JSON number token accepted, in characters.
MAX_NUMBER_CHARS = 100

#: Lifts one version's ``data`` (the wire dict, numbers as ``int``/``Decimal``) to the
#: next's; returns a new dict and leaves its argument as it was.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

#: Upcasters by (event type, the version they lift from): none while every event is v1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class _TooBig(Exception):
    pass


def _json_number_int(token: str) -> int:
    if len(token) > MAX_NUMBER_CHARS:
        raise _TooBig(f"a number of {len(token)} characters")
    return int(token)


def _json_number_decimal(token: str) -> Decimal:
    if len(token) > MAX_NUMBER_CHARS:
        raise _TooBig(f"a number of {len(token)} characters")
    try:
        return Decimal(token)
    except InvalidOperation:
        # the scanner passed valid JSON number syntax, so only the exponent can be past
        # what a Decimal holds (|exponent| > 999999999999999999)
        raise _TooBig(f"the number {token} is out of range") from None


def _json_constant(token: str) -> Any:
    raise ValueError(f"{token} is not JSON")


# ------------------------------------------------------------------ the codec


class QuoteCodec:
    """Decodes and encodes quote events at given current versions, with upcasters.

    The module's :func:`decode_quote_event` / :func:`encode_quote_event` use the
    default codec (:data:`~.events.CURRENT_VERSIONS`, :data:`UPCASTERS`); a codec of
    your own is for tests and for trying a new version before it is the default.
    """

    def __init__(
        self,
        *,
        versions: Mapping[str, int] = CURRENT_VERSIONS,
        upcasters: Mapping[tuple[str, int], Upcaster] = UPCASTERS,
        max_bytes: int = MAX_EVENT_BYTES,
    ) -> None:
        unknown = set(versions) ^ set(SHAPES)
        if unknown:
            raise ValueError(f"versions must name exactly {sorted(SHAPES)}")
        self.versions = dict(versions)
        self.upcasters = dict(upcasters)
        self.max_bytes = max_bytes

    def decode(self, raw: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> QuoteEvent:
        """The typed event in ``raw`` (JSON text or an already-parsed object), lifted to
        the current version; :class:`InvalidQuoteEvent` for anything else."""
        message = self._parse(raw)
        event_type, version, data = self._unwrap(message)
        data = self._upcast(event_type, version, data)
        try:
            event: QuoteEvent = SHAPES[event_type].read(data, "$", "$", 1)
        except InvalidQuoteEvent as exc:
            exc.event_type, exc.version = event_type, version
            raise
        return event

    def to_wire(self, event: QuoteEvent) -> dict[str, Any]:
        """``event`` as the envelope ``{"type", "version", "data"}`` of builtins, with
        camelCase names and money as ``Decimal`` pounds (``123456`` → ``1234.56``)."""
        name = event_type_of(event)
        return {
            "type": name,
            "version": self.versions[name],
            "data": SHAPES[name].write(event),
        }

    def encode(self, event: QuoteEvent) -> bytes:
        """``event`` as envelope JSON; money written as exact decimal numbers."""
        return _ENCODER.encode(self.to_wire(event))

    # -- steps of decode

    def _parse(self, raw: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> Any:
        if isinstance(raw, Mapping):
            return raw
        if isinstance(raw, str):
            size = len(raw.encode("utf-8", "surrogatepass"))
            text = raw
        elif isinstance(raw, (bytes, bytearray, memoryview)):
            size = len(raw)
            if size <= self.max_bytes:
                try:
                    text = bytes(raw).decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InvalidQuoteEvent(INVALID_JSON, "$", f"not UTF-8: {exc}") from None
        else:
            raise TypeError(f"expected bytes, str or a mapping, got {type(raw).__name__}")
        if size > self.max_bytes:
            raise InvalidQuoteEvent(
                TOO_BIG, "$", f"{size} bytes, more than the {self.max_bytes} accepted"
            )
        try:
            return json.loads(
                text,
                parse_float=_json_number_decimal,
                parse_int=_json_number_int,
                parse_constant=_json_constant,
            )
        except _TooBig as exc:
            raise InvalidQuoteEvent(TOO_BIG, "$", str(exc)) from None
        except RecursionError:
            raise InvalidQuoteEvent(TOO_BIG, "$", "nested too deeply") from None
        except ValueError as exc:
            raise InvalidQuoteEvent(INVALID_JSON, "$", str(exc)) from None

    def _unwrap(self, message: Any) -> tuple[str, int, dict[str, Any]]:
        if not isinstance(message, Mapping):
            raise InvalidQuoteEvent(
                WRONG_TYPE, "$", f"expected a JSON object, got {json_type(message)}"
            )
        if "type" not in message:
            return self._bare(message), 1, dict(message)
        event_type = message["type"]
        if not isinstance(event_type, str):
            raise InvalidQuoteEvent(
                WRONG_TYPE, "type", f"expected a string, got {json_type(event_type)}"
            )
        if event_type not in SHAPES:
            raise InvalidQuoteEvent(
                UNKNOWN_TYPE, "type", f"{event_type!r} is not one of {sorted(SHAPES)}"
            )
        if "version" not in message:
            raise InvalidQuoteEvent(MISSING_FIELD, "version", "is required", event_type=event_type)
        version = message["version"]
        if version is None:
            raise InvalidQuoteEvent(
                NULL_REQUIRED, "version", "must not be null", event_type=event_type
            )
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidQuoteEvent(
                WRONG_TYPE,
                "version",
                f"expected a whole number, got {json_type(version)}",
                event_type=event_type,
            )
        current = self.versions[event_type]
        if not 1 <= version <= current:
            raise InvalidQuoteEvent(
                UNSUPPORTED_VERSION,
                "version",
                f"{event_type} v{version}: this code reads v1 to v{current}",
                event_type=event_type,
                version=version,
            )
        if "data" not in message:
            raise InvalidQuoteEvent(
                MISSING_FIELD, "data", "is required", event_type=event_type, version=version
            )
        data = message["data"]
        if data is None:
            raise InvalidQuoteEvent(
                NULL_REQUIRED, "data", "must not be null", event_type=event_type, version=version
            )
        if not isinstance(data, Mapping):
            raise InvalidQuoteEvent(
                WRONG_TYPE,
                "data",
                f"expected an object, got {json_type(data)}",
                event_type=event_type,
                version=version,
            )
        return event_type, version, dict(data)

    @staticmethod
    def _bare(message: Mapping[str, Any]) -> str:
        matches = [name for name, keys in BARE_MARKERS.items() if keys & message.keys()]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise InvalidQuoteEvent(
                UNKNOWN_TYPE, "$", "has the fields of both QuoteStarted and QuoteProductsUpdated"
            )
        raise InvalidQuoteEvent(
            UNKNOWN_TYPE,
            "$",
            "neither an envelope (no 'type') nor a known event shape "
            "(QuoteStarted has 'contact', QuoteProductsUpdated has 'quoteId')",
        )

    def _upcast(self, event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
        current = self.versions[event_type]
        while version < current:
            step = self.upcasters.get((event_type, version))
            if step is None:
                raise InvalidQuoteEvent(
                    UNSUPPORTED_VERSION,
                    "version",
                    f"no upcaster lifts {event_type} from v{version}",
                    event_type=event_type,
                    version=version,
                )
            try:
                lifted = step(data)
            except Exception as exc:
                raise InvalidQuoteEvent(
                    UPCAST_FAILED,
                    "data",
                    f"lifting {event_type} from v{version} failed: {exc!r}",
                    event_type=event_type,
                    version=version,
                ) from exc
            if not isinstance(lifted, dict):
                raise InvalidQuoteEvent(
                    UPCAST_FAILED,
                    "data",
                    f"the upcaster from {event_type} v{version} returned no object",
                    event_type=event_type,
                    version=version,
                )
            data, version = lifted, version + 1
        return data


#: Writes ``Decimal`` as a JSON number from its own digits (never through float).
_ENCODER = msgspec.json.Encoder(decimal_format="number")


DEFAULT_CODEC = QuoteCodec()


def decode_quote_event(raw: bytes | str | Mapping[str, Any]) -> QuoteEvent:
    """The typed quote event in ``raw``: envelope or bare JSON text, or a parsed object.

    Raises :class:`InvalidQuoteEvent` (with ``reason``, ``path``, ``message``) for every
    kind of bad input; never anything else for bytes or text.
    """
    return DEFAULT_CODEC.decode(raw)


def encode_quote_event(event: QuoteEvent) -> bytes:
    """``event`` as envelope JSON at its current version; ``decode_quote_event`` of the
    result is equal to ``event``."""
    return DEFAULT_CODEC.encode(event)
