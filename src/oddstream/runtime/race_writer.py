"""The single writer of each race: race commands in, events appended to ``race-<id>``.

A :class:`~.writer.AggregateWriter` for the tote's race aggregate (see ``writer.py`` for
batching, idempotent request ids and conflict handling).
"""

from __future__ import annotations

from collections.abc import Callable

from ..domain.tote.race import RaceCommand, RaceState, ToteRejection, decide, evolve
from ..eventstore import EventStore
from ..eventstore.registry import EventRegistry
from .codec import registry as default_registry
from .writer import REQUEST_ID, AggregateSpec, AggregateWriter, CommandOutcome

RACE_STREAM_PREFIX = "race-"

__all__ = ["RACE_STREAM_PREFIX", "REQUEST_ID", "CommandOutcome", "RaceWriter", "race_stream"]


def race_stream(race_id: str) -> str:
    return f"{RACE_STREAM_PREFIX}{race_id}"


def _initial(race_id: str) -> RaceState:
    state = RaceState()
    state.race_id = race_id
    return state


def _conflict(race_id: str) -> ToteRejection:
    return ToteRejection("conflict", f"race {race_id} is being written elsewhere")


RACES: AggregateSpec[RaceState, RaceCommand] = AggregateSpec(
    prefix=RACE_STREAM_PREFIX,
    key=lambda command: command.race_id,
    initial=_initial,
    decide=decide,
    evolve=evolve,
    conflict=_conflict,
    # a race's state holds every bet of it: keep fewer than the default in memory;
    # a race's stream ends, so its answers are kept whole while it is loaded
    max_cached=256,
    keep_all_answers=True,
)


class RaceWriter(AggregateWriter[RaceState, RaceCommand]):
    """Executes race commands; one writer per race in this process."""

    def __init__(
        self,
        store: EventStore,
        registry: EventRegistry | None = None,
        *,
        on_append: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(store, RACES, registry or default_registry, on_append=on_append)

    async def bet_wallet(self, race_id: str, bet_id: str) -> str | None:
        """The wallet the race holds bet ``bet_id`` for (``""`` for a cash bet), or
        ``None`` if it holds no such bet — as stored: once the race's commands taken so
        far are decided and stored (or failed). The sweep captures or releases a stake
        on this answer; in services mode the wallet's owner may have stopped waiting
        for the bet (its deadline) while it is still being appended, or queued. A "no
        such bet" is the log's, never a stale copy's (:meth:`holding`)."""
        state = await self.holding(race_id, lambda race: bet_id in race.bets)
        bet = state.bets.get(bet_id)
        if bet is None:
            return None
        return bet.wallet_id or ""
