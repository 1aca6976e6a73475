"""The velocity bus's messages on NATS: a batch of :class:`BusEvent`\\ s of one channel
as bytes, in msgpack (the default) or protobuf (``ODDSTREAM_BUS_FORMAT``), and back.

The receiving side reads both, whatever it publishes, so a deployment can change
format one process at a time:

- **msgpack**: the msgpack list of the events (``BusEvent`` is array-like), as the bus
  has always sent it: its first byte is an array's (``0x90``–``0x9f``, ``0xdc``, ``0xdd``).
- **protobuf**: the byte ``0x01`` then a ``BusBatch`` (``proto/oddstream/pb/velocity.proto``).
  A fixed-odds event goes as its ``MarketEvent`` when its stored JSON is exactly what
  the event encodes to (always so for the events the market writer publishes), so the
  subscriber rebuilds the same bytes; any other event (no protobuf form, or stored JSON
  that would not come back byte for byte) goes as its stored JSON bytes.

Anything else, or a message that does not decode, is :class:`MalformedMessage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import msgspec
from google.protobuf.message import DecodeError

from ..pb import velocity_pb2
from .bus import BusEvent
from .channels import TIERS

BusFormat = Literal["msgpack", "protobuf"]
FORMATS: tuple[str, ...] = get_args(BusFormat)
#: the leading byte of a protobuf message (a msgpack message starts with an array's)
PROTOBUF_V1 = 0x01

_msgpack_encoder = msgspec.msgpack.Encoder()
_msgpack_decoder = msgspec.msgpack.Decoder(list[BusEvent])
_json = msgspec.json.Encoder()


#: the scalar fields of a protobuf ``BusEvent``, each required (the publisher writes all)
_FIELDS = (
    "position",
    "stream",
    "version",
    "type",
    "velocity",
    "game_type",
    "domain",
    "channel",
    "publisher",
    "seq",
)


class MalformedMessage(ValueError):
    """Bytes that are no batch of bus events in a format this process reads."""


class _MarketEvents:
    """Stored type name ↔ fixed-odds event class (made on first use: the velocity
    package does not import the runtime's registry when nobody uses protobuf)."""

    def __init__(self) -> None:
        from ..domain.fixedodds import ALL_EVENTS
        from ..runtime import proto_events
        from ..runtime.codec import registry

        self.proto = proto_events
        self.by_name: dict[str, type[msgspec.Struct]] = {
            registry.name_of(cls): cls for cls in ALL_EVENTS
        }


_market: _MarketEvents | None = None


def _markets() -> _MarketEvents:
    global _market
    if _market is None:
        _market = _MarketEvents()
    return _market


def encode(events: Sequence[BusEvent], fmt: BusFormat) -> bytes:
    """One NATS message holding ``events`` (of one channel) in ``fmt``."""
    if fmt == "msgpack":
        return _msgpack_encoder.encode(events)
    markets = _markets()
    out = []
    for e in events:
        message = velocity_pb2.BusEvent(
            position=e.position,
            stream=e.stream,
            version=e.version,
            type=e.type,
            velocity=e.velocity,
            game_type=e.game_type,
            domain=e.domain,
            channel=e.channel,
            publisher=e.publisher,
            seq=e.seq,
        )
        envelope = _as_envelope(markets, e)
        if envelope is None:
            message.json = e.data
        else:
            message.event.CopyFrom(envelope)
        out.append(message)
    return bytes((PROTOBUF_V1,)) + velocity_pb2.BusBatch(events=out).SerializeToString()


def _as_envelope(markets: _MarketEvents, e: BusEvent) -> Any:
    """The event's ``MarketEvent`` if the subscriber can rebuild its stored JSON exactly
    from it; else None."""
    cls = markets.by_name.get(e.type)
    if cls is None:
        return None
    try:
        event = msgspec.json.decode(e.data, type=cls)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if _json.encode(msgspec.to_builtins(event, str_keys=True)) != e.data:
        return None
    return markets.proto.to_envelope(event)


def decode(data: bytes) -> list[BusEvent]:
    """The events of a message in either format (:class:`MalformedMessage` if none)."""
    if not data:
        raise MalformedMessage("an empty message")
    if data[0] == PROTOBUF_V1:
        return _decode_protobuf(data[1:])
    try:
        return _msgpack_decoder.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise MalformedMessage(f"not a msgpack list of events: {exc}") from None


def _decode_protobuf(data: bytes) -> list[BusEvent]:
    batch = velocity_pb2.BusBatch()
    try:
        batch.ParseFromString(data)
    except DecodeError as exc:
        raise MalformedMessage(f"not a protobuf BusBatch: {exc}") from None
    out = []
    for m in batch.events:
        # explicit presence: proto3 would read an absent field as 0 or "" (position 0)
        missing = [name for name in _FIELDS if not m.HasField(name)]
        if missing:
            raise MalformedMessage(f"an event without its {', '.join(missing)}")
        if m.velocity not in TIERS:
            raise MalformedMessage(f"velocity {m.velocity!r} is no tier")
        which = m.WhichOneof("data")
        if which == "json":
            stored = m.json
        elif which == "event":
            markets = _markets()
            try:
                event = markets.proto.from_envelope(m.event)
            except ValueError as exc:  # ProtoEventError
                raise MalformedMessage(f"event at position {m.position}: {exc}") from None
            if markets.by_name.get(m.type) is not type(event):
                raise MalformedMessage(f"{m.type} at position {m.position} holds another event")
            stored = _json.encode(msgspec.to_builtins(event, str_keys=True))
        else:
            raise MalformedMessage(f"the event at position {m.position} has no data")
        out.append(
            BusEvent(
                position=m.position,
                stream=m.stream,
                version=m.version,
                type=m.type,
                data=stored,
                velocity=m.velocity,  # checked above
                game_type=m.game_type,
                domain=m.domain,
                channel=m.channel,
                publisher=m.publisher,
                seq=m.seq,
            )
        )
    return out


__all__ = ["FORMATS", "PROTOBUF_V1", "BusFormat", "MalformedMessage", "decode", "encode"]
