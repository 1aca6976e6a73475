"""The events ↔ protobuf conversion (``runtime/proto_events.py``) is exact: every fixed-odds
and tote event, drawn at random from its own type (hypothesis, read off the struct with
``msgspec.inspect``), comes back equal through its message, through the bytes and
through its stream's envelope; bad messages are refused with a reason."""

from __future__ import annotations

import typing
from fractions import Fraction
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oddstream.domain.fixedodds import ALL_EVENTS as MARKET_EVENTS
from oddstream.domain.fixedodds.events import (
    BetAccepted,
    BetSettled,
    MarketCreated,
    MarketLimits,
    MarketResulted,
    MarketSuspended,
    MoneyLine,
    Outcome,
    PricesUpdated,
)
from oddstream.domain.fixedodds.odds import MAX_DECIMAL_ODDS, MAX_DENOMINATOR, Odds
from oddstream.domain.tote.events import ALL_EVENTS as TOTE_EVENTS
from oddstream.domain.tote.events import (
    BetPlaced,
    DividendsDeclared,
    PoolConfig,
    PoolDividends,
    RaceScheduled,
    ResultDeclared,
    Runner,
)
from oddstream.domain.tote.events import BetSettled as ToteBetSettled
from oddstream.domain.tote.pools import PoolType
from oddstream.pb import fixedodds_pb2, tote_pb2
from oddstream.runtime import proto_events
from oddstream.runtime.proto_events import ProtoEventError

INT64 = st.integers(-(2**63), 2**63 - 1)
#: text protobuf can carry (UTF-8: no lone surrogates)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


@st.composite
def odds(draw: st.DrawFn) -> Odds:
    den = draw(st.integers(1, MAX_DENOMINATOR))
    num = draw(st.integers(den + 1, MAX_DECIMAL_ODDS * den))
    return Odds.exact(Fraction(num, den))


def strategy(info: mi.Type) -> st.SearchStrategy[Any]:
    """Values of a msgspec type, as its events can hold them."""
    if isinstance(info, mi.IntType):
        return INT64
    if isinstance(info, mi.StrType):
        return TEXT
    if isinstance(info, mi.BoolType):
        return st.booleans()
    if isinstance(info, mi.NoneType):
        return st.none()
    if isinstance(info, mi.EnumType):
        return st.sampled_from(list(info.cls))
    if isinstance(info, mi.UnionType):
        return st.one_of([strategy(t) for t in info.types])
    if isinstance(info, mi.VarTupleType):
        return st.lists(strategy(info.item_type), max_size=4).map(tuple)
    if isinstance(info, mi.TupleType):
        return st.tuples(*(strategy(t) for t in info.item_types))
    if isinstance(info, mi.StructType):
        if info.cls is Odds:
            return odds()
        fields = {f.name: strategy(f.type) for f in info.fields}
        return st.fixed_dictionaries(fields).map(lambda kw: info.cls(**kw))
    raise TypeError(f"no strategy for {info}")


EVENTS = (*MARKET_EVENTS, *TOTE_EVENTS)
ANY_EVENT = st.one_of([strategy(mi.type_info(cls)) for cls in EVENTS])


@given(ANY_EVENT)
def test_every_event_comes_back_equal_through_its_bytes(event: msgspec.Struct) -> None:
    data = proto_events.encode(event)
    assert proto_events.decode(type(event), data) == event


@given(ANY_EVENT)
def test_every_event_comes_back_equal_through_its_envelope(event: msgspec.Struct) -> None:
    envelope = proto_events.to_envelope(event)
    again = type(envelope).FromString(envelope.SerializeToString())
    assert proto_events.from_envelope(again) == event
    # and through the JSON codec, the same event: the two forms agree
    assert msgspec.json.decode(msgspec.json.encode(event), type=type(event)) == event


@given(odds())
def test_a_price_is_its_exact_fraction_on_the_wire(price: Odds) -> None:
    line = MoneyLine(home=price, away=price)
    message = proto_events.to_proto(PricesUpdated(market_id="m", money_line=line))
    assert Fraction(message.money_line.home.num, message.money_line.home.den) == price.value
    assert not message.money_line.HasField("draw")


def test_every_event_class_has_a_message_of_its_fields() -> None:
    for cls in EVENTS:
        message = proto_events.message_class(cls)
        struct_fields = {f.name for f in msgspec.structs.fields(cls)}
        assert set(message.DESCRIPTOR.fields_by_name) == struct_fields, cls
    envelopes = [fixedodds_pb2.MarketEvent.DESCRIPTOR, tote_pb2.RaceEvent.DESCRIPTOR]
    assert sum(len(e.fields) for e in envelopes) == len(EVENTS)


def test_a_published_price_is_written_as_its_fraction() -> None:
    created = MarketCreated(
        market_id="m1",
        game_id="g1",
        provider="acme",
        money_line=MoneyLine(
            home=Odds.from_decimal("1.91"),
            away=Odds.from_fractional("8/13"),
            draw=Odds.from_american(-110),
        ),
        limits=MarketLimits(max_stake_cents=1_000_000, max_liability_cents=100_000_000),
    )
    line = proto_events.to_proto(created).money_line
    assert (line.home.num, line.home.den) == (191, 100)
    assert (line.away.num, line.away.den) == (21, 13)
    assert (line.draw.num, line.draw.den) == (21, 11)


def test_an_absent_optional_is_none_and_an_empty_string_stays_empty() -> None:
    placed = BetPlaced(race_id="r", bet_id="", pool=PoolType.WIN, selection=(3,), stake_cents=1)
    message = proto_events.to_proto(placed)
    assert not message.HasField("wallet_id")
    assert proto_events.decode(BetPlaced, message.SerializeToString()) == placed
    with_wallet = msgspec.structs.replace(placed, wallet_id="")
    again = proto_events.decode(BetPlaced, proto_events.encode(with_wallet))
    assert again.wallet_id == ""


def test_a_dead_heat_placing_keeps_its_runners_together() -> None:
    declared = ResultDeclared("r", ((1, 4), (2,), ()))
    message = proto_events.to_proto(declared)
    assert [list(p.runners) for p in message.placings] == [[1, 4], [2], []]
    assert proto_events.from_proto(message) == declared


def test_a_number_no_field_holds_is_refused_on_encoding() -> None:
    big = BetPlaced(race_id="r", bet_id="b", pool=PoolType.WIN, selection=(1,), stake_cents=2**63)
    with pytest.raises(ValueError, match="out of range"):
        proto_events.encode(big)


def test_a_required_field_missing_is_refused() -> None:
    message = fixedodds_pb2.MarketCreated(market_id="m", game_id="g", provider="p")
    message.limits.CopyFrom(fixedodds_pb2.MarketLimits(max_stake_cents=1, max_liability_cents=1))
    with pytest.raises(ProtoEventError, match="money_line"):
        proto_events.from_proto(message)


def test_a_price_the_domain_refuses_is_refused() -> None:
    updated = PricesUpdated(market_id="m", money_line=MoneyLine(home=Odds(3, 2), away=Odds(3, 2)))
    message = proto_events.to_proto(updated)
    message.money_line.home.num = 6  # 6/2: not reduced
    with pytest.raises(ProtoEventError, match="not reduced"):
        proto_events.from_proto(message)
    message.money_line.home.CopyFrom(fixedodds_pb2.Odds(num=1, den=1))
    with pytest.raises(ProtoEventError, match="odds_too_low"):
        proto_events.from_proto(message)


def test_an_unspecified_enum_is_refused() -> None:
    resulted = MarketResulted(
        market_id="m", winners=(Outcome.HOME,), stakes_cents=1, paid_cents=0, book_cents=1
    )
    message = proto_events.to_proto(resulted)
    message.winners.append(fixedodds_pb2.OUTCOME_UNSPECIFIED)
    with pytest.raises(ProtoEventError, match="Outcome 0 is no value"):
        proto_events.from_proto(message)


def test_bytes_that_are_not_the_message_are_refused() -> None:
    with pytest.raises(ProtoEventError, match="not a BetAccepted message"):
        proto_events.decode(BetAccepted, b"\xff\xff\xff")
    with pytest.raises(ProtoEventError, match="an empty MarketEvent"):
        proto_events.from_envelope(fixedodds_pb2.MarketEvent())


def test_the_envelope_names_the_event() -> None:
    event = typing.cast(Any, proto_events.to_envelope(ResultDeclared("r", ((1,),))))
    assert event.WhichOneof("event") == "result_declared"


@pytest.mark.parametrize(
    ("cls", "missing"),
    [
        (MarketSuspended, "market_id"),
        (BetSettled, "market_id"),
        (ToteBetSettled, "race_id"),
    ],
)
def test_an_empty_message_is_no_event(cls: type[msgspec.Struct], missing: str) -> None:
    # proto3 reads an absent scalar as ""/0: the event's required fields must be present,
    # as they must be in its stored JSON (which refuses ``{}``)
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b"{}", type=cls)
    with pytest.raises(ProtoEventError, match=missing):
        proto_events.decode(cls, b"")


def test_an_absent_amount_is_refused_not_read_as_zero() -> None:
    bet = BetAccepted(
        market_id="m",
        bet_id="b",
        outcome=Outcome.HOME,
        stake_cents=500,
        requested=Odds(3, 2),
        price=Odds(3, 2),
    )
    message = proto_events.to_proto(bet)
    message.ClearField("stake_cents")
    with pytest.raises(ProtoEventError, match="stake_cents"):
        proto_events.from_proto(message)
    settled = BetSettled(market_id="m", bet_id="b", payout_cents=0, refund_cents=0, reason="")
    # a zero written is a zero read (only its absence is refused)
    assert proto_events.decode(BetSettled, proto_events.encode(settled)) == settled


def test_an_absent_field_with_a_default_takes_the_json_default() -> None:
    scheduled = RaceScheduled(
        race_id="r",
        meeting="m",
        venue="v",
        post_time="2026-11-28T12:00:00Z",
        runners=(Runner(1, "One"),),
        pools=(PoolConfig(pool=PoolType.WIN, takeout_bps=1500),),
    )
    message = proto_events.to_proto(scheduled)
    for name in ("profile", "min_stake_cents", "increment_cents"):
        message.pools[0].ClearField(name)
    as_json = msgspec.json.encode(scheduled).replace(
        b',"profile":"us","min_stake_cents":100,"increment_cents":10', b""
    )
    assert b"profile" not in as_json
    from_json = msgspec.json.decode(as_json, type=RaceScheduled)
    assert proto_events.from_proto(message) == from_json == scheduled


def test_a_record_item_missing_is_refused() -> None:
    declared = DividendsDeclared(
        "r",
        (
            PoolDividends(
                pool=PoolType.WIN,
                gross_cents=1000,
                carry_in_cents=0,
                takeout_cents=150,
                net_cents=850,
                price_base_cents=200,
                dividends=(((3,), 420),),
                paid_cents=840,
                breakage_cents=10,
                topup_cents=0,
                refunded=False,
                carry_out_cents=0,
            ),
        ),
    )
    message = proto_events.to_proto(declared)
    assert proto_events.from_proto(message) == declared
    message.pools[0].dividends[0].ClearField("dividend_cents")
    with pytest.raises(ProtoEventError, match="dividend_cents"):
        proto_events.from_proto(message)
