"""What every JSON body the use cases take shares: decoding with msgspec (one schema
per body, which is also what the OpenAPI document shows), the field types, and the one
validator of free text."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta

from .errors import ApiError

T = TypeVar("T")

#: an id in a path or a body: a race, a bet, a wallet
Id = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]
#: a client's request id, which makes a command safe to retry
RequestId = Annotated[str, Meta(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]
#: the largest position (a signed 64-bit integer)
MAX_POSITION = 2**63 - 1


#: Unicode categories refused in free text: controls (Cc), format characters (Cf: the
#: bidi overrides and isolates, zero-width joiners and spaces, the BOM), surrogates
#: (Cs), private use (Co), unassigned code points (Cn), line and paragraph separators.
_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "a format character (bidi control or zero-width)",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


def check_text(value: str) -> str:
    """``value`` if it is printable text, else ``ValueError`` naming the first character
    that is not (so a name or reference cannot reorder or hide what is shown around
    it). The one validator of the API's free-text fields (pydantic and msgspec bodies)."""
    for index, char in enumerate(value):
        kind = _REFUSED_CATEGORIES.get(unicodedata.category(char))
        if kind is not None:
            raise ValueError(f"contains {kind} (U+{ord(char):04X} at {index}), which is refused")
    return value


def decode(decoder: msgspec.json.Decoder[T], raw: bytes) -> T:
    """``raw`` decoded and validated by ``decoder``, or a 422 ``invalid_request`` saying
    what is wrong and where (``Expected `int`, got `str` - at `$.stake_cents```)."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ApiError(422, "invalid_request", f"the body is not JSON: {exc}") from None


def schema_of(
    kind: Any, ref_template: str = "#/components/schemas/{name}"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON schema of a msgspec type, as the OpenAPI document holds it: the schema
    (usually a reference) and the components it refers to."""
    (schema,), components = msgspec.json.schema_components((kind,), ref_template=ref_template)
    return schema, components
