"""The velocity bus on the local NATS: subjects per channel, a subscriber per tier on
that tier's connection, each receiving only its tier (subjects under a prefix of each
test's own, so parallel runs do not meet)."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import msgspec
import pytest

from conftest import need_service
from oddstream.velocity import BusEvent, Gap, tier_pattern
from oddstream.velocity.nats_bus import NatsVelocityBus

NATS_URL = os.environ.get("ODDSTREAM_TEST_NATS_URL", "nats://127.0.0.1:4222")


@pytest.fixture
async def bus():
    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        with socket.create_connection((host, int(port or 4222)), timeout=3):
            pass
    except OSError as exc:
        need_service("NATS", str(exc))
    the_bus = NatsVelocityBus(NATS_URL, f"test.velocity.{uuid.uuid4().hex}")
    await the_bus.start()
    yield the_bus
    await the_bus.close()


def event(n: int, velocity: str, game_type: str = "football") -> BusEvent:
    return BusEvent(
        position=n,
        stream="market-m1",
        version=n,
        type="fixedodds.PricesUpdated",
        data=b'{"n": %d}' % n,
        velocity=velocity,  # type: ignore[arg-type]
        game_type=game_type,
        domain="odds",
    )


async def take(sub, n: int) -> list[BusEvent | Gap]:
    return [await asyncio.wait_for(sub.get(), 5) for _ in range(n)]


async def test_a_subscriber_per_tier_receives_only_its_tier(bus) -> None:
    subs = {tier: await bus.subscribe(tier_pattern(tier)) for tier in ("high", "medium", "low")}
    everything = await bus.subscribe(">")
    tennis = await bus.subscribe("high.odds.tennis")
    sent: dict[str, list[int]] = {"high": [], "medium": [], "low": []}
    for n in range(1, 61):
        tier = ("high", "medium", "low")[n % 3]
        game = ("football", "tennis")[n % 2]
        sent[tier].append(n)
        bus.publish(event(n, tier, game))
    await bus.flush()
    for tier, sub in subs.items():
        got = await take(sub, 20)
        assert [e.position for e in got] == sent[tier]
        assert {e.channel.split(".")[0] for e in got} == {tier}
    got = await take(everything, 60)  # one subscription on three connections, none twice
    assert sorted(e.position for e in got) == list(range(1, 61))
    got = await take(tennis, 10)
    assert {(e.velocity, e.game_type, e.channel) for e in got} == {
        ("high", "tennis", "high.odds.tennis")
    }
    await asyncio.sleep(0.1)  # nothing more arrives
    assert [s.pending() for s in (*subs.values(), everything, tennis)] == [0] * 5


async def test_the_subject_of_a_channel_is_under_the_prefix(bus) -> None:
    import nats

    nc = await nats.connect(NATS_URL)
    try:
        raw = await nc.subscribe(f"{bus.prefix}.medium.football")
        await nc.flush()
        bus.publish(event(7, "medium"))
        msg = await raw.next_msg(timeout=5)
        assert msg.subject == f"{bus.prefix}.medium.football"
    finally:
        await nc.close()


async def test_a_high_event_passes_a_low_burst_on_the_way(bus) -> None:
    """10,000 low events published, then one high: the high subscriber has it before the
    low subscriber has the burst (a connection per tier)."""
    low = await bus.subscribe("low", limit=20_000)
    high = await bus.subscribe("high.>")
    for n in range(1, 10_001):
        bus.publish(event(n, "low"))
    bus.publish(event(10_001, "high"))
    (got,) = await take(high, 1)
    assert got.position == 10_001
    assert low.received < 10_000
    items = await take(low, 10_000)
    assert [e.position for e in items] == list(range(1, 10_001))


async def test_what_the_publisher_could_not_send_is_counted_by_tier() -> None:
    """The outbound queue holds 2: of 5 low events published at once, 3 are dropped and
    counted (``/metrics`` exports the counts), the 2 others sent."""
    host, _, port = NATS_URL.removeprefix("nats://").partition(":")
    try:
        with socket.create_connection((host, int(port or 4222)), timeout=3):
            pass
    except OSError as exc:
        need_service("NATS", str(exc))
    bus = NatsVelocityBus(NATS_URL, f"test.velocity.{uuid.uuid4().hex}", outbound_limit=2)
    await bus.start()
    try:
        for n in range(1, 6):
            bus.publish(event(n, "low"))
        await bus.flush()
        assert bus.counts() == {"high": (0, 0), "medium": (0, 0), "low": (2, 3)}
    finally:
        await bus.close()
    bus.publish(event(6, "high"))  # closed: not sent, counted
    assert bus.counts()["high"] == (0, 1)


async def test_a_start_that_fails_halfway_closes_what_it_opened(bus, monkeypatch) -> None:
    """The medium tier's connection refused: the high one, already open (and
    reconnecting forever), is closed and its sender stopped, not left running."""
    import nats

    real_connect = nats.connect
    opened = []

    async def connect(*args, **kwargs):
        if kwargs["name"].endswith("-medium"):
            raise ConnectionRefusedError("no medium for you")
        nc = await real_connect(*args, **kwargs)
        opened.append(nc)
        return nc

    monkeypatch.setattr(nats, "connect", connect)
    before = asyncio.all_tasks()
    half = NatsVelocityBus(NATS_URL, f"{bus.prefix}.half")
    with pytest.raises(ConnectionRefusedError):
        await half.start()
    assert [nc.is_closed for nc in opened] == [True]
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() - before if not t.done()] == []


async def test_a_burst_travels_in_batches_of_one_channel(bus) -> None:
    """1,000 low events queued at once go in a few messages (at most PACED_BATCH events
    each, the low tier being paced; one channel each), and come out one by one, in
    order, none twice."""
    import nats

    from oddstream.velocity.nats_bus import PACED_BATCH

    nc = await nats.connect(NATS_URL)
    try:
        raw = await nc.subscribe(f"{bus.prefix}.>")
        await nc.flush()
        sub = await bus.subscribe(">", limit=5_000)
        for n in range(1, 1001):
            bus.publish(event(n, "low"))
        bus.publish(event(1001, "medium", "football"))
        bus.publish(event(1002, "medium", "tennis"))
        items = await take(sub, 1002)
        assert sorted(e.position for e in items) == list(range(1, 1003))
        assert [e.position for e in items if e.velocity == "low"] == list(range(1, 1001))
        await bus.flush()
        await nc.flush()
        subjects = []
        while True:
            try:
                subjects.append((await raw.next_msg(timeout=0.5)).subject)
            except nats.errors.TimeoutError:
                break
        assert subjects.count(f"{bus.prefix}.low") == -(-1000 // PACED_BATCH)
        assert sorted(s for s in subjects if ".medium." in s) == [
            f"{bus.prefix}.medium.football",
            f"{bus.prefix}.medium.tennis",
        ]
    finally:
        await nc.close()


# ---------------------------------------------------------------- the formats on NATS


def market_events(n: int, velocity: str = "medium") -> list[BusEvent]:
    """``n`` fixed-odds events as the market writer publishes them."""
    from oddstream.domain.fixedodds.events import MoneyLine, PricesUpdated
    from oddstream.domain.fixedodds.odds import Odds

    from .test_bus_format import as_bus_event

    out = []
    for i in range(1, n + 1):
        line = MoneyLine(home=Odds.from_fractional(f"{i}/13"), away=Odds(3, 2))
        e = as_bus_event(PricesUpdated(market_id="m1", money_line=line), i)
        out.append(msgspec.structs.replace(e, velocity=velocity, channel="", publisher="", seq=0))
    return out


@pytest.fixture
async def publishers(bus):
    """A msgpack and a protobuf publisher on ``bus``'s subjects."""
    made = {}
    for fmt in ("msgpack", "protobuf"):
        made[fmt] = NatsVelocityBus(NATS_URL, bus.prefix, fmt=fmt)
        await made[fmt].start()
    yield made
    for one in made.values():
        await one.close()


def unstamped(items) -> list[BusEvent]:
    """The events of ``items`` but who published them (each publisher has its id)."""
    return [msgspec.structs.replace(e, publisher="") for e in items if isinstance(e, BusEvent)]


async def test_protobuf_and_msgpack_deliver_the_same_events(bus, publishers) -> None:
    sub = await bus.subscribe("medium.>")
    sent = market_events(40)
    got = {}
    for fmt, publisher in publishers.items():
        for e in sent:
            publisher.publish(e)
        await publisher.flush()
        items = await take(sub, 40 if fmt == "msgpack" else 41)  # + a publisher started
        got[fmt] = unstamped(items)
    assert got["protobuf"] == got["msgpack"]
    assert [(e.position, e.data, e.seq) for e in got["msgpack"]] == [
        (e.position, e.data, n) for n, e in enumerate(sent, 1)
    ]
    assert bus.malformed == 0


async def test_a_channel_carries_both_formats_at_once(bus, publishers) -> None:
    """A deployment changing format one process at a time: two publishers of the same
    channel, one per format, interleaved; the subscriber reads every event of each, in
    its order, none refused."""
    sub = await bus.subscribe("medium.football")
    sent = market_events(30)
    for e in sent:
        for publisher in publishers.values():
            publisher.publish(e)
    for publisher in publishers.values():
        await publisher.flush()
    items = [await asyncio.wait_for(sub.get(), 5) for _ in range(61)]
    gaps = [i for i in items if isinstance(i, Gap)]
    assert len(gaps) == 1  # the second publisher's first event: it started
    assert gaps[0].reason.startswith("a publisher started")
    for publisher in publishers.values():
        mine = [
            e for e in items if isinstance(e, BusEvent) and e.publisher == publisher._publisher.id
        ]
        assert [(e.position, e.data, e.seq) for e in mine] == [
            (e.position, e.data, n) for n, e in enumerate(sent, 1)
        ]
    assert bus.malformed == 0


async def test_a_malformed_message_is_counted_and_dropped_with_a_gap(bus, publishers) -> None:
    import nats

    sub = await bus.subscribe("medium.>")
    publisher = publishers["protobuf"]
    first, second = market_events(2)
    publisher.publish(first)
    await publisher.flush()
    (got,) = await take(sub, 1)
    assert (got.position, got.data) == (first.position, first.data)
    nc = await nats.connect(NATS_URL)
    try:
        for garbage in (b"\x01\xff\xff", b'{"not": "msgpack"}', b""):
            await nc.publish(f"{bus.prefix}.medium.football", garbage)
        await nc.flush()
    finally:
        await nc.close()
    # the garbage travels on another connection than the publisher's: NATS orders
    # nothing across connections, and a gap is handed out before the next event, so
    # the next event is sent once the bus has seen the garbage
    for _ in range(200):
        if bus.malformed == 3:
            break
        await asyncio.sleep(0.025)
    publisher.publish(second)  # the subscriber goes on
    await publisher.flush()
    gap, after = await take(sub, 2)
    assert isinstance(gap, Gap)
    assert gap.resume_after == first.position  # read the log after what it had
    assert "malformed" in gap.reason
    assert isinstance(after, BusEvent)
    assert after.position == second.position
    assert bus.malformed == 3


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="bus format 'json' is none of msgpack, protobuf"):
        NatsVelocityBus(NATS_URL, "test.velocity.x", fmt="json")  # type: ignore[arg-type]
