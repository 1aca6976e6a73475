"""The odds read model stays bounded and starts from a snapshot (docs/service.md,
*Memory*): markets that are over are let go past the last ``keep_finished`` and read back
from their streams; a restart restores the snapshot and reads only the log after it; a
snapshot it cannot use is replayed; every answer equals a full replay's."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import msgspec
import pytest

from oddstream.api.odds_push import OddsFilter, OddsHub
from oddstream.application.odds import DEFAULT_LIMITS, market_events, record_json
from oddstream.consumers import Batch
from oddstream.domain.fixedodds import (
    CloseMarket,
    CreateMarket,
    DeleteMarket,
    MarketStatus,
    MoneyLine,
    Odds,
    Outcome,
    PlaceBet,
    ResultMarket,
    UpdatePrices,
    VoidMarket,
)
from oddstream.eventstore import EventStore
from oddstream.projections import odds_view
from oddstream.projections.odds_view import OddsRecord, OddsView
from oddstream.runtime.market_writer import MarketRequest, MarketWriter

ALL = 1_000_000  # keep_finished of a view that lets nothing go: the reference


def line(home: str = "1.91") -> MoneyLine:
    return MoneyLine(home=Odds.from_decimal(home), away=Odds.from_decimal("2.05"))


class Book:
    """Markets driven through the market writer."""

    def __init__(self, store: EventStore) -> None:
        self.writer = MarketWriter(store)
        self.ids: list[str] = []

    async def run(self, command: Any) -> None:
        await self.writer.execute(MarketRequest(action=type(command).__name__, command=command))

    async def create(self, market: str) -> None:
        self.ids.append(market)
        await self.run(
            CreateMarket(
                market_id=market,
                game_id=f"g-{market}",
                provider="acme",
                money_line=line(),
                limits=DEFAULT_LIMITS,
            )
        )

    async def update(self, market: str, home: str) -> None:
        await self.run(UpdatePrices(market_id=market, provider="acme", money_line=line(home)))

    async def bet(self, market: str, bet_id: str) -> None:
        state = await self.writer.state(market)
        price = state.prices[Outcome.HOME]
        await self.run(
            PlaceBet(
                market_id=market, bet_id=bet_id, outcome=Outcome.HOME, stake_cents=500, price=price
            )
        )

    async def result(self, market: str) -> None:
        await self.run(CloseMarket(market_id=market, provider="acme"))
        await self.run(ResultMarket(market_id=market, provider="acme", winners=(Outcome.HOME,)))

    async def void(self, market: str) -> None:
        await self.run(VoidMarket(market_id=market, provider="acme", reason="abandoned"))

    async def delete(self, market: str) -> None:
        await self.run(DeleteMarket(market_id=market, provider="acme"))

    async def status(self, market: str) -> MarketStatus:
        return (await self.writer.state(market)).status


async def caught_up(view: OddsView, store: EventStore) -> None:
    assert await view.wait_for(await store.head_position(), 10)


def picture(view: OddsView) -> object:
    """What the view holds and lists, as plain values."""
    return msgspec.to_builtins(
        {
            "records": [record_json(r) for r in view.records()],
            "finished": list(view._finished),
            "states": [view._records.state(r.external_id) for r in view.records()],
            "position": view.position,
        }
    )


async def every_record(view: OddsView, ids: list[str]) -> list[Any]:
    """Every market's record as :meth:`OddsView.find` answers it (held or read back)."""
    found = [await view.find(market) for market in ids]
    return [None if r is None else record_json(r) for r in found]


async def test_markets_that_are_over_are_let_go_and_read_back(store: EventStore) -> None:
    book = Book(store)
    m = [str(uuid.UUID(int=n + 1)) for n in range(7)]  # ExternalIDs are UUIDs
    view = OddsView(store, keep_finished=2)
    everything = OddsView(store, keep_finished=ALL, snapshot_every=None)
    await view.start()
    await everything.start()
    try:
        for n in range(7):
            await book.create(m[n])
            await book.update(m[n], "1.8")
        await book.bet(m[0], "b1")
        await book.result(m[0])  # settles b1 in the same append
        await book.void(m[1])
        await book.delete(m[2])
        await book.result(m[3])
        await book.delete(m[4])
        await caught_up(view, store)
        await caught_up(everything, store)
        # the open m5, m6 and the last two that are over: m3, m4; in ID order
        assert [r.external_id for r in view.records()] == [m[3], m[4], m[5], m[6]]
        assert view.held == len(view) == 4
        assert list(view._finished) == [m[3], m[4]]
        assert view.get(m[0]) is None
        # every market still answers, as a view that lets nothing go answers it
        assert await every_record(view, book.ids) == [record_json(r) for r in everything.records()]
        assert await view.find("nope") is None
        # the event log of a market let go: its stream, up to the record's version
        record, events = await market_events(view, store, m[0], 1, 100)
        assert record.version == len(events) == 6  # created, updated, bet, closed, result, settled
    finally:
        await view.stop()
        await everything.stop()


async def test_a_market_over_holds_none_of_its_bets(store: EventStore) -> None:
    """The markets over that are kept cost a fixed amount each, not what their bets do:
    once every bet is settled the view (and its snapshot) holds none of them; an open
    market holds its live ones (their settlements need them)."""
    book = Book(store)
    view = OddsView(store, keep_finished=10)
    await view.start()
    try:
        for market in ("m0", "m1", "m2"):
            await book.create(market)
            for n in range(20):
                await book.bet(market, f"b{n}")
        await book.result("m0")
        await book.void("m1")
        await caught_up(view, store)
        bets = {m: len(s.bets) for s, r in view._records.markets() for m in [r.external_id]}
        assert bets == {"m0": 0, "m1": 0, "m2": 20}
        reference = OddsView(store, keep_finished=ALL, snapshot_every=None)
        await reference.rebuild()
        assert await every_record(view, book.ids) == [record_json(r) for r in reference.records()]
    finally:
        await view.stop()


async def test_a_late_event_for_a_market_let_go_brings_it_back(store: EventStore) -> None:
    """A resulted market may still be deleted: its change is applied (and pushed), the
    market held again until more markets are over after it."""
    book = Book(store)
    view = OddsView(store, keep_finished=1)
    pushed: list[OddsRecord] = []
    view.on_market_changed(pushed.append)
    await view.start()
    try:
        for n in range(3):
            await book.create(f"m{n}")
        await book.result("m0")
        await book.result("m1")
        await caught_up(view, store)
        assert [r.external_id for r in view.records()] == ["m1", "m2"]
        before = await view.find("m0")
        assert before is not None
        assert not before.deleted
        await book.delete("m0")
        await caught_up(view, store)
        # back at its place in the listing, the newest market over (m1 let go)
        assert [r.external_id for r in view.records()] == ["m0", "m2"]
        now = view.get("m0")
        assert now is not None
        assert now.deleted
        assert (now.id, now.created_at, now.version) == (before.id, before.created_at, 4)
        assert pushed[-1] == now
        assert await view.find("m0") is now
        reference = OddsView(store, keep_finished=ALL, snapshot_every=None)
        await reference.rebuild()
        assert await every_record(view, book.ids) == [record_json(r) for r in reference.records()]
        # and a rebuild of the view lets it go the same way
        replayed = OddsView(store, keep_finished=1, snapshot_every=None)
        await replayed.rebuild()
        assert picture(replayed) == picture(view)
    finally:
        await view.stop()


async def test_a_batch_whose_bring_back_read_fails_is_applied_once_when_given_again(
    store: EventStore,
) -> None:
    """A batch that brings a market back reads its stream: a read that fails raises the
    batch to be given again (the runner's rule), and the view must then hold what one
    pass holds, not the batch's earlier events applied twice (a bet's stake counted
    twice keeps its market from ever being over)."""
    book = Book(store)
    for n in range(3):
        await book.create(f"m{n}")
    await book.result("m0")
    await book.result("m1")  # m0 let go (keep_finished=1)
    split = await store.head_position()
    await book.bet("m2", "b1")  # applied before the failing read, in the same batch
    await book.delete("m0")  # brings m0 back: its stream is read
    events = [e async for e in store.scan_all(0, stream_prefix="market-")]
    first = [e for e in events if e.position <= split]
    second = [e for e in events if e.position > split]
    view = OddsView(store, keep_finished=1, snapshot_every=None)
    await view.handle(Batch(first, 0, split))
    assert view.get("m0") is None
    scan = store.scan_stream
    failures = 1

    def failing(*args: Any, **kw: Any) -> Any:
        nonlocal failures
        if failures:
            failures -= 1
            raise OSError("the store went away")
        return scan(*args, **kw)

    store.scan_stream = failing  # type: ignore[method-assign]
    batch = Batch(second, split, second[-1].position)
    with pytest.raises(OSError, match="went away"):
        await view.handle(batch)
    await view.handle(batch)  # given again, as the runner does
    store.scan_stream = scan  # type: ignore[method-assign]
    replayed = OddsView(store, keep_finished=1, snapshot_every=None)
    await replayed.rebuild()
    held, reference = picture(view), picture(replayed)
    assert isinstance(held, dict)
    assert isinstance(reference, dict)
    del held["position"], reference["position"]  # the view was fed by hand
    assert held == reference
    state = view._records.state("m2")
    assert state is not None
    assert state.live_stakes == 500


async def test_a_market_let_go_and_brought_back_within_one_batch(store: EventStore) -> None:
    """A market let go by an event of a batch and brought back by a later one of the same
    batch is held again as it was let go (no stream read: one before the batch would
    lack the batch's events)."""
    book = Book(store)
    for n in range(3):
        await book.create(f"m{n}")
    await book.result("m0")
    await book.result("m1")  # m0 let go (keep_finished=1)
    await book.delete("m0")  # m0 back, m1 let go
    await book.delete("m1")  # m1 back, m0 let go
    events = [e async for e in store.scan_all(0, stream_prefix="market-")]
    view = OddsView(store, keep_finished=1, snapshot_every=None)
    reads = 0
    scan = store.scan_stream

    def counted(*args: Any, **kw: Any) -> Any:
        nonlocal reads
        reads += 1
        return scan(*args, **kw)

    store.scan_stream = counted  # type: ignore[method-assign]
    await view.handle(Batch(events, 0, events[-1].position))  # one batch: the whole log
    store.scan_stream = scan  # type: ignore[method-assign]
    assert reads == 0
    assert [r.external_id for r in view.records()] == ["m1", "m2"]
    reference = OddsView(store, keep_finished=ALL, snapshot_every=None)
    await reference.rebuild()
    assert await every_record(view, book.ids) == [record_json(r) for r in reference.records()]


async def test_a_read_back_of_a_market_not_over_is_not_kept(store: EventStore) -> None:
    book = Book(store)
    view = OddsView(store)  # not started: it holds nothing
    await book.create("m1")
    early = await view.find("m1")
    assert early is not None
    await book.update("m1", "1.5")
    later = await view.find("m1")
    assert later is not None
    assert later.version == 2
    assert later.money_line.home == Odds.from_decimal("1.5")
    await book.result("m1")
    over = await view.find("m1")
    assert await view.find("m1") is over  # over: kept


async def test_concurrent_reads_of_a_market_let_go_share_one_read(store: EventStore) -> None:
    book = Book(store)
    await book.create("m1")
    await book.void("m1")
    view = OddsView(store)
    reads = 0
    scan = store.scan_stream

    def counted(*args: Any, **kw: Any) -> Any:
        nonlocal reads
        reads += 1
        return scan(*args, **kw)

    store.scan_stream = counted  # type: ignore[method-assign]
    found = await asyncio.gather(*(view.find("m1") for _ in range(8)))
    assert reads == 1
    assert all(r is found[0] for r in found)


async def test_a_read_back_begun_before_a_market_changed_is_not_kept(store: EventStore) -> None:
    """A market let go is read from its stream; if an event for it (a deletion) is
    applied meanwhile, a reader after that event does not share the read begun before
    it, and the older read is not kept: the cache would answer `Deleted: false` for
    good (``keep_finished=0``: the market is let go again at once)."""
    book = Book(store)
    view = OddsView(store, keep_finished=0, snapshot_every=None)
    await view.start()
    scan = store.scan_stream
    try:
        await book.create("m1")
        await book.void("m1")
        await caught_up(view, store)
        assert view.get("m1") is None
        started, release = asyncio.Event(), asyncio.Event()
        gated = True

        async def slow(*args: Any, **kw: Any) -> Any:
            nonlocal gated
            events = [e async for e in scan(*args, **kw)]
            if gated:  # the first read only: it read the stream, and answers late
                gated = False
                started.set()
                await release.wait()
            for e in events:
                yield e

        store.scan_stream = slow  # type: ignore[method-assign]
        early = asyncio.create_task(view.find("m1"))
        await started.wait()
        await book.delete("m1")
        await caught_up(view, store)  # brought back, deleted, let go again
        assert view.get("m1") is None
        later = asyncio.create_task(view.find("m1"))
        await asyncio.sleep(0.05)  # it asks while the early read is still under way
        release.set()
        first = await early
        assert first is not None
        assert not first.deleted  # it asked before the deletion
        after = await asyncio.wait_for(later, 5)
        assert after is not None
        assert after.deleted
        again = await view.find("m1")
        assert again is not None
        assert again.deleted
    finally:
        store.scan_stream = scan  # type: ignore[method-assign]
        await view.stop()


async def test_pages_cover_the_listing_once_as_markets_leave(store: EventStore) -> None:
    """The listing is the markets held, oldest first: its pages, read at one position,
    hold each listed market once, and the total is theirs."""
    book = Book(store)
    view = OddsView(store, keep_finished=3, snapshot_every=None)
    await view.start()
    try:
        for n in range(30):
            await book.create(f"m{n:02}")
            if n % 3 == 0:
                await book.delete(f"m{n:02}")
        await caught_up(view, store)
        listed = view.records()
        assert len(listed) == len(view) == 20 + 3
        pages = [r for p in range(1, 6) for r in view.page(p, 5)]
        assert pages == listed
        assert [r.id for r in listed] == sorted(r.id for r in listed)
        assert view.page(6, 5) == []
    finally:
        await view.stop()


async def test_pages_by_after_id_skip_no_market_as_markets_leave(store: EventStore) -> None:
    """Paging by ``page_no`` while markets before the page leave skips markets (the
    documented limit); paging by ``after_id`` (the last ``ID`` seen) sees every market
    listed when it began, once, in ``ID`` order."""
    book = Book(store)
    view = OddsView(store, keep_finished=0, snapshot_every=None)
    await view.start()
    try:
        for n in range(12):
            await book.create(f"m{n:02}")
        await caught_up(view, store)
        first = view.page(1, 3)
        await book.delete(first[0].external_id)  # a market seen leaves
        await caught_up(view, store)
        second = view.page(2, 3)
        assert [r.external_id for r in first + second] == ["m00", "m01", "m02", "m04", "m05", "m06"]

        listed = [r.external_id for r in view.records()]
        seen: list[str] = []
        cursor = 0
        while page := view.page(1, 3, cursor):
            seen += [r.external_id for r in page]
            cursor = page[-1].id
            await book.delete(page[0].external_id)  # a market seen leaves
            await caught_up(view, store)
        assert seen == listed
        # page_no counts from the cursor
        records = view.records()
        assert view.page(2, 2, records[0].id) == records[3:5]
        assert view.page(1, 5, records[-1].id) == []
    finally:
        await view.stop()


# ------------------------------------------------------------------------ snapshots


async def random_log(book: Book, rng: random.Random, markets: int) -> None:
    """Markets created, repriced, bet on, resulted, voided and deleted at random."""
    for n in range(markets):
        market = f"m{len(book.ids)}"
        await book.create(market)
        for _ in range(rng.randrange(3)):
            await book.update(market, rng.choice(("1.5", "1.75", "2.1")))
        live = [m for m in book.ids if await book.status(m) is MarketStatus.OPEN]
        for other in rng.sample(live, min(len(live), 2)):
            action = rng.random()
            if action < 0.3:
                await book.bet(other, f"b{n}")
            elif action < 0.5:
                await book.result(other)
            elif action < 0.6:
                await book.void(other)
            elif action < 0.7:
                await book.update(other, "3.3")
        over = [
            m
            for m in book.ids
            if await book.status(m) in (MarketStatus.RESULTED, MarketStatus.VOIDED)
        ]
        if over and rng.random() < 0.3:
            await book.delete(rng.choice(over))  # late: perhaps of a market let go


async def test_a_restart_reads_only_the_log_after_its_snapshot(store: EventStore) -> None:
    rng = random.Random(7)
    book = Book(store)
    await random_log(book, rng, 25)
    first = OddsView(store, keep_finished=4)
    await first.start()
    await caught_up(first, store)
    await first.stop()  # snapshot at stop
    snapped = await store.load_snapshot("odds-view")
    assert snapped is not None
    assert snapped.position == first.position
    before = picture(first)
    probe = OddsView(store, keep_finished=4)
    applied: list[int] = []
    apply_probe = probe.apply
    probe.apply = lambda recorded: (applied.append(recorded.position), apply_probe(recorded))[1]  # type: ignore[method-assign]
    await probe.start()
    await caught_up(probe, store)
    await probe.stop()
    assert applied == []  # nothing replayed
    assert picture(probe) == before
    await random_log(book, rng, 10)  # and more after the snapshot

    second = OddsView(store, keep_finished=4)
    handled: list[int] = []
    apply = second.apply
    second.apply = lambda recorded: (handled.append(recorded.position), apply(recorded))[1]  # type: ignore[method-assign]
    await second.start()
    try:
        await caught_up(second, store)
        assert handled
        assert min(handled) > snapped.position  # only the log after the snapshot
        replayed = OddsView(store, keep_finished=4, snapshot_every=None)
        await replayed.rebuild()
        assert picture(second) == picture(replayed)
        reference = OddsView(store, keep_finished=ALL, snapshot_every=None)
        await reference.rebuild()
        assert await every_record(second, book.ids) == [record_json(r) for r in reference.records()]
    finally:
        await second.stop()


async def test_live_subscribers_are_fed_after_a_start_from_the_snapshot(
    store: EventStore,
) -> None:
    """The GraphQL hub (``getInstantOdds``) of a view started from a snapshot gets the
    markets held as its current records, and every change after."""
    book = Book(store)
    first = OddsView(store, keep_finished=1)
    await first.start()
    for n in range(3):
        await book.create(f"m{n}")
    await book.delete("m0")
    await book.delete("m1")  # m0 let go
    await caught_up(first, store)
    await first.stop()  # the snapshot
    second = OddsView(store, keep_finished=1)
    hub = OddsHub(second)
    snapshot = await store.load_snapshot("odds-view")
    assert snapshot is not None
    assert snapshot.position == await store.head_position()
    await second.start()
    try:
        await caught_up(second, store)
        sub = hub.attach(OddsFilter(), current=True)
        assert [r.external_id for r in sub.first] == ["m1", "m2"]
        await book.update("m2", "1.5")
        await book.delete("m2")  # m1 let go
        await caught_up(second, store)
        pushed = [(r.external_id, r.version, r.deleted) for r in sub.pending]
        assert pushed == [("m2", 2, False), ("m2", 3, True)]
        assert [r.external_id for r in second.records()] == ["m2"]
    finally:
        await second.stop()


async def test_snapshots_it_cannot_use_are_replayed(store: EventStore) -> None:
    book = Book(store)
    await random_log(book, random.Random(3), 12)
    good = OddsView(store, keep_finished=2)
    await good.start()
    await caught_up(good, store)
    await good.stop()
    found = await store.load_snapshot("odds-view")
    assert found is not None
    head, parts = found.position, list(found.parts)
    header = parts[0][: parts[0].index(b"\n") + 1]
    assert header.startswith(b"odds-view:")
    unusable = {
        "an older format": [b"odds-view:0000000000000000\n" + parts[0][len(header) :], *parts[1:]],
        "damaged": [parts[0], b"\xc1garbage"],
        "a part missing": parts[:1],
        "a market twice": [parts[0], parts[1], parts[1]],
        "not the view's": [b"tote-view:parts:0\n"],
    }
    for what, damaged in unusable.items():
        await store.save_snapshot("odds-view", head, damaged)
        view = OddsView(store, keep_finished=2)
        handled: list[int] = []
        apply = view.apply
        view.apply = lambda r, h=handled, a=apply: (h.append(r.position), a(r))[1]  # type: ignore[method-assign]
        await view.start()
        try:
            await caught_up(view, store)
            assert handled, what
            assert min(handled) == 1, what  # the log from the start
            assert picture(view) == picture(good), what
        finally:
            await view.runner.stop()  # no snapshot written over the next case's


async def test_a_snapshot_beyond_the_log_s_head_is_not_used(store: EventStore) -> None:
    """A snapshot at a position the log does not reach is not this log's: restored, the
    view would skip every event up to it (a market created later never listed, and
    reads at its position answered at once); the log is replayed instead."""
    empty = OddsView(store)
    await store.save_snapshot("odds-view", 50, list(empty.snapshot()))
    book = Book(store)
    view = OddsView(store)
    await view.start()
    try:
        await book.create("m1")
        await caught_up(view, store)
        assert view.position == await store.head_position() == 1
        assert [r.external_id for r in view.records()] == ["m1"]
    finally:
        await view.stop()
    found = await store.load_snapshot("odds-view")
    assert found is not None
    assert found.position == 1  # the stop's snapshot replaced it


async def test_a_restart_with_fewer_markets_kept_lets_the_oldest_go(store: EventStore) -> None:
    book = Book(store)
    for n in range(5):
        await book.create(f"m{n}")
        await book.void(f"m{n}")
    first = OddsView(store, keep_finished=4)
    await first.start()
    await caught_up(first, store)
    await first.stop()
    assert len(first) == 4
    second = OddsView(store, keep_finished=2)
    await second.start()
    try:
        await caught_up(second, store)
        assert [r.external_id for r in second.records()] == ["m3", "m4"]
        assert (await second.find("m1")) == first.get("m1")
    finally:
        await second.stop()


def test_the_snapshot_header_names_the_state_s_shape() -> None:
    assert odds_view._HEADER.startswith(b"odds-view:")
    assert odds_view._HEADER.endswith(b"\n")
    assert len(odds_view._HEADER) == len(b"odds-view:") + 16 + 1
