"""The velocity bus's message formats (``velocity/bus_format.py``): every fixed-odds
event, stored as the market writer stores it, comes back the same ``BusEvent`` (its
stored JSON byte for byte) through protobuf as through msgpack; other events go as
their stored bytes; a message in neither format is refused, never misread."""

from __future__ import annotations

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oddstream.domain.fixedodds import ALL_EVENTS as MARKET_EVENTS
from oddstream.domain.fixedodds.events import MarketSuspended
from oddstream.domain.tote.events import BettingOpened
from oddstream.pb import velocity_pb2
from oddstream.runtime.codec import registry
from oddstream.velocity import BusEvent
from oddstream.velocity.bus_format import PROTOBUF_V1, MalformedMessage, decode, encode
from pb.test_proto_events import strategy

ANY_MARKET_EVENT = st.one_of([strategy(mi.type_info(cls)) for cls in MARKET_EVENTS])


def as_bus_event(event: msgspec.Struct, n: int = 1) -> BusEvent:
    """As the market writer makes it (``market_writer.bus_events``)."""
    new = registry.to_new_event(event)
    return BusEvent(
        position=n,
        stream="market-m1",
        version=n,
        type=new.type,
        data=msgspec.json.encode(new.data),
        velocity="medium",
        game_type="football",
        domain="odds",
        channel="medium.odds.football",
        publisher="p1",
        seq=n,
    )


def carried(data: bytes) -> list[str | None]:
    assert data[0] == PROTOBUF_V1
    batch = velocity_pb2.BusBatch.FromString(data[1:])
    return [m.WhichOneof("data") for m in batch.events]


@given(st.lists(ANY_MARKET_EVENT, min_size=1, max_size=5))
def test_market_events_come_back_the_same_through_either_format(events) -> None:
    sent = [as_bus_event(e, n) for n, e in enumerate(events, 1)]
    as_protobuf = encode(sent, "protobuf")
    assert carried(as_protobuf) == ["event"] * len(sent)  # in their protobuf form
    assert decode(as_protobuf) == sent
    assert decode(encode(sent, "msgpack")) == sent


def test_an_event_without_a_protobuf_form_goes_as_its_stored_json() -> None:
    tote = as_bus_event(BettingOpened("r1"))
    # a fixed-odds event whose stored bytes are not what it encodes to (spaces): its
    # protobuf form would come back as other bytes, so it goes as they are
    spaced = msgspec.structs.replace(
        as_bus_event(MarketSuspended(market_id="m1"), 2), data=b'{"market_id": "m1"}'
    )
    odd = msgspec.structs.replace(tote, position=3, type="fixedodds.Nope", data=b"[1]")
    sent = [tote, spaced, odd]
    data = encode(sent, "protobuf")
    assert carried(data) == ["json", "json", "json"]
    assert decode(data) == sent


def test_the_two_formats_are_told_apart_by_their_first_byte() -> None:
    sent = [as_bus_event(MarketSuspended(market_id="m1"))]
    as_msgpack = encode(sent, "msgpack")
    assert as_msgpack[0] == 0x91  # a msgpack array of one, as the bus always sent
    assert encode(sent, "protobuf")[0] == PROTOBUF_V1


def _full(**fields: object) -> velocity_pb2.BusEvent:
    """A protobuf BusEvent with every scalar field present (``fields`` replace some)."""
    values: dict[str, object] = {
        "position": 1,
        "stream": "market-m1",
        "version": 1,
        "type": "fixedodds.MarketSuspended",
        "velocity": "low",
        "game_type": "football",
        "domain": "odds",
        "channel": "low.odds.football",
        "publisher": "p1",
        "seq": 1,
    }
    return velocity_pb2.BusEvent(**(values | fields))


def _bad_envelope() -> bytes:
    message = _full()
    message.event.market_suspended.SetInParent()  # no market_id: no valid event
    return bytes((PROTOBUF_V1,)) + velocity_pb2.BusBatch(events=[message]).SerializeToString()


def _without(field: str) -> bytes:
    """A valid message with one of its event's fields absent (proto3 reads it as 0/"")."""
    data = encode([as_bus_event(MarketSuspended(market_id="m1"))], "protobuf")
    batch = velocity_pb2.BusBatch.FromString(data[1:])
    batch.events[0].ClearField(field)
    return bytes((PROTOBUF_V1,)) + batch.SerializeToString()


def test_an_event_at_zero_still_travels() -> None:
    # explicit presence: a field that is 0 is written, not read as absent
    sent = [msgspec.structs.replace(as_bus_event(MarketSuspended(market_id="m1")), seq=0)]
    assert decode(encode(sent, "protobuf")) == sent


def _other_type() -> bytes:
    data = encode([as_bus_event(MarketSuspended(market_id="m1"))], "protobuf")
    batch = velocity_pb2.BusBatch.FromString(data[1:])
    batch.events[0].type = "fixedodds.MarketClosed"
    return bytes((PROTOBUF_V1,)) + batch.SerializeToString()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x01\xff\xff", "not a protobuf BusBatch"),
        (b"\x02abc", "not a msgpack list"),
        (b'[{"position": 1}]', "not a msgpack list"),  # JSON is no format of the bus
        (msgspec.msgpack.encode([[1, "s"]]), "not a msgpack list"),
        (
            bytes((PROTOBUF_V1,))
            + velocity_pb2.BusBatch(
                events=[_full(velocity="fast", json=b"{}")]
            ).SerializeToString(),
            "no tier",
        ),
        (
            bytes((PROTOBUF_V1,)) + velocity_pb2.BusBatch(events=[_full()]).SerializeToString(),
            "has no data",
        ),
        (_bad_envelope(), "market_id"),
        (_other_type(), "holds another event"),
        (_without("position"), "without its position"),
        (_without("version"), "without its version"),
        (_without("seq"), "without its seq"),
        (_without("stream"), "without its stream"),
        (_without("type"), "without its type"),
        (_without("publisher"), "without its publisher"),
    ],
)
def test_a_message_in_no_format_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage, match=reason):
        decode(data)
