"""The live odds board of every race, as a projection of the log.

It follows ``race-*`` streams from the start (an in-memory read model: rebuilt by replay
whenever the process starts) and keeps each race's state. A board is always returned with
the global position it includes: every event up to that position, none after.
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec

from ..domain.tote.board import OddsBoard, odds_board
from ..domain.tote.race import RaceState, evolve
from ..eventstore import EventStore, StoreClosed
from ..eventstore.registry import EventRegistry
from ..runtime.codec import registry as default_registry
from ..runtime.race_writer import RACE_STREAM_PREFIX


class BoardView(msgspec.Struct, frozen=True):
    """A board and the log position it reflects."""

    position: int
    board: OddsBoard


class OddsBoardProjection:
    """Follows the log; ``board(race_id)`` answers from memory, never a step behind."""

    def __init__(self, store: EventStore, registry: EventRegistry | None = None) -> None:
        self._store = store
        self._registry = registry or default_registry
        self._races: dict[str, RaceState] = {}
        self._position = 0
        self._advanced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def position(self) -> int:
        """The last global position applied."""
        return self._position

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="odds-board-projection")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreClosed):
                await self._task
            self._task = None

    async def _run(self) -> None:
        async for recorded in self._store.subscribe_all(
            after=self._position, stream_prefix=RACE_STREAM_PREFIX
        ):
            race_id = recorded.stream_id[len(RACE_STREAM_PREFIX) :]
            state = self._races.get(race_id)
            if state is None:
                state = self._races[race_id] = RaceState()
            evolve(state, self._registry.decode(recorded))  # type: ignore[arg-type]
            self._position = recorded.position
            event, self._advanced = self._advanced, asyncio.Event()
            event.set()

    async def wait_for(self, position: int, timeout: float) -> bool:
        """Wait until the projection has applied ``position``; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._position < position:
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._advanced.wait(), left)
        return True

    def races(self) -> list[str]:
        return sorted(self._races)

    def race(self, race_id: str) -> RaceState | None:
        return self._races.get(race_id)

    def board(self, race_id: str) -> BoardView | None:
        """The race's board with the position it includes, or None for an unknown race."""
        state = self._races.get(race_id)
        if state is None:
            return None
        return BoardView(self._position, odds_board(state))
