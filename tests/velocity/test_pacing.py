"""The NATS bus's priority between tiers on the publishing side: medium and low send
nothing while high events wait to be sent, and a paced tier keeps to its events per
second (a burst spread out, events now and then not held back). NATS itself is replaced
by connections that record what they are given, so the timing is the bus's alone."""

from __future__ import annotations

import asyncio
import math
import re
import time
from typing import Any

import pytest

from oddstream.velocity import BusEvent, bus_format
from oddstream.velocity.nats_bus import NatsVelocityBus, Pacer


class FakeConnection:
    """What the bus uses of a nats-py client: records each message with its time; its
    ``publish`` waits while ``hold`` is clear."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[float, list[BusEvent]]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.is_closed = False

    async def publish(self, subject: str, data: bytes) -> None:
        await self.hold.wait()
        self.sent.append((time.monotonic(), bus_format.decode(data)))

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        self.is_closed = True

    def events(self) -> list[int]:
        return [e.position for _, batch in self.sent for e in batch]


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeConnection]:
    import nats

    made: dict[str, FakeConnection] = {}

    async def connect(*args: Any, **kwargs: Any) -> FakeConnection:
        tier = kwargs["name"].rsplit("-", 1)[1]
        made[tier] = FakeConnection(tier)
        return made[tier]

    monkeypatch.setattr(nats, "connect", connect)
    return made


def event(n: int, velocity: str) -> BusEvent:
    return BusEvent(
        position=n,
        stream="market-m1",
        version=n,
        type="fixedodds.PricesUpdated",
        data=b'{"n": %d}' % n,
        velocity=velocity,  # type: ignore[arg-type]
        game_type="football",
        domain="odds",
    )


async def started(**kwargs: Any) -> NatsVelocityBus:
    bus = NatsVelocityBus("nats://fake:4222", "test.velocity.pacing", **kwargs)
    await bus.start()
    return bus


async def test_medium_and_low_send_nothing_while_high_events_wait(connections) -> None:
    """The high connection stuck on its first message (as a busy socket would keep it):
    medium and low events queued meanwhile are not sent until high is done."""
    bus = await started(rates={"medium": None, "low": None})
    try:
        connections["high"].hold.clear()
        bus.publish(event(1, "high"))
        for n in range(2, 12):
            bus.publish(event(n, "low" if n % 2 else "medium"))
        await asyncio.sleep(0.05)
        assert connections["low"].sent == []
        assert connections["medium"].sent == []
        connections["high"].hold.set()
        await asyncio.wait_for(bus.flush(), 5)
        assert connections["high"].events() == [1]
        assert connections["medium"].events() == [2, 4, 6, 8, 10]
        assert connections["low"].events() == [3, 5, 7, 9, 11]
        assert connections["high"].sent[0][0] <= connections["low"].sent[0][0]
    finally:
        await bus.close()


async def test_an_unpaced_burst_still_lets_the_loop_run_between_slices(connections) -> None:
    """Giving way to high does not make a sender's slice endless: unpaced, 2,000 low
    events one a message (as fast as the fake connection takes them, which never
    suspends) still leave the loop to other tasks in the middle of the burst."""
    bus = await started(rates={"low": None}, max_batch=1)
    seen: list[int] = []

    async def ticker() -> None:
        while True:
            seen.append(len(connections["low"].sent))
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)
        for n in range(1, 2001):
            bus.publish(event(n, "low"))
        await asyncio.wait_for(bus.flush(), 10)
        assert [k for k in seen if 0 < k < 2000]  # it ran while the burst was sent
    finally:
        task.cancel()
        await bus.close()


async def test_a_paced_burst_keeps_to_its_rate(connections) -> None:
    """1,000 low events queued at once at 5,000 a second, batches of 50: the first 50
    go at once, the rest no faster than the rate (≥ 0.19 s in all), every one in order."""
    rate, batch = 5_000.0, 50
    bus = await started(rates={"low": rate}, max_batch=batch)
    try:
        begun = time.monotonic()
        for n in range(1, 1001):
            bus.publish(event(n, "low"))
        await asyncio.wait_for(bus.flush(), 10)
        sent = connections["low"].sent
        assert connections["low"].events() == list(range(1, 1001))
        assert max(len(b) for _, b in sent) <= batch
        assert sent[-1][0] - begun >= (1000 - batch) / rate * 0.95
        total = 0
        for at, events in sent:  # never ahead of the bucket: a batch plus the rate since
            total += len(events)
            assert total <= batch + rate * (at - begun) + 1
        assert bus.counts()["low"] == (1000, 0)
    finally:
        await bus.close()


async def test_a_paced_tier_sends_batches_of_its_own_size(connections) -> None:
    """``paced_batch`` 10: a burst of 100 low events goes in messages of at most 10;
    high, never paced, still batches up to ``max_batch``."""
    bus = await started(rates={"low": 1e6}, paced_batch=10)
    try:
        for n in range(1, 101):
            bus.publish(event(n, "low"))
        for n in range(101, 201):
            bus.publish(event(n, "high"))
        await asyncio.wait_for(bus.flush(), 5)
        assert connections["low"].events() == list(range(1, 101))
        assert max(len(b) for _, b in connections["low"].sent) <= 10
        assert connections["high"].events() == list(range(101, 201))
        assert max(len(b) for _, b in connections["high"].sent) > 10
    finally:
        await bus.close()


async def test_events_now_and_then_are_not_held_back(connections) -> None:
    """At 10 events a second, three events published one at a time go at once: the
    bucket holds a batch's worth."""
    bus = await started(rates={"low": 10.0, "medium": 10.0})
    try:
        begun = time.monotonic()
        for n in range(1, 4):
            bus.publish(event(n, "low"))
            bus.publish(event(100 + n, "medium"))
            await asyncio.sleep(0.01)
        await asyncio.wait_for(bus.flush(), 1)
        assert time.monotonic() - begun < 0.5
        assert connections["low"].events() == [1, 2, 3]
        assert connections["medium"].events() == [101, 102, 103]
    finally:
        await bus.close()


async def test_closing_sends_what_is_queued_without_the_pace(connections) -> None:
    """At 100 events a second, 2,000 queued would take 20 s; closing sends them all at
    once (there is no high tier left to give way to)."""
    bus = await started(rates={"low": 100.0})
    for n in range(1, 2001):
        bus.publish(event(n, "low"))
    await asyncio.sleep(0.01)
    begun = time.monotonic()
    await bus.close()
    assert time.monotonic() - begun < 2
    assert connections["low"].events() == list(range(1, 2001))


@pytest.mark.parametrize(
    ("rates", "reason"),
    [
        ({"high": 1000.0}, "the high tier is never paced"),
        ({"low": 0}, "the low tier's rate is events per second, > 0 (got 0)"),
        ({"low": -5.0}, "> 0 (got -5.0)"),
        ({"medium": math.nan}, "the medium tier's rate is events per second, > 0 (got nan)"),
        ({"medium": math.inf}, "> 0 (got inf)"),
        ({"lowest": 10.0}, "rates are per tier (high, medium, low), not ['lowest']"),
    ],
)
def test_a_rate_that_is_no_pace_is_refused(rates: dict[str, float], reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        NatsVelocityBus("nats://fake:4222", "p", rates=rates)


def test_the_bus_s_default_paces_medium_and_low_only() -> None:
    from oddstream.velocity.bus import RATE

    bus = NatsVelocityBus("nats://fake:4222", "p")
    assert bus.rates == RATE
    assert RATE["high"] is None
    assert RATE["medium"]
    assert RATE["low"]


def test_the_bucket() -> None:
    """A full bucket lets a batch go at once; after that, ``n`` more take ``n / rate``;
    it fills again with time, up to a batch."""
    now = [100.0]
    pacer = Pacer(1000.0, 10, clock=lambda: now[0])
    assert pacer.wait(10) == 0
    assert pacer.available() == 10
    pacer.take(10)
    assert pacer.wait(4) == pytest.approx(0.004)
    assert pacer.wait(50) == pytest.approx(0.010)  # at most a batch is waited for
    now[0] += 0.004
    assert pacer.available() == 4
    assert pacer.wait(4) == 0
    now[0] += 60
    assert pacer.available() == 10
    with pytest.raises(ValueError, match="a pace is > 0 events per second"):
        Pacer(0.0, 10)
    with pytest.raises(ValueError, match="and a burst >= 1"):
        Pacer(10.0, 0)


async def test_a_high_event_queued_as_high_goes_idle_still_goes_first(connections) -> None:
    """Regression: a sender waiting for high to be idle looked again only after its
    pace's wait, so a high event queued between the high sender going idle and the
    waiting low sender running (here: as the first high message is recorded) went
    after a low batch. Every message is recorded in one order across the tiers."""
    order: list[str] = []
    bus = await started(rates={"medium": None, "low": None})
    high = connections["high"]
    record = high.publish

    async def publish_high(subject: str, data: bytes) -> None:
        await record(subject, data)
        order.append("high")
        if len(high.sent) == 1:  # a second high event comes just as the first went
            asyncio.get_running_loop().call_soon(bus.publish, event(2, "high"))

    async def publish_low(subject: str, data: bytes) -> None:
        order.append("low")

    high.publish = publish_high  # type: ignore[method-assign]
    connections["low"].publish = publish_low  # type: ignore[method-assign]
    try:
        high.hold.clear()
        bus.publish(event(1, "high"))
        bus.publish(event(3, "low"))
        await asyncio.sleep(0.01)
        assert order == []
        high.hold.set()
        await asyncio.wait_for(bus.flush(), 5)
        assert order == ["high", "high", "low"]
    finally:
        await bus.close()


async def test_what_a_close_leaves_unsent_is_counted_dropped(
    connections, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a close whose flush ran out of time (a connection stuck) cancelled
    the senders and forgot what was still queued or being sent: neither published nor
    dropped in ``counts()`` (nor the metric). Now every event is one or the other."""
    from oddstream.velocity import nats_bus

    monkeypatch.setattr(nats_bus, "CLOSE_TIMEOUT", 0.2, raising=False)
    bus = await started(rates={"low": None}, max_batch=10)
    connections["low"].hold.clear()  # NATS's socket not taking anything
    for n in range(1, 101):
        bus.publish(event(n, "low"))
    await asyncio.sleep(0.01)
    begun = time.monotonic()
    await bus.close()
    assert time.monotonic() - begun < 5.5
    published, dropped = bus.counts()["low"]
    assert (published, dropped) == (0, 100)
    assert bus.dropped == 100


async def test_a_steady_high_stream_does_not_starve_low(connections) -> None:
    """High events every millisecond for 0.4 s: the high sender empties its queue at
    each turn, so the low sender, which waits only while high events are queued, still
    sends a paced burst of 2,000 (20,000 a second: 0.1 s) while the stream goes on."""
    bus = await started(rates={"low": 20_000.0}, paced_batch=50)
    stop = asyncio.Event()

    async def high_stream() -> None:
        n = 10_000
        while not stop.is_set():
            n += 1
            bus.publish(event(n, "high"))
            await asyncio.sleep(0.001)

    stream = asyncio.create_task(high_stream())
    try:
        await asyncio.sleep(0.02)
        for n in range(1, 2001):
            bus.publish(event(n, "low"))
        await asyncio.sleep(0.4)
        assert not stream.done()
        assert connections["low"].events() == list(range(1, 2001))
        assert len(connections["high"].sent) > 50
    finally:
        stop.set()
        await stream
        await bus.close()


async def test_a_backlogged_high_holds_low_whose_queue_stays_bounded(connections) -> None:
    """What bounds the strict priority: while the high sender cannot get rid of its
    events (its connection stuck), low sends nothing, and its queue keeps to its limit,
    dropping the newest (counted; subscribers see the numbers skipped as a Gap); once
    high is done, low sends what it kept, in order."""
    bus = await started(rates={"low": None}, outbound_limit=100)
    try:
        connections["high"].hold.clear()
        bus.publish(event(1, "high"))
        for n in range(2, 152):
            bus.publish(event(n, "low"))
        await asyncio.sleep(0.05)
        assert connections["low"].sent == []
        assert bus.counts()["low"] == (0, 50)
        connections["high"].hold.set()
        await asyncio.wait_for(bus.flush(), 5)
        assert connections["low"].events() == list(range(2, 102))
        assert bus.counts()["low"] == (100, 50)
    finally:
        await bus.close()
