"""The in-process velocity bus: tiers drained high first, bounded queues that drop only
their own tier's events and say where to resume, and the market writer publishing after
commit."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from oddstream.application.odds import DEFAULT_LIMITS
from oddstream.domain.fixedodds import (
    CreateMarket,
    FixedOddsRejection,
    MoneyLine,
    Odds,
    UpdatePrices,
)
from oddstream.runtime.market_writer import MarketRequest, MarketWriter
from oddstream.velocity import BusEvent, Gap, InProcessVelocityBus, tier_pattern
from oddstream.velocity.bus import Publisher

position = iter(range(1, 10**9))


def event(velocity: str, game_type: str = "football", *, stream: str = "market-m1") -> BusEvent:
    return BusEvent(
        position=next(position),
        stream=stream,
        version=1,
        type="fixedodds.PricesUpdated",
        data=b"{}",
        velocity=velocity,  # type: ignore[arg-type]
        game_type=game_type,
        domain="odds",
    )


async def take(sub, n: int) -> list[BusEvent | Gap]:
    return [await asyncio.wait_for(sub.get(), 1) for _ in range(n)]


async def test_a_high_event_is_taken_before_a_queued_low_burst() -> None:
    bus = InProcessVelocityBus()
    sub = await bus.subscribe(">", limit=20_000)
    lows = [event("low") for _ in range(10_000)]
    for e in lows:
        bus.publish(e)
    medium = event("medium")
    high = event("high")
    bus.publish(medium)
    bus.publish(high)
    first, second, third = await take(sub, 3)
    assert (first.position, second.position) == (high.position, medium.position)
    assert third.position == lows[0].position  # then the low ones, in order
    rest = await take(sub, len(lows) - 1)
    assert [e.position for e in rest] == [e.position for e in lows[1:]]
    assert sub.pending() == 0


async def test_a_subscriber_per_tier_gets_only_its_tier() -> None:
    bus = InProcessVelocityBus()
    subs = {tier: await bus.subscribe(tier_pattern(tier)) for tier in ("high", "medium", "low")}
    football = await bus.subscribe("high.odds.football")
    sent = {"high": [], "medium": [], "low": []}
    for i in range(30):
        tier = ("high", "medium", "low")[i % 3]
        e = event(tier, ("football", "tennis")[i % 2])
        sent[tier].append(e.position)
        assert (
            bus.publish(e)
            == {
                "high": f"high.odds.{e.game_type}",
                "medium": f"medium.{e.game_type}",
                "low": "low",
            }[tier]
        )
    for tier, sub in subs.items():
        got = await take(sub, sub.pending())
        assert [e.position for e in got] == sent[tier]
        assert {e.velocity for e in got} == {tier}
    got = await take(football, football.pending())
    assert {(e.velocity, e.game_type) for e in got} == {("high", "football")}
    assert len(got) == 5


async def test_a_slow_low_subscriber_loses_low_events_only_and_is_told_where_to_resume() -> None:
    bus = InProcessVelocityBus()
    sub = await bus.subscribe(">", limit=10)
    lows = [event("low") for _ in range(15)]
    for e in lows[:12]:
        bus.publish(e)
    high = event("high")
    bus.publish(high)
    for e in lows[12:]:
        bus.publish(e)
    gap, first = await take(sub, 2)
    assert isinstance(gap, Gap)
    assert gap.resume_after == lows[10].position - 1  # the first one dropped: the 11th
    assert gap.dropped == 5
    assert first.position == high.position  # the high tier lost nothing
    rest = await take(sub, sub.pending())
    assert [e.position for e in rest] == [e.position for e in lows[:10]]


async def test_numbers_skipped_on_a_channel_are_a_gap() -> None:
    """What a subscriber on NATS sees when messages were lost on the way."""
    bus = InProcessVelocityBus()
    sub = await bus.subscribe("low")
    stamped = [bus._publisher.stamp(event("low")) for _ in range(4)]
    sub.offer(stamped[0])
    sub.offer(stamped[1])
    sub.offer(stamped[3])  # the third lost
    items = await take(sub, 4)
    assert isinstance(items[0], Gap)
    assert items[0].resume_after == stamped[1].position
    assert [e.position for e in items[1:]] == [stamped[i].position for i in (0, 1, 3)]


async def test_a_low_burst_does_not_hold_up_a_high_subscriber() -> None:
    """A low subscriber works through a backlog of 50,000 while high events come: each
    high event is taken before the backlog is done."""
    bus = InProcessVelocityBus()
    low = await bus.subscribe("low", limit=100_000)
    high = await bus.subscribe("high.>")
    for _ in range(50_000):
        bus.publish(event("low"))
    drained = 0

    async def drain() -> None:
        nonlocal drained
        while low.pending():
            await low.get()
            drained += 1

    task = asyncio.create_task(drain())
    await asyncio.sleep(0)
    seen_while_draining = []
    for _ in range(5):
        bus.publish(event("high"))
        await asyncio.wait_for(high.get(), 1)
        seen_while_draining.append(drained)
        await asyncio.sleep(0)
    await task
    assert drained == 50_000
    assert max(seen_while_draining) < 50_000  # every high event passed the backlog


def line(home: str) -> MoneyLine:
    return MoneyLine(home=Odds.from_decimal(home), away=Odds.from_decimal("2"))


async def test_the_market_writer_publishes_what_it_stored_after_commit(store_factory) -> None:
    store = await store_factory()
    try:
        bus = InProcessVelocityBus()
        high = await bus.subscribe("high.>")
        medium = await bus.subscribe("medium.>")
        low = await bus.subscribe("low")
        writer = MarketWriter(store, bus=bus)
        create = CreateMarket(
            market_id="m1",
            game_id="football:epl-1",
            provider="acme",
            money_line=line("2.5"),
            limits=DEFAULT_LIMITS,
        )
        created = await writer.execute(
            MarketRequest(
                action="NewOdds", command=create, game_id="football:epl-1", velocity="high"
            )
        )
        update = UpdatePrices(market_id="m1", provider="acme", money_line=line("3"))
        updated = await writer.execute(
            MarketRequest(action="UpdateOdds", command=update, velocity="medium")
        )
        with pytest.raises(FixedOddsRejection):  # refused: nothing stored or published
            await writer.execute(
                MarketRequest(
                    action="UpdateOdds",
                    command=UpdatePrices(market_id="m1", provider="evil", money_line=line("4")),
                    velocity="low",
                )
            )
        (h,) = await take(high, 1)
        (m,) = await take(medium, 1)
        assert (low.pending(), high.pending(), medium.pending()) == (0, 0, 0)
        stored = await store.read_stream("market-m1")
        assert [(e.position, e.version, e.type) for e in stored] == [
            (h.position, h.version, h.type),
            (m.position, m.version, m.type),
        ]
        assert (h.position, m.position) == (created.last_position, updated.last_position)
        assert (h.channel, m.channel) == ("high.odds.football", "medium.football")
        assert h.stream == "market-m1"
        assert msgspec.json.decode(m.data) == stored[1].data
    finally:
        await store.close()


async def test_the_bus_counts_what_it_published_and_what_a_full_queue_dropped() -> None:
    bus = InProcessVelocityBus()
    await bus.subscribe("low", limit=3)
    for _ in range(5):
        bus.publish(event("low"))
    bus.publish(event("high"))
    assert bus.counts() == {"high": (1, 0), "medium": (0, 0), "low": (5, 2)}


async def test_a_publisher_that_starts_again_is_a_gap() -> None:
    """An API process stamped events 1 and 2, committed a third and stopped before
    publishing it; started again it stamps from 1 under a new publisher id. Its numbers
    cannot show what the old one lost: a new publisher starting is a gap, from the last
    position received."""
    sub = await InProcessVelocityBus().subscribe(">")
    before, after = Publisher(), Publisher()
    first, second = (before.stamp(event("low")) for _ in range(2))
    lost = event("low")  # committed, never published
    again = after.stamp(event("low"))
    for e in (first, second, again):
        sub.offer(e)
    items = await take(sub, 4)
    assert isinstance(items[0], Gap)
    assert items[0].resume_after == second.position < lost.position
    assert [e.position for e in items[1:]] == [first.position, second.position, again.position]


async def test_joining_while_publishers_run_is_no_gap() -> None:
    sub = await InProcessVelocityBus().subscribe(">")
    one, two = Publisher(), Publisher()
    for _ in range(3):
        one.stamp(event("low"))
        two.stamp(event("low"))
    sub.offer(one.stamp(event("low")))
    sub.offer(two.stamp(event("low")))  # a publisher seen first mid-way: no gap
    assert [type(item) for item in await take(sub, 2)] == [BusEvent, BusEvent]


async def test_a_market_changing_tier_can_arrive_out_of_version_order(store_factory) -> None:
    """What docs/fixed-odds.md ("Order per market") warns of: version 1 sent low and
    version 2 sent high are handed out high first, to a subscription across tiers."""
    store = await store_factory()
    try:
        bus = InProcessVelocityBus()
        everything = await bus.subscribe(">")
        writer = MarketWriter(store, bus=bus)
        create = CreateMarket(
            market_id="m1",
            game_id="football:epl-1",
            provider="acme",
            money_line=line("2.5"),
            limits=DEFAULT_LIMITS,
        )
        await writer.execute(
            MarketRequest(
                action="NewOdds", command=create, game_id="football:epl-1", velocity="low"
            )
        )
        update = UpdatePrices(market_id="m1", provider="acme", money_line=line("3"))
        await writer.execute(MarketRequest(action="UpdateOdds", command=update, velocity="high"))
        got = await take(everything, 2)
        assert [(e.version, e.velocity) for e in got] == [(2, "high"), (1, "low")]
    finally:
        await store.close()
