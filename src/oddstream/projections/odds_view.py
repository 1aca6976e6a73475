"""What the odds service's clients read, as a projection of the log: one record per
fixed-odds market, as the odds service they knew persisted it.

A consumer of ``market-*`` streams (``docs/consumers.md``), held in memory: every answer
is a function of the log up to the view's position, so a replay answers the same. A
record's ``ID`` is the global position of the market's ``MarketCreated`` and its times
are the store's ``recorded_at`` of its first and latest events: both come from the log,
not from the moment of the replay.

Its whole state is snapshotted into the store with its position (at stop, and every
``snapshot_every`` seconds if asked), so a restart restores the snapshot and follows on
from there rather than replaying the log; a snapshot of another shape is not used (the
log is replayed instead).

Memory stays bounded by the markets that are live, not by time: a market that is over
(resulted, voided, deleted) is kept for a while — the last ``keep_finished`` of them —
and then let go (as the tote view lets races go: ``projections/retention.py``). A market
let go leaves the listing and is read from its stream when asked for
(:meth:`OddsView.find`, the last few reads kept); an event that still comes for it (a
resulted market deleted) brings it back into memory, read from its stream, until it is
let go again.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

import msgspec

from ..consumers import (
    Batch,
    Checkpoint,
    Consumer,
    ConsumerRunner,
    MemoryCheckpoint,
    SnapshotCheckpoint,
    Subscription,
)
from ..domain.fixedodds import MarketState, MoneyLine, evolve
from ..domain.fixedodds.events import MarketCreated
from ..domain.fixedodds.market import MarketStatus, money_line_of
from ..eventstore import EventStore, RecordedEvent
from ..eventstore.registry import EventRegistry
from ..runtime.codec import registry as default_registry
from ..runtime.market_writer import MARKET_STREAM_PREFIX
from .retention import Finished, ReadBack, snapshot_header

log = logging.getLogger(__name__)

#: a market in one of these changes no more but to be deleted (deleted: not at all),
#: once the settlements that follow its result or void are applied
OVER = frozenset({MarketStatus.RESULTED, MarketStatus.VOIDED, MarketStatus.DELETED})


def is_over(state: MarketState) -> bool:
    """The market is over: resulted, voided or deleted, and every bet on it settled (a
    result's settlements follow it in the log)."""
    return state.status in OVER and state.live_stakes == 0


#: markets that are over kept in memory by default (``ODDSTREAM_KEEP_FINISHED_MARKETS``)
KEEP_FINISHED = 1000
#: markets let go whose reads from their streams are kept
READ_BACK_CACHE = 256
#: about this many markets and bets per snapshot part
PART_ITEMS = 4096


@dataclass(frozen=True, slots=True)
class OddsRecord:
    """A market as the odds service shows it, as of the log position ``position``."""

    id: int
    external_id: str
    game_id: str
    provider: str
    money_line: MoneyLine
    deleted: bool
    created_at: datetime
    updated_at: datetime
    #: the market's stream version the record includes
    version: int
    #: the global position of the latest event the record includes
    position: int
    #: the market's lifecycle status (never ``UNCREATED``: a record is made by its
    #: ``MarketCreated``)
    status: MarketStatus


#: called with a market's new record after each of its events is applied, in log order
MarketListener = Callable[[OddsRecord], None]


def record_of(
    state: MarketState,
    *,
    external_id: str,
    id: int,
    created_at: datetime,
    updated_at: datetime,
    version: int,
    position: int,
) -> OddsRecord:
    """The record of a market in ``state``: the one mapping of a market's state to what
    the odds service shows (applied after each event, and to a snapshot's markets)."""
    return OddsRecord(
        id=id,
        external_id=external_id,
        game_id=state.game_id,
        provider=state.provider,
        money_line=money_line_of(state),
        deleted=state.status is MarketStatus.DELETED,
        created_at=created_at,
        updated_at=updated_at,
        version=version,
        position=position,
        status=state.status,
    )


class OddsRecords:
    """The odds records a run of market events makes, in memory: the one mapping of the
    log to the odds service's records. The live view (:class:`OddsView`) and the replay
    worker's odds tables (``sinks/odds_tables.py``) both apply the log through it, so
    the tables a replay writes hold what the view answers."""

    def __init__(self, registry: EventRegistry | None = None) -> None:
        self._registry = registry or default_registry
        self._states: dict[str, MarketState] = {}
        #: records by external id, and the external ids in the order of their ``ID``
        #: (for pages)
        self._records: dict[str, OddsRecord] = {}
        self._order: list[str] = []

    def clear(self) -> None:
        """Forget every market."""
        self._states.clear()
        self._records.clear()
        self._order.clear()

    def apply(self, recorded: RecordedEvent) -> OddsRecord | None:
        """Apply one stored market event (in log order); answers the record it made or
        changed, ``None`` for an event of a stream that is no market held (its first
        event is not a ``MarketCreated``, or the market was let go: :meth:`remove`)."""
        market_id = recorded.stream_id[len(MARKET_STREAM_PREFIX) :]
        event = self._registry.decode(recorded)
        state = self._states.get(market_id)
        if state is None:
            if not isinstance(event, MarketCreated):
                return None  # not a market this service knows how to show
            state = self._states[market_id] = MarketState(market_id=market_id)
        evolve(state, event)  # type: ignore[arg-type]
        if state.bets and is_over(state):
            # every bet settled, and the market takes none again: nothing shown or
            # decided here reads them, and a market over held with all its bets would
            # make the kept markets cost what their bets do, not a fixed amount each
            state.bets = {}
        at = recorded.recorded_at
        record = self._records.get(market_id)
        first = record is None
        record = record_of(
            state,
            external_id=market_id,
            id=recorded.position if record is None else record.id,
            created_at=at if record is None else record.created_at,
            updated_at=at,
            version=recorded.version,
            position=recorded.position,
        )
        self._records[market_id] = record
        if first:
            self._order.append(market_id)
        return record

    def _rank(self, external_id: str) -> int:
        return self._records[external_id].id

    def admit(self, state: MarketState, record: OddsRecord) -> None:
        """Hold a market (one read back from its stream) at its place in the order."""
        market_id = record.external_id
        if market_id in self._records:
            return
        self._states[market_id] = state
        self._records[market_id] = record
        if self._order and self._rank(self._order[-1]) > record.id:
            insort(self._order, market_id, key=self._rank)
        else:
            self._order.append(market_id)

    def remove(self, external_id: str) -> None:
        """Let the market ``external_id`` go (it leaves the listing)."""
        record = self._records.get(external_id)
        if record is None:
            return
        at = bisect_left(self._order, record.id, key=self._rank)
        del self._order[at]
        del self._records[external_id]
        del self._states[external_id]

    def state(self, external_id: str) -> MarketState | None:
        """The market ``external_id``'s state, or ``None``."""
        return self._states.get(external_id)

    def get(self, external_id: str) -> OddsRecord | None:
        """The market ``external_id``'s record, or ``None``."""
        return self._records.get(external_id)

    def page(self, page_no: int, page_size: int, after_id: int = 0) -> list[OddsRecord]:
        """The records of page ``page_no`` (from 1) of ``page_size``, oldest first, of
        the markets whose ``ID`` is above ``after_id`` (0: every market)."""
        start = bisect_right(self._order, after_id, key=self._rank) if after_id else 0
        start += (page_no - 1) * page_size
        return [self._records[i] for i in self._order[start : start + page_size]]

    def records(self) -> list[OddsRecord]:
        """Every market's record as it is now, oldest first (a copy: one reference a
        market)."""
        return [self._records[i] for i in self._order]

    def markets(self) -> Iterator[tuple[MarketState, OddsRecord]]:
        """Every market's state and record, oldest first."""
        states, records = self._states, self._records
        return ((states[i], records[i]) for i in self._order)

    def __len__(self) -> int:
        return len(self._order)


class _Head(msgspec.Struct, frozen=True):
    """A snapshot's first part (after the header): the markets that are over, oldest
    first, and how many markets the parts after it hold (a snapshot cut short is not
    used)."""

    finished: list[str]
    markets: int


class _Market(msgspec.Struct, frozen=True, array_like=True):
    """A market in a snapshot: its state, and what its record holds beside the state."""

    external_id: str
    state: MarketState
    id: int
    created_at: datetime
    updated_at: datetime
    version: int
    position: int


#: A snapshot's first bytes: the shape of what it holds (a release that changes it
#: replays the log rather than misread an older snapshot).
_HEADER = snapshot_header("odds-view", tuple[_Head, list[_Market]])
_encode = msgspec.msgpack.Encoder().encode
_decode_head = msgspec.msgpack.Decoder(_Head).decode
_decode_markets = msgspec.msgpack.Decoder(list[_Market]).decode


@dataclass(frozen=True, slots=True)
class _ReadBack:
    """A market read from its stream: its record, and whether it is over."""

    record: OddsRecord
    over: bool


class OddsView(Consumer):
    """Follows the markets' streams; answers from memory, never a step behind its
    position (a market let go: from its stream, :meth:`find`)."""

    name = "odds-view"
    subscription = Subscription(stream_prefix=MARKET_STREAM_PREFIX)

    def __init__(
        self,
        store: EventStore,
        registry: EventRegistry | None = None,
        *,
        keep_finished: int = KEEP_FINISHED,
        snapshot_every: float | None = 0.0,
    ) -> None:
        """``keep_finished``: how many markets that are over stay in memory;
        ``snapshot_every``: seconds between snapshots while running (0: only at stop;
        ``None``: none at all, the log is replayed at every start)."""
        self._store = store
        self._registry = registry or default_registry
        self._records = OddsRecords(self._registry)
        #: markets that are over, oldest first (let go past ``keep_finished``)
        self._finished: Finished[str] = Finished(keep_finished)
        #: markets let go, read back from their streams
        self._archive: ReadBack[str, _ReadBack] = ReadBack(READ_BACK_CACHE)
        self._listeners: list[MarketListener] = []
        #: while a batch is applied: the markets it let go, as they were (see handle)
        self._released: dict[str, tuple[MarketState, OddsRecord]] | None = None
        checkpoint: Checkpoint = (
            MemoryCheckpoint()
            if snapshot_every is None
            else SnapshotCheckpoint(every=snapshot_every)
        )
        self.runner = ConsumerRunner(store, self, checkpoint)

    @property
    def position(self) -> int:
        """The global position the view includes."""
        return self.runner.position

    def on_market_changed(self, listener: MarketListener) -> None:
        """Call ``listener(record)`` with a market's new record after each of its events
        is applied (on a replay at start and on a rebuild too: a listener that pushes
        changes skips the positions it has seen). An exception of ``listener`` is logged
        and goes no further."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Restore the last snapshot (if any) and follow the log from it."""
        await self.runner.start()

    async def stop(self) -> None:
        """Stop following and snapshot the state (a restart resumes from it)."""
        await self.runner.stop()

    async def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Forget everything and apply the whole log up to its head again."""
        return await self.runner.rebuild(progress)

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the view has applied ``position``; False on timeout."""
        return await self.runner.wait_for(position, timeout)

    # ----------------------------------------------------------------- the consumer
    async def handle(self, batch: Batch) -> None:
        """Apply the batch's events. Every read of the store it needs (a market let go
        that an event brings back) is made before the first event is applied: a read
        that fails leaves the view as it was, and the batch given again is applied
        once, not twice from its start."""
        held = self._records.get
        back: dict[str, tuple[MarketState, OddsRecord] | None] = {}
        seen: set[str] = set()
        for recorded in batch.events:
            market_id = recorded.stream_id[len(MARKET_STREAM_PREFIX) :]
            if market_id in seen:
                continue  # only a market's first event in the batch may find it let go
            seen.add(market_id)
            if recorded.version > 1 and held(market_id) is None:
                back[market_id] = await self._read_before(market_id, recorded.version)
        del seen
        # markets let go while this batch is applied, as they were: one that an event of
        # the batch brings back again is taken from here (its stream, read before the
        # batch, would lack the batch's earlier events)
        released: dict[str, tuple[MarketState, OddsRecord]] = {}
        self._released = released
        try:
            for recorded in batch.events:
                if recorded.version > 1:
                    market_id = recorded.stream_id[len(MARKET_STREAM_PREFIX) :]
                    if held(market_id) is None:
                        found = released.pop(market_id, None) or back.pop(market_id, None)
                        if found is not None:
                            self._bring_back(market_id, *found)
                self.apply(recorded)
        finally:
            self._released = None

    async def reset(self) -> None:
        self._records.clear()
        self._finished.clear()
        self._archive.clear()

    def apply(self, recorded: RecordedEvent) -> None:
        """Apply one stored market event (in log order). What is let go is decided at
        each event, never at a batch's end, so that it is a function of the log alone
        (a snapshot followed by the log holds what a replay holds)."""
        record = self._records.apply(recorded)
        if record is None:
            return
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                # a listener's failure is its own: raised here it would fail the batch,
                # which the runner retries for ever, and every read waits on the view
                log.exception("a listener of market %s's changes failed", record.external_id)
        state = self._records.state(record.external_id)
        if state is not None and is_over(state):
            self._finished.add(record.external_id)  # one over already keeps its place
            for market_id in self._finished.past_keep():
                self._let_go(market_id)

    async def _read_before(
        self, market_id: str, version: int
    ) -> tuple[MarketState, OddsRecord] | None:
        """The market ``market_id``'s state and record read from its stream up to before
        ``version``; ``None`` for a stream whose first event is no ``MarketCreated``
        (it holds no market)."""
        records = OddsRecords(self._registry)
        async for recorded in self._store.scan_stream(f"{MARKET_STREAM_PREFIX}{market_id}"):
            if recorded.version >= version:
                break
            records.apply(recorded)
        state, record = records.state(market_id), records.get(market_id)
        return None if state is None or record is None else (state, record)

    def _bring_back(self, market_id: str, state: MarketState, record: OddsRecord) -> None:
        """An event came for a market not held (let go: over, and older than the last
        ``keep_finished``): hold it again as it was before that event
        (:meth:`_read_before`, or as it was let go earlier in the batch), as the newest
        market over (let go again once ``keep_finished`` more are over after it)."""
        self._archive.drop(market_id)
        self._records.admit(state, record)
        if is_over(state):
            self._finished.add(market_id)  # let go past the last, after the event

    def _let_go(self, market_id: str) -> None:
        """Forget a market that is over (it stays readable through :meth:`find`)."""
        self._archive.drop(market_id)
        if self._released is not None:
            state, record = self._records.state(market_id), self._records.get(market_id)
            if state is not None and record is not None:
                self._released[market_id] = (state, record)
        self._records.remove(market_id)

    # ----------------------------------------------------------------- the snapshot
    def snapshot(self) -> Iterator[bytes]:
        """The view's state in parts of about :data:`PART_ITEMS` markets and bets,
        encoded one at a time as they are drawn (for
        :class:`~oddstream.consumers.SnapshotCheckpoint`: the state must not change
        until the last is drawn)."""
        yield _HEADER + _encode(_Head(finished=list(self._finished), markets=len(self._records)))
        part: list[_Market] = []
        size = 0
        for state, record in self._records.markets():
            part.append(
                _Market(
                    record.external_id,
                    state,
                    record.id,
                    record.created_at,
                    record.updated_at,
                    record.version,
                    record.position,
                )
            )
            size += 1 + len(state.bets)
            if size >= PART_ITEMS:
                yield _encode(part)
                part, size = [], 0
        if part:
            yield _encode(part)

    def restore(self, parts: Sequence[bytes]) -> bool:
        """Load a :meth:`snapshot` from its parts; ``False`` if it has another format
        (or is damaged): the log is replayed instead."""
        if not parts or not parts[0].startswith(_HEADER):
            return False
        records = OddsRecords(self._registry)
        try:
            head = _decode_head(memoryview(parts[0])[len(_HEADER) :])
            last = -1
            for part in islice(parts, 1, None):
                for market in _decode_markets(part):
                    if market.id <= last:
                        return False  # out of order, or twice: not a snapshot it made
                    last = market.id
                    if market.state.bets and is_over(market.state):
                        market.state.bets = {}  # as apply drops them (older snapshots)
                    records.admit(
                        market.state,
                        record_of(
                            market.state,
                            external_id=market.external_id,
                            id=market.id,
                            created_at=market.created_at,
                            updated_at=market.updated_at,
                            version=market.version,
                            position=market.position,
                        ),
                    )
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        if len(records) != head.markets or not all(records.get(m) for m in head.finished):
            return False  # parts missing
        self._records = records
        self._finished.reset(head.finished)
        self._archive.clear()
        # a restart may keep fewer markets that are over than the process that took it
        for market_id in self._finished.past_keep():
            self._let_go(market_id)
        return True

    # ----------------------------------------------------------------- the reads
    @property
    def held(self) -> int:
        """Markets in memory."""
        return len(self._records)

    def get(self, external_id: str) -> OddsRecord | None:
        """The record of the market ``external_id`` if it is held in memory, or
        ``None`` (see :meth:`find` for one let go)."""
        return self._records.get(external_id)

    async def find(self, external_id: str) -> OddsRecord | None:
        """The market ``external_id``'s record: from memory, or for a market let go
        (over, and older than the last ``keep_finished``) read from its stream; ``None``
        when there is no such market. Markets that are over are kept in a small cache;
        concurrent reads of one market share one read of its stream."""
        record = self._records.get(external_id)
        if record is not None:
            return record

        def over(found: _ReadBack) -> bool:
            # a market not over may still change here: caching it would freeze it
            return found.over and self._records.get(external_id) is None

        found = await self._archive.get(external_id, lambda: self._read(external_id), over)
        return None if found is None else found.record

    async def _read(self, external_id: str) -> _ReadBack | None:
        records = OddsRecords(self._registry)
        async for recorded in self._store.scan_stream(f"{MARKET_STREAM_PREFIX}{external_id}"):
            records.apply(recorded)
        state, record = records.state(external_id), records.get(external_id)
        if state is None or record is None:
            return None
        return _ReadBack(record, is_over(state))

    def page(self, page_no: int, page_size: int, after_id: int = 0) -> list[OddsRecord]:
        """The records of page ``page_no`` (from 1) of ``page_size`` of the markets held,
        oldest first; with ``after_id``, of those whose ``ID`` is above it (a cursor:
        markets let go or brought back before it move nothing after it)."""
        return self._records.page(page_no, page_size, after_id)

    def records(self) -> list[OddsRecord]:
        """Every held market's record as it is now, oldest first (a copy: one reference
        a market)."""
        return self._records.records()

    def __len__(self) -> int:
        """Markets held (listed)."""
        return len(self._records)
