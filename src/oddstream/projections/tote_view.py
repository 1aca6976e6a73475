"""What people read about races, as a projection of the log: boards, bets, dividends.

A consumer of ``race-*`` streams (``docs/consumers.md``), held in memory. Its whole state
is snapshotted into the store with its position (at stop, and every ``snapshot_every``
seconds if asked), so a restart restores the snapshot and follows on
from there rather than replaying the log; a snapshot made by a version whose state has
another shape is not used (the log is replayed instead). Every answer comes with the
global position it includes: every event up to that position, none after. The position
moves over other streams' events too (the view has considered them), so waiting for a
wallet write's position does not stall.

Memory stays bounded in a server that runs for months: a race that is over (final or
abandoned) is kept for a while — the last ``keep_finished`` of them — and then let go.
A race let go is read from its stream when asked for (:meth:`ToteView.archived`, a few
kept), and an event that still comes for it (an amended result) is left to that path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
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
from ..domain.tote.board import OddsBoard, odds_board
from ..domain.tote.events import BetPlaced, BetSettled, DividendsDeclared, PoolDividends
from ..domain.tote.race import BetRecord, RaceState, RaceStatus, evolve
from ..eventstore import EventStore, RecordedEvent
from ..eventstore.registry import EventRegistry
from ..runtime.codec import registry as default_registry
from ..runtime.race_writer import RACE_STREAM_PREFIX
from .retention import Finished, ReadBack, snapshot_header

RaceListener = Callable[[str, int], None]
#: what a snapshot restores: races, finished races, bets by race, dividends by race
_Loaded = tuple[
    dict[str, RaceState],
    list[str],
    dict[str, dict[str, "BetView"]],
    dict[str, tuple[int, tuple[PoolDividends, ...]]],
]
_OVER = (RaceStatus.FINAL, RaceStatus.ABANDONED)
#: races let go that stay readable without a log read
_ARCHIVE_CACHE = 16


class BoardView(msgspec.Struct, frozen=True):
    """A board and the log position it reflects."""

    position: int
    board: OddsBoard


class BetView(msgspec.Struct, kw_only=True, gc=False):
    """A bet as a customer sees it."""

    bet_id: str
    race_id: str
    pool: str
    selection: tuple[int, ...]
    stake_cents: int
    wallet_id: str | None
    placed_position: int
    status: str = "open"
    payout_cents: int | None = None
    refund_cents: int | None = None
    reason: str | None = None
    settled_position: int | None = None


#: Bets (and pool selections) per snapshot part: 1-2 MB of encoded state.
PART_BETS = 4096


class _Head(msgspec.Struct, frozen=True):
    """A snapshot's first part (after the header): what is not per race, and how many
    races and bets the parts after it hold (a snapshot cut short is not used)."""

    finished: list[str]
    races: int
    bets: int


class _Piece(msgspec.Struct, frozen=True, array_like=True):
    """A race's state in a snapshot: its first piece carries the race (its bets left
    out) and dividends, and every piece up to :data:`PART_BETS` of its bets."""

    race_id: str
    race: RaceState | None = None
    dividends: tuple[int, tuple[PoolDividends, ...]] | None = None
    records: dict[str, BetRecord] = msgspec.field(default_factory=dict)
    views: list[BetView] = msgspec.field(default_factory=list)


#: A snapshot's first bytes: the shape of what it holds. A release that changes the
#: state's types changes it, and its older snapshots are then replayed, not misread.
_HEADER = snapshot_header("tote-view:parts", tuple[_Head, list[_Piece]])
_encode = msgspec.msgpack.Encoder().encode
_decode_head = msgspec.msgpack.Decoder(_Head).decode
_decode_pieces = msgspec.msgpack.Decoder(list[_Piece]).decode


# A snapshot as releases before parts wrote it, in one value: still read, so an upgrade
# resumes from the snapshot its predecessor left at stop. The class's docstring is part
# of its schema and so of the fingerprint those releases wrote: leave it as it is.
class _State(msgspec.Struct, frozen=True):
    """A snapshot of the view (what it holds in memory, nothing it can read back)."""

    races: list[RaceState]
    finished: list[str]
    bets: dict[str, list[BetView]]
    dividends: dict[str, tuple[int, tuple[PoolDividends, ...]]]


_WHOLE_HEADER = snapshot_header("tote-view", _State)
_decode_state = msgspec.msgpack.Decoder(_State).decode


class ToteView(Consumer):
    """Follows the log; answers from memory, never a step behind its position."""

    name = "tote-view"
    subscription = Subscription(stream_prefix=RACE_STREAM_PREFIX)

    def __init__(
        self,
        store: EventStore,
        registry: EventRegistry | None = None,
        *,
        keep_finished: int = 50,
        snapshot_every: float | None = 0.0,
    ) -> None:
        """``keep_finished``: how many races that are over stay in memory;
        ``snapshot_every``: seconds between snapshots while running (0: only at stop;
        ``None``: none at all, the log is replayed at every start)."""
        self._store = store
        self._registry = registry or default_registry
        self._races: dict[str, RaceState] = {}
        #: races that are over, oldest first (let go past ``keep_finished``)
        self._finished: Finished[str] = Finished(keep_finished)
        #: races let go, read back from their streams
        self._archive: ReadBack[str, ToteView] = ReadBack(_ARCHIVE_CACHE)
        #: race → bet id → the bet: bet ids are unique per race only
        self._bets: dict[str, dict[str, BetView]] = {}
        #: bet id → the race holding a bet of that id, or the races when several do.
        #: Strings and tuples of strings, not a list per bet: the garbage collector
        #: leaves those alone, and there is an entry for every bet.
        self._bet_races: dict[str, str | tuple[str, ...]] = {}
        self._dividends: dict[str, tuple[int, tuple[PoolDividends, ...]]] = {}
        self._listeners: list[RaceListener] = []
        checkpoint: Checkpoint = (
            MemoryCheckpoint()
            if snapshot_every is None
            else SnapshotCheckpoint(every=snapshot_every)
        )
        self.runner = ConsumerRunner(store, self, checkpoint)

    @property
    def position(self) -> int:
        """The global position the view includes: every race event up to it, and every
        other event up to it passed over."""
        return self.runner.position

    def on_race_changed(self, listener: RaceListener) -> None:
        """Call ``listener(race_id, position)`` after each event of a race is applied."""
        self._listeners.append(listener)

    async def start(self) -> None:
        """Restore the last snapshot (if any) and follow the log from it."""
        await self.runner.start()

    async def stop(self) -> None:
        """Stop following and snapshot the state (a restart resumes from it)."""
        await self.runner.stop()

    async def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Forget everything and apply the whole log up to its current head (the replay
        path); returns the number of race events applied. ``progress(position, head)``
        is called as it goes."""
        return await self.runner.rebuild(progress)

    # ----------------------------------------------------------------- the consumer
    async def handle(self, batch: Batch) -> None:
        for recorded in batch.events:
            self.apply(recorded)

    async def reset(self) -> None:
        self._races.clear()
        self._finished.clear()
        self._archive.clear()
        self._bets.clear()
        self._bet_races.clear()
        self._dividends.clear()

    def snapshot(self) -> Iterator[bytes]:
        """The view's state in parts of about :data:`PART_BETS` bets each, encoded one
        at a time as they are drawn (for :class:`~oddstream.consumers.SnapshotCheckpoint`:
        the state must not change until the last is drawn)."""
        yield _HEADER + _encode(
            _Head(
                finished=list(self._finished),
                races=len(self._races),
                bets=sum(len(race.bets) for race in self._races.values()),
            )
        )
        pieces: list[_Piece] = []
        size = 0
        for race_id, race in self._races.items():
            records = iter(race.bets.items())
            views = iter(self._bets.get(race_id, {}).values())
            piece = _Piece(
                race_id,
                race=dataclasses.replace(race, bets={}),
                dividends=self._dividends.get(race_id),
                records=dict(islice(records, PART_BETS)),
                views=list(islice(views, PART_BETS)),
            )
            size += 1 + sum(len(pool.stakes) for pool in race.pools.values())
            while True:
                pieces.append(piece)
                taken = max(len(piece.records), len(piece.views))
                size += taken
                if size >= PART_BETS:
                    yield _encode(pieces)
                    pieces = []
                    size = 0
                if taken < PART_BETS:
                    break
                piece = _Piece(
                    race_id,
                    records=dict(islice(records, PART_BETS)),
                    views=list(islice(views, PART_BETS)),
                )
        if pieces:
            yield _encode(pieces)

    def restore(self, parts: Sequence[bytes]) -> bool:
        """Load a :meth:`snapshot` from its parts; ``False`` if it has another format
        (or is damaged)."""
        if not parts:
            return False
        try:
            if parts[0].startswith(_HEADER):
                loaded = self._load_parts(parts)
            elif parts[0].startswith(_WHOLE_HEADER) and len(parts) == 1:
                loaded = self._load_whole(parts[0])
            else:
                return False
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        if loaded is None:
            return False
        self._races, finished, self._bets, self._dividends = loaded
        self._finished.reset(finished)
        self._bet_races = {}
        for race_id, bets in self._bets.items():
            for bet_id in bets:
                self._hold_bet(bet_id, race_id)
        # a restart may keep fewer finished races than the process that took it
        for race_id in self._finished.past_keep():
            self._let_go(race_id)
        return True

    @staticmethod
    def _load_parts(parts: Sequence[bytes]) -> _Loaded | None:
        head = _decode_head(memoryview(parts[0])[len(_HEADER) :])
        races: dict[str, RaceState] = {}
        bets: dict[str, dict[str, BetView]] = {}
        dividends: dict[str, tuple[int, tuple[PoolDividends, ...]]] = {}
        for part in islice(parts, 1, None):
            for piece in _decode_pieces(part):
                if piece.race is not None:
                    if piece.race_id in races:
                        return None  # a race twice: not a snapshot this view made
                    races[piece.race_id] = piece.race
                    if piece.dividends is not None:
                        dividends[piece.race_id] = piece.dividends
                race = races.get(piece.race_id)
                if race is None:
                    return None  # bets of a race not (yet) there: damaged
                race.bets.update(piece.records)
                if piece.views:
                    held = bets.get(piece.race_id)
                    if held is None:
                        held = bets[piece.race_id] = {}
                    for view in piece.views:
                        held[view.bet_id] = view
        if len(races) != head.races or sum(len(r.bets) for r in races.values()) != head.bets:
            return None  # parts missing
        return races, head.finished, bets, dividends

    @staticmethod
    def _load_whole(data: bytes) -> _Loaded:
        state = _decode_state(memoryview(data)[len(_WHOLE_HEADER) :])
        return (
            {race.race_id: race for race in state.races},
            state.finished,
            {race: {bet.bet_id: bet for bet in bets} for race, bets in state.bets.items()},
            dict(state.dividends),
        )

    def _hold_bet(self, bet_id: str, race_id: str) -> None:
        held = self._bet_races.get(bet_id)
        if held is None:
            self._bet_races[bet_id] = race_id
        elif isinstance(held, str):
            if held != race_id:
                self._bet_races[bet_id] = (held, race_id)
        elif race_id not in held:
            self._bet_races[bet_id] = (*held, race_id)

    def apply(self, recorded: RecordedEvent) -> None:
        """Apply one stored race event (in log order; the runner moves the position)."""
        race_id = recorded.stream_id[len(RACE_STREAM_PREFIX) :]
        position = recorded.position
        state = self._races.get(race_id)
        if state is None:
            if recorded.version > 1:  # a race let go: reads of it go to its stream
                self._archive.drop(race_id)
                return
            state = self._races[race_id] = RaceState()
        event = self._registry.decode(recorded)
        evolve(state, event)  # type: ignore[arg-type]
        if isinstance(event, BetPlaced):
            race_bets = self._bets.get(race_id)
            if race_bets is None:
                race_bets = self._bets[race_id] = {}
            self._hold_bet(event.bet_id, race_id)
            race_bets[event.bet_id] = BetView(
                bet_id=event.bet_id,
                race_id=race_id,
                pool=event.pool.value,
                selection=event.selection,
                stake_cents=event.stake_cents,
                wallet_id=event.wallet_id,
                placed_position=position,
            )
        elif isinstance(event, BetSettled):
            bet = self._bets.get(race_id, {}).get(event.bet_id)
            if bet is not None:
                bet.status = "settled"
                bet.payout_cents = event.payout_cents
                bet.refund_cents = event.refund_cents
                bet.reason = event.reason
                bet.settled_position = position
        elif isinstance(event, DividendsDeclared):
            self._dividends[race_id] = (position, event.pools)
        for listener in self._listeners:
            listener(race_id, position)
        if state.status in _OVER and race_id not in self._finished:
            self._finished.add(race_id)
            for gone in self._finished.past_keep():
                self._let_go(gone)

    def _let_go(self, race_id: str) -> None:
        """Forget a race that is over (it stays readable through :meth:`archived`)."""
        self._archive.drop(race_id)
        self._races.pop(race_id, None)
        self._dividends.pop(race_id, None)
        for bet_id in self._bets.pop(race_id, {}):
            held = self._bet_races.get(bet_id)
            if held == race_id:
                del self._bet_races[bet_id]
            elif isinstance(held, tuple):
                rest = tuple(r for r in held if r != race_id)
                self._bet_races[bet_id] = rest[0] if len(rest) == 1 else rest

    @property
    def held(self) -> tuple[int, int]:
        """``(races, bets)`` in memory."""
        return len(self._races), sum(len(bets) for bets in self._bets.values())

    async def archived(self, race_id: str) -> ToteView | None:
        """A view of one race this view does not hold, read from its stream; ``None``
        if there is no such race. Races that are over (they change no more) are kept in
        a small cache; concurrent reads of one race share one read of its stream."""

        def over(view: ToteView) -> bool:
            # a race not over yet may still be applied here: caching it would freeze it
            state = view.race(race_id)
            return state is not None and state.status in _OVER and race_id not in self._races

        return await self._archive.get(race_id, lambda: self._read_race(race_id), over)

    async def _read_race(self, race_id: str) -> ToteView | None:
        view = ToteView(self._store, self._registry, keep_finished=1, snapshot_every=None)
        async for recorded in self._store.scan_stream(f"{RACE_STREAM_PREFIX}{race_id}"):
            view.apply(recorded)
        return view if view.race(race_id) is not None else None

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the view has applied ``position``; False on timeout."""
        return await self.runner.wait_for(position, timeout)

    async def wait_caught_up(self, timeout: float) -> bool:
        """Wait until the view reached the head of the log; False on timeout."""
        return await self.runner.wait_caught_up(timeout)

    def races(self) -> list[RaceState]:
        """Every race, in the order they first appeared in the log (oldest first)."""
        return list(self._races.values())

    def race(self, race_id: str) -> RaceState | None:
        return self._races.get(race_id)

    def board(self, race_id: str) -> BoardView | None:
        """The race's board with the position it includes, or None for an unknown race."""
        state = self._races.get(race_id)
        if state is None:
            return None
        return BoardView(self.runner.position, odds_board(state))

    def bet(self, race_id: str, bet_id: str) -> BetView | None:
        """The bet ``bet_id`` of race ``race_id``."""
        return self._bets.get(race_id, {}).get(bet_id)

    def bets_named(self, bet_id: str) -> list[BetView]:
        """Every bet called ``bet_id``, one per race at most (oldest race first)."""
        held = self._bet_races.get(bet_id, ())
        races = (held,) if isinstance(held, str) else held
        return [self._bets[race][bet_id] for race in races]

    def dividends(self, race_id: str) -> tuple[int, tuple[PoolDividends, ...]] | None:
        """The declared dividends of a race with the position of the declaration."""
        return self._dividends.get(race_id)
