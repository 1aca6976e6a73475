"""What people read about races, as a projection of the log: boards, bets, dividends.

It follows ``race-*`` streams from the start (in memory: rebuilt by replay whenever the
process starts). Every answer comes with the global position it includes: every event
up to that position, none after. The position moves over other streams' events too (the
view has considered them), so waiting for a wallet write's position does not stall.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import msgspec

from ..domain.tote.board import OddsBoard, odds_board
from ..domain.tote.events import BetPlaced, BetSettled, DividendsDeclared, PoolDividends
from ..domain.tote.race import RaceState, evolve
from ..eventstore import EventStore, RecordedEvent, StoreClosed
from ..eventstore.registry import EventRegistry
from ..runtime.codec import registry as default_registry
from ..runtime.race_writer import RACE_STREAM_PREFIX
from .position import AppliedPosition

RaceListener = Callable[[str, int], None]


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


class ToteView:
    """Follows the log; answers from memory, never a step behind its position."""

    def __init__(self, store: EventStore, registry: EventRegistry | None = None) -> None:
        self._store = store
        self._registry = registry or default_registry
        self._races: dict[str, RaceState] = {}
        #: race → bet id → the bet: bet ids are unique per race only
        self._bets: dict[str, dict[str, BetView]] = {}
        #: bet id → the race holding a bet of that id, or the races when several do.
        #: Strings and tuples of strings, not a list per bet: the garbage collector
        #: leaves those alone, and there is an entry for every bet.
        self._bet_races: dict[str, str | tuple[str, ...]] = {}
        self._dividends: dict[str, tuple[int, tuple[PoolDividends, ...]]] = {}
        self._applied = AppliedPosition()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[RaceListener] = []

    @property
    def position(self) -> int:
        """The global position the view includes: every race event up to it, and every
        other event up to it passed over."""
        return self._applied.value

    def on_race_changed(self, listener: RaceListener) -> None:
        """Call ``listener(race_id, position)`` after each event of a race is applied."""
        self._listeners.append(listener)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tote-view")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreClosed):
                await self._task
            self._task = None

    async def _run(self) -> None:
        async for page in self._store.subscribe_pages(
            after=self._applied.value, stream_prefix=RACE_STREAM_PREFIX
        ):
            for recorded in page.events:
                self.apply(recorded)
            # the page looked up to its position: events of other streams up to there
            # are passed, so reads waiting for them (min_position, readiness) go on
            if page.position > self._applied.value:
                self._applied.advance(page.position)

    async def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Apply the whole log up to its current head (the replay path); returns the
        number of events applied. ``progress(applied, total)`` is called as it goes."""
        total = await self._store.head_position()
        applied = 0
        async for recorded in self._store.scan_all(after=self._applied.value):
            if recorded.stream_id.startswith(RACE_STREAM_PREFIX):
                self.apply(recorded)
            else:
                self._applied.advance(recorded.position)
            applied += 1
            if progress is not None and applied % 1000 == 0:
                progress(recorded.position, total)
        if progress is not None:
            progress(total, total)
        return applied

    def apply(self, recorded: RecordedEvent) -> None:
        """Apply one stored race event (in log order)."""
        race_id = recorded.stream_id[len(RACE_STREAM_PREFIX) :]
        state = self._races.get(race_id)
        if state is None:
            state = self._races[race_id] = RaceState()
        event = self._registry.decode(recorded)
        evolve(state, event)  # type: ignore[arg-type]
        position = recorded.position
        if isinstance(event, BetPlaced):
            race_bets = self._bets.get(race_id)
            if race_bets is None:
                race_bets = self._bets[race_id] = {}
            held = self._bet_races.get(event.bet_id)
            if held is None:
                self._bet_races[event.bet_id] = race_id
            elif isinstance(held, str):
                if held != race_id:
                    self._bet_races[event.bet_id] = (held, race_id)
            elif race_id not in held:
                self._bet_races[event.bet_id] = (*held, race_id)
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
        self._applied.value = position
        for listener in self._listeners:
            listener(race_id, position)
        self._applied.advance(position)

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the view has applied ``position``; False on timeout."""
        return await self._applied.wait_for(position, timeout)

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
        return BoardView(self._applied.value, odds_board(state))

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
