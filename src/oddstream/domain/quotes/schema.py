"""The field tables of the v1 events: wire name, attribute, kind, required, nullable.

One table per object of the two events, read by :mod:`.codec` in both directions, so the
wire names, what is required and what may be null are written down once. Reading a field
checks its JSON type and value and raises :class:`~.errors.InvalidQuoteEvent` naming the
field's path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from .errors import (
    BAD_MONEY,
    BAD_VALUE,
    DUPLICATE_KEY,
    MISSING_FIELD,
    NULL_REQUIRED,
    TOO_BIG,
    WRONG_TYPE,
    InvalidQuoteEvent,
)
from .events import (
    AgencyProduct,
    Contact,
    Industry,
    Product,
    QuoteProductsUpdated,
    QuoteStarted,
    Rate,
)
from .money import MoneyError, pence_to_pounds, pounds_to_pence

#: The deepest nesting of objects and arrays accepted (the event's own structure is 6).
MAX_DEPTH = 64
#: The largest ``employeeCount`` accepted.
MAX_EMPLOYEE_COUNT = 10**9

#: Money fields that may be negative (wire path patterns); all others must be ≥ 0.
NEGATIVE_ALLOWED: frozenset[str] = frozenset(
    {"products[].rates[].loading", "products[].rates[].discount"}
)


def join(path: str, key: str) -> str:
    return key if path == "$" else f"{path}.{key}"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def check_text(value: str, path: str) -> str:
    """``value``, unless it holds a lone surrogate (``"\\ud800"`` in JSON): not Unicode
    text, so no UTF-8 encoder — ours, or a database's — could write it back."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidQuoteEvent(
                BAD_VALUE, path, "holds a lone UTF-16 surrogate, which is not text"
            ) from None
    return value


def free(value: Any, path: str, depth: int) -> Any:
    """A free-form JSON value, normalised: numbers exact (``int`` or finite ``Decimal``),
    arrays as lists, objects as dicts with string keys."""
    if depth > MAX_DEPTH:
        raise InvalidQuoteEvent(TOO_BIG, path, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return check_text(value, path)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidQuoteEvent(WRONG_TYPE, path, f"{value} is not a JSON number")
        return value
    if isinstance(value, (list, tuple)):
        return [free(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidQuoteEvent(WRONG_TYPE, path, f"key {key!r} is not a string")
            check_text(key, path)
            out[key] = free(item, join(path, key), depth + 1)
        return out
    raise InvalidQuoteEvent(WRONG_TYPE, path, f"{json_type(value)} is not a JSON value")


# ------------------------------------------------------------------ field kinds
#
# A kind reads one present, non-null wire value (``read``) and writes one attribute
# value back (``write``). ``pattern`` is the field's path with list indices removed,
# for rules that hold for every element (NEGATIVE_ALLOWED).


class _Kind:
    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        raise NotImplementedError

    def write(self, value: Any) -> Any:
        return value


class _Str(_Kind):
    def __init__(self, *, non_empty: bool = False) -> None:
        self.non_empty = non_empty

    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        if not isinstance(value, str):
            raise InvalidQuoteEvent(WRONG_TYPE, path, f"expected a string, got {json_type(value)}")
        if self.non_empty and not value.strip():
            raise InvalidQuoteEvent(BAD_VALUE, path, "must not be empty")
        return check_text(value, path)


class _Bool(_Kind):
    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        if not isinstance(value, bool):
            raise InvalidQuoteEvent(
                WRONG_TYPE, path, f"expected true or false, got {json_type(value)}"
            )
        return value


class _Count(_Kind):
    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidQuoteEvent(
                WRONG_TYPE, path, f"expected a whole number, got {json_type(value)}"
            )
        if not 0 <= value <= MAX_EMPLOYEE_COUNT:
            raise InvalidQuoteEvent(BAD_VALUE, path, f"{value} is not between 0 and 10**9")
        return value


class _IntOrStr(_Kind):
    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise InvalidQuoteEvent(
                WRONG_TYPE, path, f"expected a string or a whole number, got {json_type(value)}"
            )
        return check_text(value, path) if isinstance(value, str) else value


class _Money(_Kind):
    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        if isinstance(value, float):
            value = Decimal(repr(value))
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise InvalidQuoteEvent(
                WRONG_TYPE, path, f"expected an amount in pounds, got {json_type(value)}"
            )
        try:
            return pounds_to_pence(value, allow_negative=pattern in NEGATIVE_ALLOWED)
        except MoneyError as exc:
            raise InvalidQuoteEvent(BAD_MONEY, path, str(exc)) from None

    def write(self, value: Any) -> Any:
        return pence_to_pounds(value)


class _Timestamp(_Kind):
    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        if not isinstance(value, str):
            raise InvalidQuoteEvent(
                WRONG_TYPE, path, f"expected an ISO 8601 time string, got {json_type(value)}"
            )
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidQuoteEvent(BAD_VALUE, path, f"{value!r} is not an ISO 8601 time") from None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise InvalidQuoteEvent(
                BAD_VALUE, path, f"{value!r} has no UTC offset (add Z or +00:00)"
            )
        return parsed

    def write(self, value: Any) -> Any:
        return value.isoformat()


class _Date(_Kind):
    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        if not isinstance(value, str):
            raise InvalidQuoteEvent(
                WRONG_TYPE, path, f"expected a date string, got {json_type(value)}"
            )
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidQuoteEvent(
                BAD_VALUE, path, f"{value!r} is not a date (YYYY-MM-DD)"
            ) from None

    def write(self, value: Any) -> Any:
        return value.isoformat()


class _FreeObject(_Kind):
    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        if not isinstance(value, dict):
            raise InvalidQuoteEvent(WRONG_TYPE, path, f"expected an object, got {json_type(value)}")
        return free(value, path, depth)


class _FreeList(_Kind):
    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        if not isinstance(value, (list, tuple)):
            raise InvalidQuoteEvent(WRONG_TYPE, path, f"expected an array, got {json_type(value)}")
        return free(value, path, depth)


@dataclass(frozen=True)
class _Field:
    wire: str
    attr: str
    kind: _Kind
    #: absent → missing_field (else the attribute's default)
    required: bool = True
    #: null → None (else null_required when required, the default when not)
    nullable: bool = False


class _Object(_Kind):
    """One of the event's own objects: known fields typed, the rest kept in ``extra``."""

    def __init__(
        self, cls: type[Any], fields: list[_Field], *, unique: tuple[str, str] | None = None
    ) -> None:
        self.cls = cls
        self.fields = fields
        self.wire_names = frozenset(f.wire for f in fields)
        #: (list field, key field) wire names: no two elements of that list share that key
        self.unique = unique

    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise InvalidQuoteEvent(TOO_BIG, path, f"nested deeper than {MAX_DEPTH} levels")
        if not isinstance(value, dict):
            raise InvalidQuoteEvent(WRONG_TYPE, path, f"expected an object, got {json_type(value)}")
        values: dict[str, Any] = {}
        for field in self.fields:
            where = join(path, field.wire)
            if field.wire not in value:
                if field.required:
                    raise InvalidQuoteEvent(MISSING_FIELD, where, "is required")
                continue
            item = value[field.wire]
            if item is None:
                if field.nullable:
                    values[field.attr] = None
                elif field.required:
                    raise InvalidQuoteEvent(NULL_REQUIRED, where, "must not be null")
                continue
            values[field.attr] = field.kind.read(item, where, join(pattern, field.wire), depth + 1)
        extra = {
            key: item
            for key, item in value.items()
            if not (isinstance(key, str) and key in self.wire_names)
        }
        if extra:
            values["extra"] = free(extra, path, depth)
        if self.unique is not None:
            self._check_unique(values, path)
        return self.cls(**values)

    def _check_unique(self, values: dict[str, Any], path: str) -> None:
        assert self.unique is not None
        list_wire, key_wire = self.unique
        list_attr = next(f.attr for f in self.fields if f.wire == list_wire)
        key_attr = key_wire  # the unique keys ("id", "key") are named alike on both sides
        seen: dict[Any, int] = {}
        for i, element in enumerate(values.get(list_attr, ())):
            key = getattr(element, key_attr)
            if key in seen:
                raise InvalidQuoteEvent(
                    DUPLICATE_KEY,
                    f"{join(path, list_wire)}[{i}].{key_wire}",
                    f"{key!r} is also {list_wire}[{seen[key]}]'s {key_wire}",
                )
            seen[key] = i

    def write(self, value: Any) -> Any:
        out: dict[str, Any] = {}
        for field in self.fields:
            item = getattr(value, field.attr)
            out[field.wire] = None if item is None else field.kind.write(item)
        for key, item in value.extra.items():
            out.setdefault(key, item)  # a known field always wins over an extra
        return out


class _ListOf(_Kind):
    def __init__(self, element: _Kind) -> None:
        self.element = element

    def read(self, value: Any, path: str, pattern: str, depth: int) -> Any:
        if not isinstance(value, (list, tuple)):
            raise InvalidQuoteEvent(WRONG_TYPE, path, f"expected an array, got {json_type(value)}")
        return tuple(
            self.element.read(item, f"{path}[{i}]", f"{pattern}[]", depth + 1)
            for i, item in enumerate(value)
        )

    def write(self, value: Any) -> Any:
        return [self.element.write(item) for item in value]


# ------------------------------------------------------------------ the v1 shapes

_ID = _Str(non_empty=True)
_TEXT = _Str()
_MONEY = _Money()


def _optional(wire: str, attr: str, kind: _Kind) -> _Field:
    return _Field(wire, attr, kind, required=False, nullable=True)


_INDUSTRY = _Object(
    Industry,
    [
        _Field("id", "id", _IntOrStr()),
        _optional("value", "value", _TEXT),
        _optional("text", "text", _TEXT),
        _optional("label", "label", _TEXT),
    ],
)

_CONTACT = _Object(
    Contact,
    [
        _Field("firstName", "first_name", _TEXT),
        _Field("lastName", "last_name", _TEXT),
        _Field("email", "email", _TEXT),
        _optional("phone", "phone", _TEXT),
        _optional("businessType", "business_type", _TEXT),
        _optional("businessName", "business_name", _TEXT),
        _optional("businessNumber", "business_number", _TEXT),
        _optional("tradingName", "trading_name", _TEXT),
        _Field("industry", "industry", _ListOf(_INDUSTRY), required=False),
        _optional("turnover", "turnover_pence", _MONEY),
        _optional("employeeCount", "employee_count", _Count()),
        _optional("effectiveDate", "effective_date", _Date()),
        _optional("ipAddress", "ip_address", _TEXT),
    ],
)

_QUOTE_STARTED = _Object(
    QuoteStarted,
    [
        _Field("id", "id", _ID),
        _Field("reference", "reference", _ID),
        _Field("contact", "contact", _CONTACT),
        _Field("timestamp", "timestamp", _Timestamp()),
        _Field("isFirstQuote", "is_first_quote", _Bool()),
    ],
)

_AGENCY_PRODUCT = _Object(
    AgencyProduct, [_Field("guid", "guid", _ID), _optional("name", "name", _TEXT)]
)

_RATE = _Object(
    Rate,
    [
        _Field("key", "key", _ID),
        _optional("description", "description", _TEXT),
        _Field("isOffered", "is_offered", _Bool()),
        # a rate's money is always sent, null where the rate was not priced
        _Field("basePremium", "base_premium_pence", _MONEY, nullable=True),
        _Field("loading", "loading_pence", _MONEY, nullable=True),
        _Field("discount", "discount_pence", _MONEY, nullable=True),
        _Field("ipt", "ipt_pence", _MONEY, nullable=True),
        _Field("commission", "commission_pence", _MONEY, nullable=True),
        _Field("total", "total_pence", _MONEY, nullable=True),
        _Field("status", "status", _TEXT),
        _Field("ratingAttributes", "rating_attributes", _FreeObject(), required=False),
        _Field("ratingInputs", "rating_inputs", _FreeObject(), required=False),
        _Field("errors", "errors", _FreeList(), required=False),
    ],
)

_PRODUCT = _Object(
    Product,
    [
        _Field("id", "id", _ID),
        _Field("key", "key", _ID),
        _Field("name", "name", _TEXT),
        _Field("total", "total_pence", _MONEY),
        _Field("ipt", "ipt_pence", _MONEY),
        _optional("agencyProduct", "agency_product", _AGENCY_PRODUCT),
        _Field("rates", "rates", _ListOf(_RATE)),
    ],
    unique=("rates", "key"),
)

_QUOTE_PRODUCTS_UPDATED = _Object(
    QuoteProductsUpdated,
    [
        _Field("quoteId", "quote_id", _ID),
        _Field("products", "products", _ListOf(_PRODUCT)),
    ],
    unique=("products", "id"),
)

SHAPES: dict[str, _Object] = {
    "QuoteStarted": _QUOTE_STARTED,
    "QuoteProductsUpdated": _QUOTE_PRODUCTS_UPDATED,
}

#: Top-level keys that make a bare message one type or the other.
BARE_MARKERS: dict[str, frozenset[str]] = {
    "QuoteStarted": frozenset({"contact", "isFirstQuote"}),
    "QuoteProductsUpdated": frozenset({"quoteId", "products"}),
}
