"""What every JSON body the use cases take shares: decoding with msgspec (one schema
per body, which is also what the OpenAPI document shows), the field types, and the one
validator of free text."""

from __future__ import annotations

import functools
import re
import unicodedata
from decimal import Decimal
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


#: the key that marks a free-text field's schema; the OpenAPI document replaces it by
#: the field's pattern (:func:`text_pattern`, computed once, when the document is made)
FREE_TEXT_MARK = "x-free-text"


@functools.cache
def text_pattern() -> str:
    """The JSON Schema ``pattern`` of text :func:`check_text` takes: no character of the
    refused categories, as this Python's Unicode database (``unicodedata``) has them.
    The class of the characters taken (about 700 ranges, written ``\\uXXXX`` in the BMP
    and as the characters above it): generators draw from it far faster than from the
    class of those refused."""
    ranges: list[tuple[int, int]] = []
    start = None
    category = unicodedata.category
    for code in range(0x110000):
        taken = category(chr(code)) not in _REFUSED_CATEGORIES
        if taken and start is None:
            start = code
        elif not taken and start is not None:
            ranges.append((start, code - 1))
            start = None
    if start is not None:
        ranges.append((start, 0x10FFFF))

    def char(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    body = "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges)
    return f"^[{body}]*$"


def check_text(value: str) -> str:
    """``value`` if it is printable text, else ``ValueError`` naming the first character
    that is not (so a name or reference cannot reorder or hide what is shown around
    it). The one validator of the API's free-text fields (pydantic and msgspec bodies)."""
    for index, char in enumerate(value):
        kind = _REFUSED_CATEGORIES.get(unicodedata.category(char))
        if kind is not None:
            raise ValueError(f"contains {kind} (U+{ord(char):04X} at {index}), which is refused")
    return value


#: a JSON string or number token (the strings are matched so that their insides are
#: never taken for numbers)
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?')
#: integral literals beyond this many digits stay as they are (no integer field takes them)
_MAX_INTEGRAL_DIGITS = 19


def _integral(token: re.Match[bytes]) -> bytes:
    text = token.group()
    if text[0] == 0x22 or not any(c in text for c in b".eE"):  # a string, or an integer
        return text
    value = Decimal(text.decode("ascii"))
    if value.adjusted() >= _MAX_INTEGRAL_DIGITS or value != value.to_integral_value():
        return text
    return str(int(value)).encode("ascii")


def integral_numbers(raw: bytes) -> bytes:
    """The JSON text ``raw`` with every number literal whose value is an integer written
    as that integer (``5.0``, ``5.00``, ``5e2``, ``-0.0`` → ``5``, ``5``, ``500``, ``0``).

    JSON Schema counts ``5.0`` as an integer (draft 6 on), so the OpenAPI document's
    ``integer`` fields take it; done on the literal's digits, exactly: ``100.5`` and
    ``500.0000000000000001`` (a float would round it to 500) stay as they are, and are
    refused where an integer is wanted."""
    return _TOKEN.sub(_integral, raw)


def decode(decoder: msgspec.json.Decoder[T], raw: bytes) -> T:
    """``raw`` decoded and validated by ``decoder``, or a 422 ``invalid_request`` saying
    what is wrong and where (``Expected `int`, got `str` - at `$.stake_cents```).

    An integer field given an integral number with a fraction or exponent (``5.0``) takes
    that integer (:func:`integral_numbers`); only then is the text rewritten, so the
    bodies clients usually send cost nothing more."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        if "got `float`" in str(exc):
            fixed = integral_numbers(raw)
            if fixed != raw:
                return decode(decoder, fixed)
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
