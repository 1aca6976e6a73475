"""Why a message is not a quote event: stable reason codes and the typed exception."""

from __future__ import annotations

INVALID_JSON = "invalid_json"  # not UTF-8, not JSON, NaN/Infinity
UNKNOWN_TYPE = "unknown_type"  # an envelope type or a bare shape nobody knows
UNSUPPORTED_VERSION = "unsupported_version"  # newer than this code, or no upcaster
UPCAST_FAILED = "upcast_failed"  # an upcaster raised or returned no object
MISSING_FIELD = "missing_field"  # a required field is absent
WRONG_TYPE = "wrong_type"  # a field of the wrong JSON type (a string for a number …)
NULL_REQUIRED = "null_required"  # null where a value is required
BAD_MONEY = "bad_money"  # sub-penny, negative where not allowed, too large
BAD_VALUE = "bad_value"  # right type, wrong value: empty id, bad date, negative count
DUPLICATE_KEY = "duplicate_key"  # two products with one id, two rates with one key
TOO_BIG = "too_big"  # over MAX_EVENT_BYTES, nested deeper than MAX_DEPTH, huge number

#: Every reason an :class:`InvalidQuoteEvent` can carry.
REASONS: frozenset[str] = frozenset(
    {
        INVALID_JSON,
        UNKNOWN_TYPE,
        UNSUPPORTED_VERSION,
        UPCAST_FAILED,
        MISSING_FIELD,
        WRONG_TYPE,
        NULL_REQUIRED,
        BAD_MONEY,
        BAD_VALUE,
        DUPLICATE_KEY,
        TOO_BIG,
    }
)


class InvalidQuoteEvent(ValueError):
    """A message that is not a valid quote event.

    ``reason`` is one of :data:`REASONS` (stable: dead-letter stores and metrics key on
    it), ``path`` names the field (``products[0].rates[2].total``; ``$`` for the whole
    message), ``message`` says what was wrong; ``event_type`` and ``version`` are set
    once they are known.
    """

    def __init__(
        self,
        reason: str,
        path: str,
        message: str,
        *,
        event_type: str | None = None,
        version: int | None = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.message = message
        self.event_type = event_type
        self.version = version
        super().__init__(f"{reason} at {path}: {message}")
