""":class:`~oddstream.velocity.wake.VelocityWake`: the high tier's events hint a
follower with their positions; medium and low events do not; a lost message (a
:class:`~oddstream.velocity.Gap`) only counts (the follower reads the log anyway)."""

from __future__ import annotations

import asyncio

from oddstream.velocity import BusEvent, InProcessVelocityBus
from oddstream.velocity.wake import VelocityWake


def _event(position: int, velocity: str) -> BusEvent:
    return BusEvent(
        position=position,
        stream="market-m1",
        version=position,
        type="fixedodds.PricesUpdated",
        data=b"{}",
        velocity=velocity,  # type: ignore[arg-type]
        game_type="football",
        domain="odds",
    )


async def _settle(wake: VelocityWake, events: int) -> None:
    for _ in range(5000):  # the subscription's task takes them on its turns
        if wake.events + wake.gaps >= events:
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"{wake.events} events and {wake.gaps} gaps, not {events}")


async def test_high_events_hint_their_positions_and_others_do_not() -> None:
    bus = InProcessVelocityBus()
    hinted: list[int] = []

    def hint(position: int) -> bool:
        hinted.append(position)
        return position % 2 == 1  # as a follower that was woken by odd ones only

    wake = VelocityWake(bus, hint)
    await wake.start()
    try:
        bus.publish(_event(1, "high"))
        bus.publish(_event(2, "medium"))
        bus.publish(_event(3, "low"))
        bus.publish(_event(4, "high"))
        bus.publish(_event(5, "high"))
        await _settle(wake, 3)
        assert hinted == [1, 4, 5]
        assert (wake.events, wake.wakes, wake.gaps) == (3, 2, 0)
        assert wake._sub is not None
        wake._sub.interrupted("a reconnection")  # messages lost: a gap, nothing hinted
        await _settle(wake, 4)
        assert wake.gaps == 1
        assert hinted == [1, 4, 5]
    finally:
        await wake.stop()
        await bus.close()


async def test_a_stopped_wake_hints_no_more() -> None:
    bus = InProcessVelocityBus()
    hinted: list[int] = []
    wake = VelocityWake(bus, lambda p: hinted.append(p) is None)
    await wake.start()
    await wake.stop()
    bus.publish(_event(1, "high"))
    await asyncio.sleep(0.01)
    assert hinted == []
    assert wake.events == 0
    await bus.close()
