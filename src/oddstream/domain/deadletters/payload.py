"""How a dead letter keeps the bytes it was given: exactly, as text when they are
UTF-8 the log can hold, else as base64; a prefix of an oversized payload. Pure."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

#: Payloads larger than this keep only their first this-many bytes (a log event is at
#: most 1 MiB; base64 of this is 683 KiB).
MAX_KEPT_BYTES = 512 * 1024
#: the most JSON a payload kept as text may take (control characters take six bytes)
_MAX_TEXT_JSON = 900 * 1024
UTF8 = "utf-8"
BASE64 = "base64"


class PayloadError(ValueError):
    """A kept payload that cannot be read back (an unknown encoding, bad base64)."""


@dataclass(frozen=True, slots=True)
class KeptPayload:
    """A payload as a dead letter stores it."""

    text: str
    encoding: str
    size: int
    sha256: str
    truncated: bool


def keep(raw: bytes) -> KeptPayload:
    """``raw`` as a dead letter keeps it: its bytes round-trip through :func:`restore`
    exactly, unless it is over :data:`MAX_KEPT_BYTES` (then its prefix does and
    ``truncated`` says so; its size and digest are of the whole)."""
    digest = hashlib.sha256(raw).hexdigest()
    kept = raw[:MAX_KEPT_BYTES]
    truncated = len(kept) < len(raw)
    text: str | None = None
    if not truncated and b"\x00" not in kept:  # NUL: PostgreSQL's jsonb cannot hold it
        try:
            text = kept.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and _json_size(kept) > _MAX_TEXT_JSON:
            text = None  # escaped, it would not fit in a log event: base64 does
    if text is not None:
        return KeptPayload(text, UTF8, len(raw), digest, truncated)
    return KeptPayload(base64.b64encode(kept).decode("ascii"), BASE64, len(raw), digest, truncated)


def _json_size(raw: bytes) -> int:
    """About how many bytes ``raw`` takes as a JSON string (an upper bound)."""
    controls = sum(raw.count(bytes((c,))) for c in range(0x20))
    return len(raw) + 5 * controls + raw.count(b'"') + raw.count(b"\\") + 2


def restore(text: str, encoding: str) -> bytes:
    """The bytes a kept payload holds."""
    if encoding == UTF8:
        return text.encode("utf-8")
    if encoding == BASE64:
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise PayloadError(f"the kept payload is not base64: {exc}") from None
    raise PayloadError(f"unknown payload encoding {encoding!r}")
