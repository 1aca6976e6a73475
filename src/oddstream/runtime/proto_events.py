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
#
# A struct becomes the keyword arguments of its message's constructor: nested messages
# as dicts, repeated ones as lists of dicts, so protobuf builds the whole message in C in
# one call (a sub-message built first would be copied in). Each class's plan, the
# converter of each field, is made once.

_Convert = Callable[[Any], Any]


def _item_encoder(descriptor: Descriptor) -> _Convert:
    """What makes the constructor's value (a dict) of one struct or tuple of a message
    type ``descriptor``."""
    if descriptor.full_name in _SEQUENCE:
        (only,) = descriptor.fields
        name = only.name
        return lambda value: {name: value}
    if descriptor.full_name in _POSITIONAL:
        fields = [(f.name, _encoder(f)) for f in descriptor.fields]

        def positional(value: Any) -> dict[str, Any]:
            if len(value) != len(fields):
                raise ValueError(f"{descriptor.name} has {len(fields)} items, not {len(value)}")
            return {
                name: item if convert is None else convert(item)
                for (name, convert), item in zip(fields, value, strict=True)
            }

        return positional
    plans: dict[type[Any], list[tuple[str, _Convert | None]]] = {}

    def struct(value: Any) -> dict[str, Any]:
        cls = type(value)
        plan = plans.get(cls)
        if plan is None:
            plan = plans[cls] = _encode_plan(cls, descriptor)
        return _kwargs(plan, value)

    return struct


def _encoder(field: Field) -> _Convert | None:
    """What turns a struct's value into ``field``'s constructor value (None: as it is)."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        item = _item_encoder(field.message_type)
        if field.is_repeated:
            return lambda values: [item(v) for v in values]
        return item
    if field.type == FieldDescriptor.TYPE_ENUM:
        numbers = _enum_map(field.enum_type).to_number
        if field.is_repeated:
            return lambda values: [numbers[v] for v in values]
        return numbers.__getitem__
    return None


def _encode_plan(cls: type[Any], descriptor: Descriptor) -> list[tuple[str, _Convert | None]]:
    names = [f.name for f in msgspec.structs.fields(cls)]
    if sorted(names) != sorted(descriptor.fields_by_name):
        raise TypeError(f"{cls.__name__} and {descriptor.full_name} have other fields")
    return [(n, _encoder(descriptor.fields_by_name[n])) for n in names]


def _kwargs(plan: list[tuple[str, _Convert | None]], struct: Any) -> dict[str, Any]:
    """The constructor's keyword arguments of ``struct`` (``None``: the field unset)."""
    out = {}
    for name, convert in plan:
        value = getattr(struct, name)
        if value is not None:
            out[name] = value if convert is None else convert(value)
    return out


# ------------------------------------------------------------------------- decoding
#
# A message becomes the plain values msgspec.convert makes its struct of, from the fields
# ListFields reports set (those with presence when present, the others when not zero,
# repeated ones when not empty): a plan per message type gives each field's name and
# converter, and the values of the fields it does not report.


class _DecodePlan:
    """How to read one message type: each field's name and converter (by number), and
    what a field ListFields does not report reads as."""

    def __init__(self, descriptor: Descriptor) -> None:
        self.name = descriptor.name
        self.fields: dict[int, tuple[str, _Convert | None]] = {}
        #: not reported: a repeated field is empty; a scalar without presence its zero
        #: (an enum's zero is no value: left out, so a required one is missing)
        self.absent: dict[str, Any] = {}
        for field in descriptor.fields:
            self.fields[field.number] = (field.name, _decoder(field))
            if field.is_repeated:
                self.absent[field.name] = []
            elif not field.has_presence and field.type != FieldDescriptor.TYPE_ENUM:
                self.absent[field.name] = field.default_value
        #: a record tuple's items, in order
        self.order = [f.name for f in descriptor.fields]

    def read(self, message: Message) -> dict[str, Any]:
        out = dict(self.absent)
        fields = self.fields
        for field, value in message.ListFields():
            name, convert = fields[field.number]
            out[name] = value if convert is None else convert(value)
        return out


_decode_plans: dict[str, _DecodePlan] = {}


def _decode_plan(descriptor: Descriptor) -> _DecodePlan:
    found = _decode_plans.get(descriptor.full_name)
    if found is None:
        found = _decode_plans[descriptor.full_name] = _DecodePlan(descriptor)
    return found


def _item_decoder(descriptor: Descriptor) -> _Convert:
    if descriptor.full_name in _SEQUENCE:
        (only,) = descriptor.fields
        name = only.name
        return lambda message: list(getattr(message, name))

    if descriptor.full_name in _POSITIONAL:

        def positional(message: Message) -> list[Any]:
            plan = _decode_plan(descriptor)
            values = plan.read(message)
            try:  # a record's items are all required (a tuple has no default)
                return [values[name] for name in plan.order]
            except KeyError as exc:
                raise ProtoEventError(f"{plan.name} has no {exc.args[0]}") from None

        return positional
    plan: _DecodePlan | None = None

    def struct(message: Message) -> dict[str, Any]:
        nonlocal plan
        if plan is None:  # made on first use: a message type may hold itself
            plan = _decode_plan(descriptor)
        return plan.read(message)

    return struct


def _decoder(field: Field) -> _Convert | None:
    """What turns a field's value as protobuf gives it into a plain one (None: as it is)."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        item = _item_decoder(field.message_type)
        if field.is_repeated:
            return lambda values: [item(v) for v in values]
        return item
    if field.type == FieldDescriptor.TYPE_ENUM:
        value = _enum_map(field.enum_type).value
        if field.is_repeated:
            return lambda values: [value(v) for v in values]
        return value
    if field.is_repeated:
        return list
    return None


def _builtins(message: Message) -> dict[str, Any]:
    """A message as the plain values ``msgspec.convert`` makes its struct of (fields
    unset are left out: their struct's default, or a missing field)."""
    return _decode_plan(message.DESCRIPTOR).read(message)


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

#: event class → its constructor's keyword arguments
_EVENT_ENCODERS: dict[type[msgspec.Struct], _Convert] = {
    cls: _item_encoder(message.DESCRIPTOR) for cls, message in _MESSAGES.items()
}


def _struct_kwargs(event: msgspec.Struct) -> dict[str, Any]:
    kwargs: dict[str, Any] = _EVENT_ENCODERS[type(event)](event)
    return kwargs


def message_class(cls: type[msgspec.Struct]) -> type[Message]:
    """The message class of an event class (``KeyError`` for one without a message)."""
    return _MESSAGES[cls]


def to_proto(event: msgspec.Struct) -> Message:
    """The event's message (``fixedodds_pb2.MarketCreated`` for a ``MarketCreated``)."""
    return _MESSAGES[type(event)](**_struct_kwargs(event))


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
    return envelope_class(**{field: _struct_kwargs(event)})


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
