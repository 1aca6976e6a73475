"""The domain's events ↔ their protobuf messages (``proto/oddstream/pb/*.proto``), exactly.

Every fixed-odds event (``fixedodds_pb2``) and every tote event (``tote_pb2``) has a
message of the same name whose fields are the event's, by name, so the conversion is
read off the two schemas once per class (a *plan*) rather than written per event:

- a nested struct (``MoneyLine``, ``Odds``, ``MarketLimits``, ``Runner``…) is the
  message of the field; odds are their exact fraction ``num/den`` (never a double);
- a ``StrEnum`` (``Outcome``, ``PoolType``) is the proto enum whose value names are the
  enum's prefix and the member's value (``home`` ↔ ``OUTCOME_HOME``); ``0``
  (``*_UNSPECIFIED``) is no member and is refused when read;
- every scalar field has presence (``optional``): proto3 would read an absent one as
  ``""``/``0``, so an event missing its id or an amount would be taken for one with an
  empty id or a zero amount. Absent, a field is refused when the event requires it, takes
  the event's default when it has one (``None`` for ``X | None``), as a stored JSON
  event's; a zero written is a zero read;
- a tuple standing for a record (a dividend ``(selection, cents)``, a refused
  contribution ``(ref, code, message)``) is a message whose fields are its items in
  order; a placing (runners tied) is a message holding the one list.

Reading a message builds plain values and hands them to ``msgspec.convert`` with the
event's class, so a message is held to the same types and checks as a stored JSON event
(a missing required field, a bad price: :class:`ProtoEventError`). A value a field cannot
hold (an integer past 64 bits) is a ``ValueError`` on encoding, never a silent change.

The type of a bare message is known from context (as the store's type column tells a
JSON event's); the envelopes ``MarketEvent`` and ``RaceEvent`` carry it in their
``oneof`` (:func:`to_envelope`, :func:`from_envelope`).
"""

from __future__ import annotations

import enum
import re
import typing
from collections.abc import Callable
from typing import Any

import msgspec
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message

from ..domain.fixedodds import ALL_EVENTS as MARKET_EVENTS
from ..domain.fixedodds.events import Outcome
from ..domain.tote.events import ALL_EVENTS as TOTE_EVENTS
from ..domain.tote.pools import PoolType
from ..pb import fixedodds_pb2, tote_pb2

#: messages that stand for a tuple, its items their fields in order
_POSITIONAL = {"oddstream.tote.v1.Dividend", "oddstream.tote.v1.RejectedContribution"}
#: messages that stand for a tuple of numbers, held in their only (repeated) field
_SEQUENCE = {"oddstream.tote.v1.Placing"}
#: the domain's enums, by the name of the proto enum that stands for each
_ENUMS: dict[str, type[enum.StrEnum]] = {
    "oddstream.fixedodds.v1.Outcome": Outcome,
    "oddstream.tote.v1.PoolType": PoolType,
}


#: descriptors are walked by reflection (their stubs type every link as optional)
Descriptor = Any
EnumDescriptor = Any
Field = Any


class ProtoEventError(ValueError):
    """A message that is no valid event: not protobuf, a field missing or out of range,
    an unspecified enum, a price the domain refuses."""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _EnumMap:
    """A domain enum ↔ a proto enum's numbers."""

    def __init__(self, descriptor: EnumDescriptor) -> None:
        py = _ENUMS[descriptor.full_name]
        prefix = _snake(descriptor.name).upper() + "_"
        self.to_number: dict[Any, int] = {
            member: descriptor.values_by_name[prefix + member.value.upper()].number for member in py
        }
        self.to_value: dict[int, str] = {n: m.value for m, n in self.to_number.items()}
        if len(self.to_value) != len(descriptor.values) - 1:  # all but UNSPECIFIED
            raise TypeError(f"{descriptor.full_name} and {py.__name__} differ")
        self.name = descriptor.full_name

    def value(self, number: int) -> str:
        try:
            return self.to_value[number]
        except KeyError:
            raise ProtoEventError(f"{self.name} {number} is no value") from None


_enum_maps: dict[str, _EnumMap] = {}


def _enum_map(descriptor: EnumDescriptor) -> _EnumMap:
    found = _enum_maps.get(descriptor.full_name)
    if found is None:
        found = _enum_maps[descriptor.full_name] = _EnumMap(descriptor)
    return found


# ------------------------------------------------------------------------- encoding

_Setter = Callable[[Message, Any], None]


def _item_filler(field: Field) -> Callable[[Message, Any], None]:
    """What writes one value (a struct or a tuple) into a message of ``field``'s type."""
    descriptor = field.message_type
    if descriptor.full_name in _SEQUENCE:
        (only,) = descriptor.fields
        return lambda message, value: getattr(message, only.name).extend(value)
    if descriptor.full_name in _POSITIONAL:
        setters = [_setter(f) for f in descriptor.fields]

        def positional(message: Message, value: Any) -> None:
            if len(value) != len(setters):
                raise ValueError(f"{descriptor.name} has {len(setters)} items, not {len(value)}")
            for setter, item in zip(setters, value, strict=True):
                setter(message, item)

        return positional
    return lambda message, value: _fill(message, value)


def _setter(field: Field) -> _Setter:
    """What writes a struct's value into ``field`` of a message."""
    name = field.name
    repeated = field.is_repeated
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        fill = _item_filler(field)
        if repeated:

            def add_all(message: Message, values: Any) -> None:
                container = getattr(message, name)
                for value in values:
                    fill(container.add(), value)

            return add_all

        def one(message: Message, value: Any) -> None:
            if value is not None:
                sub = getattr(message, name)
                sub.SetInParent()
                fill(sub, value)

        return one
    if field.type == FieldDescriptor.TYPE_ENUM:
        numbers = _enum_map(field.enum_type).to_number
        if repeated:
            return lambda message, values: getattr(message, name).extend(
                [numbers[v] for v in values]
            )
        return lambda message, value: setattr(message, name, numbers[value])
    if repeated:
        return lambda message, values: getattr(message, name).extend(values)

    def scalar(message: Message, value: Any) -> None:
        if value is not None:
            setattr(message, name, value)

    return scalar


_plans: dict[tuple[type[Any], str], list[tuple[str, _Setter]]] = {}


def _plan(cls: type[Any], descriptor: Descriptor) -> list[tuple[str, _Setter]]:
    key = (cls, descriptor.full_name)
    plan = _plans.get(key)
    if plan is None:
        names = [f.name for f in msgspec.structs.fields(cls)]
        if sorted(names) != sorted(descriptor.fields_by_name):
            raise TypeError(f"{cls.__name__} and {descriptor.full_name} have other fields")
        plan = _plans[key] = [(n, _setter(descriptor.fields_by_name[n])) for n in names]
    return plan


def _fill(message: Message, struct: Any) -> None:
    for name, setter in _plan(type(struct), message.DESCRIPTOR):
        setter(message, getattr(struct, name))


# ------------------------------------------------------------------------- decoding


def _read_item(field: Field, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        full_name = field.message_type.full_name
        if full_name in _SEQUENCE:
            return list(getattr(value, field.message_type.fields[0].name))
        if full_name in _POSITIONAL:
            return _read_positional(value)
        return _builtins(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum_map(field.enum_type).value(value)
    return value


_ABSENT = object()


def _read_field(message: Message, field: Field) -> Any:
    value = getattr(message, field.name)
    if field.is_repeated:
        return [_read_item(field, v) for v in value]
    if field.has_presence and not message.HasField(field.name):
        return _ABSENT
    return _read_item(field, value)


def _read_positional(message: Message) -> list[Any]:
    """A record's items, in order; each is required (a tuple has no default)."""
    items = []
    for field in message.DESCRIPTOR.fields:
        item = _read_field(message, field)
        if item is _ABSENT:
            raise ProtoEventError(f"{message.DESCRIPTOR.name} has no {field.name}")
        items.append(item)
    return items


def _builtins(message: Message) -> dict[str, Any]:
    """A message as the plain values ``msgspec.convert`` makes its struct of (fields
    unset are left out: their struct's default, or a missing field)."""
    out = {}
    for field in message.DESCRIPTOR.fields:
        value = _read_field(message, field)
        if value is not _ABSENT:
            out[field.name] = value
    return out


# ------------------------------------------------------------------------- the events

#: event class → its message class, and back
_MESSAGES: dict[type[msgspec.Struct], type[Message]] = {
    **{cls: getattr(fixedodds_pb2, cls.__name__) for cls in MARKET_EVENTS},
    **{cls: getattr(tote_pb2, cls.__name__) for cls in TOTE_EVENTS},
}
_CLASSES: dict[str, type[msgspec.Struct]] = {
    m.DESCRIPTOR.full_name: cls for cls, m in _MESSAGES.items()
}
_ENVELOPES: dict[type[msgspec.Struct], tuple[type[Message], str]] = {
    **{cls: (fixedodds_pb2.MarketEvent, _snake(cls.__name__)) for cls in MARKET_EVENTS},
    **{cls: (tote_pb2.RaceEvent, _snake(cls.__name__)) for cls in TOTE_EVENTS},
}

#: a fixed-odds or tote event
Event = typing.Any


def message_class(cls: type[msgspec.Struct]) -> type[Message]:
    """The message class of an event class (``KeyError`` for one without a message)."""
    return _MESSAGES[cls]


def to_proto(event: msgspec.Struct) -> Message:
    """The event's message (``fixedodds_pb2.MarketCreated`` for a ``MarketCreated``)."""
    message = _MESSAGES[type(event)]()
    _fill(message, event)
    return message


def from_proto(message: Message) -> Any:
    """The domain event a message holds; :class:`ProtoEventError` if it is not a valid
    one (the same checks as a stored event's)."""
    cls = _CLASSES.get(message.DESCRIPTOR.full_name)
    if cls is None:
        raise ProtoEventError(f"{message.DESCRIPTOR.full_name} is no event")
    try:
        return msgspec.convert(_builtins(message), cls)
    except msgspec.ValidationError as exc:
        raise ProtoEventError(f"{cls.__name__}: {exc}") from None


def encode(event: msgspec.Struct) -> bytes:
    """The event's message, serialized (its type is not in it: see :func:`to_envelope`)."""
    return to_proto(event).SerializeToString()


def decode(cls: type[msgspec.Struct], data: bytes) -> Any:
    """The event of class ``cls`` that ``data`` (its message, serialized) holds."""
    message = _MESSAGES[cls]()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise ProtoEventError(f"not a {cls.__name__} message: {exc}") from None
    return from_proto(message)


def to_envelope(event: msgspec.Struct) -> Message:
    """The event in its stream's envelope (``MarketEvent`` or ``RaceEvent``), which
    names its type."""
    envelope_class, field = _ENVELOPES[type(event)]
    envelope = envelope_class()
    _fill(getattr(envelope, field), event)
    getattr(envelope, field).SetInParent()
    return envelope


def from_envelope(envelope: Message) -> Any:
    """The event a ``MarketEvent`` or ``RaceEvent`` holds."""
    which = envelope.WhichOneof("event")
    if which is None:
        raise ProtoEventError(f"an empty {envelope.DESCRIPTOR.name}")
    return from_proto(getattr(envelope, which))


__all__ = [
    "ProtoEventError",
    "decode",
    "encode",
    "from_envelope",
    "from_proto",
    "message_class",
    "to_envelope",
    "to_proto",
]
