"""The live odds hub (``api/odds_push.py``) on its own: filters, the current state first,
every change in log order, a slow subscriber coalesced then dropped, the subscriber cap,
and a replay of the log (a rebuild) pushing nothing again."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from oddstream.api.odds_push import (
    OddsFilter,
    OddsHub,
    SubscriberTooSlow,
    TooManySubscribers,
)
from oddstream.application.odds import DEFAULT_LIMITS
from oddstream.domain.fixedodds import CreateMarket, MoneyLine, Odds, UpdatePrices
from oddstream.domain.fixedodds.market import MarketStatus
from oddstream.eventstore import open_store
from oddstream.projections.odds_view import MarketListener, OddsRecord, OddsView
from oddstream.runtime.market_writer import MarketRequest, MarketWriter

AT = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)


class FakeView:
    """What the hub uses of the odds view: records and the change hook."""

    def __init__(self) -> None:
        self.listeners: list[MarketListener] = []
        self.by_id: dict[str, OddsRecord] = {}
        self.position = 0

    def on_market_changed(self, listener: MarketListener) -> None:
        self.listeners.append(listener)

    def get(self, external_id: str) -> OddsRecord | None:
        return self.by_id.get(external_id)

    def records(self) -> list[OddsRecord]:
        return sorted(self.by_id.values(), key=lambda r: r.id)

    def change(self, market: str, game: str = "g1", home: str = "2") -> OddsRecord:
        """Apply a change of ``market`` at the next position and tell the listeners."""
        self.position += 1
        old = self.by_id.get(market)
        line = MoneyLine(home=Odds.from_decimal(home), away=Odds.from_decimal("2"))
        if old is None:
            record = OddsRecord(
                id=self.position,
                external_id=market,
                game_id=game,
                provider="acme",
                money_line=line,
                deleted=False,
                created_at=AT,
                updated_at=AT,
                version=1,
                position=self.position,
                status=MarketStatus.OPEN,
            )
        else:
            record = replace(old, money_line=line, version=old.version + 1, position=self.position)
        self.by_id[market] = record
        for listener in self.listeners:
            listener(record)
        return record


def _hub(view: FakeView, **kw: Any) -> OddsHub:
    return OddsHub(cast(OddsView, view), **kw)


def _market() -> str:
    return str(uuid.uuid4())


async def _take(stream: Any, n: int) -> list[OddsRecord]:
    return [await asyncio.wait_for(anext(stream), 2) for _ in range(n)]


async def _drain(stream: Any) -> None:
    while True:
        await asyncio.wait_for(anext(stream), 2)


async def test_every_change_in_log_order_and_filters() -> None:
    view = FakeView()
    hub = _hub(view)
    a, b = _market(), _market()
    everything = hub.follow(OddsFilter(), current=False)
    game2 = hub.follow(OddsFilter(game_id="g2"), current=False)
    one = hub.follow(OddsFilter(external_id=a), current=False)
    # a generator registers when first asked: start each
    firsts = [asyncio.ensure_future(anext(s)) for s in (everything, game2, one)]
    await asyncio.sleep(0)
    changes = [
        view.change(a),
        view.change(b, game="g2"),
        view.change(a, home="3"),
        view.change(b, game="g2", home="4"),
    ]
    got_all = [await firsts[0], *await _take(everything, 3)]
    got_g2 = [await firsts[1], *await _take(game2, 1)]
    got_a = [await firsts[2], *await _take(one, 1)]
    assert got_all == changes
    assert got_g2 == [changes[1], changes[3]]
    assert got_a == [changes[0], changes[2]]
    for stream in (everything, game2, one):
        await stream.aclose()
    assert hub.clients == 0


async def test_current_first_then_changes_with_nothing_missed() -> None:
    view = FakeView()
    hub = _hub(view)
    a, b, c = _market(), _market(), _market()
    view.change(a)
    view.change(b, game="g2")
    view.change(c)
    sub = hub.attach(OddsFilter(game_id="g1"), current=True)
    later = view.change(a, home="5")
    after = view.change(c, home="7")
    taken = []
    while (record := sub.take()) is not None:
        taken.append(record)
    # the game's markets as they were (oldest first), then each change after them
    assert [(r.external_id, r.position) for r in taken] == [
        (a, 1),
        (c, 3),
        (a, later.position),
        (c, after.position),
    ]
    one = hub.attach(OddsFilter(external_id=b), current=True)
    assert one.take() == view.by_id[b]
    assert one.take() is None
    missing = hub.attach(OddsFilter(external_id=_market()), current=True)
    assert missing.take() is None


async def test_a_slow_subscriber_is_coalesced_then_dropped() -> None:
    view = FakeView()
    hub = _hub(view, max_pending=10)
    markets = [_market() for _ in range(8)]
    slow = hub.attach(OddsFilter(), current=False)
    # 11 changes of 2 markets: past 10 pending, only the latest of each is kept
    for i in range(11):
        view.change(markets[i % 2], home=str(2 + i))
    assert [(r.external_id, r.position) for r in slow.pending] == [
        (markets[1], 10),
        (markets[0], 11),
    ]
    assert slow.coalesced == 9
    assert slow.dropped is None
    # changes of 8 markets: coalesced, still more than half of 10 markets behind
    for i in range(9):
        view.change(markets[i % 8])
    assert isinstance(slow.dropped, SubscriberTooSlow)
    assert slow.take() is None
    hub.detach(slow)

    # a stream ends with the error once what it had is sent
    stream = hub.follow(OddsFilter(), current=False)
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    view.change(markets[0])
    await first
    for i in range(30):
        view.change(markets[i % 8])
    with pytest.raises(SubscriberTooSlow) as dropped:
        await _drain(stream)
    assert dropped.value.code == "subscriber_too_slow"
    assert hub.clients == 0


async def test_subscribers_are_capped() -> None:
    hub = _hub(FakeView(), max_subscribers=2)
    first = hub.attach(OddsFilter(), current=False)
    hub.attach(OddsFilter(), current=False)
    with pytest.raises(TooManySubscribers):
        hub.attach(OddsFilter(), current=False)
    hub.detach(first)
    hub.attach(OddsFilter(), current=False)


async def test_a_replay_of_the_log_pushes_nothing_again() -> None:
    view = FakeView()
    hub = _hub(view)
    a = _market()
    first = view.change(a)
    sub = hub.attach(OddsFilter(), current=False)
    second = view.change(a, home="3")
    # a rebuild applies the log from the start again: positions already pushed
    hub.changed(first)
    hub.changed(second)
    assert list(sub.pending) == [second]


async def test_a_listener_that_raises_breaks_neither_the_view_nor_the_other_listeners(
    tmp_path: Path,
) -> None:
    """The view called its listeners inside its batch: one raising failed the batch,
    which the runner retried for ever, and every read of every client waited on a view
    that no longer moved (and the batch's events were applied again at each retry)."""
    store = await open_store(f"sqlite:///{tmp_path}/odds.db")
    view = OddsView(store)
    got: list[OddsRecord] = []

    def broken(record: OddsRecord) -> None:
        raise RuntimeError("a listener's bug")

    view.on_market_changed(broken)
    view.on_market_changed(got.append)
    await view.start()
    try:
        writer = MarketWriter(store)
        line = MoneyLine(home=Odds.from_decimal("2.5"), away=Odds.from_decimal("2"))
        create = CreateMarket(
            market_id="m1", game_id="g1", provider="acme", money_line=line, limits=DEFAULT_LIMITS
        )
        await writer.execute(MarketRequest(action="NewOdds", command=create, game_id="g1"))
        update = UpdatePrices(
            market_id="m1",
            provider="acme",
            money_line=MoneyLine(home=Odds.from_decimal("3"), away=Odds.from_decimal("2")),
        )
        updated = await writer.execute(
            MarketRequest(action="UpdateOdds", command=update, game_id="g1")
        )
        assert await view.wait_for(updated.last_position, 5)
        record = view.get("m1")
        assert record is not None
        assert record.money_line.home == Odds.from_decimal("3")
        assert record.version == 2
        assert [r.version for r in got] == [1, 2]
        assert got[-1] is record
    finally:
        await view.stop()
        await store.close()


async def test_current_while_changes_pour_in_misses_and_repeats_nothing() -> None:
    """Changes made between every step of the subscribers: each one's first records and
    the changes after them make, for every market, each version from the one it first
    got to the last, once, and the changes come in log order (the queues are long
    enough never to coalesce)."""
    view = FakeView()
    hub = _hub(view, max_pending=10_000)
    markets = [_market() for _ in range(20)]
    for market in markets[:5]:
        view.change(market)
    done = asyncio.Event()

    async def pour() -> None:
        for i in range(2000):
            view.change(markets[i % len(markets)], home=str(2 + i % 7))
            await asyncio.sleep(0)
        done.set()

    async def subscribe(delay: int) -> list[OddsRecord]:
        for _ in range(delay):
            await asyncio.sleep(0)
        got: list[OddsRecord] = []
        stream = hub.follow(OddsFilter(), current=True)
        try:
            while not (done.is_set() and len(got) and got[-1].position == view.position):
                try:
                    got.append(await asyncio.wait_for(anext(stream), 0.5))
                except TimeoutError:
                    break
        finally:
            await stream.aclose()
        return got

    pouring = asyncio.ensure_future(pour())
    results = await asyncio.gather(*(subscribe(d) for d in range(0, 1900, 37)))
    await pouring
    assert hub.clients == 0
    mid_stream = 0  # subscribers that got markets' states then changes of them
    for got in results:
        first: dict[str, OddsRecord] = {}
        last: dict[str, int] = {}
        changes: list[int] = []
        for record in got:
            if record.external_id in last:
                assert record.version == last[record.external_id] + 1, record
                changes.append(record.position)
            else:
                first[record.external_id] = record
            last[record.external_id] = record.version
        assert changes == sorted(changes)
        assert last == {m: view.by_id[m].version for m in markets}
        mid_stream += bool(changes) and any(r.version > 1 for r in first.values())
    assert mid_stream >= len(results) // 2
