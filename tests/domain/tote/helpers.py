"""Builders for race tests."""

from __future__ import annotations

from oddstream.domain.tote.events import PoolConfig, Runner
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import (
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    OpenBetting,
    PlaceBet,
    RaceState,
    ScheduleRace,
    decide,
    evolve,
)

ALL_POOLS = tuple(PoolType)


class Race:
    """A race driven through decide/evolve, remembering every event."""

    def __init__(
        self,
        runners: int = 8,
        pools: tuple[PoolType, ...] = ALL_POOLS,
        profile: str = "us",
        takeout_bps: int = 0,
        min_stake: int = 100,
        increment: int = 10,
        race_id: str = "r1",
        no_winner: str | None = None,
        open_betting: bool = True,
        contributions_from: str | None = None,
    ) -> None:
        self.state = RaceState()
        self.events: list = []
        self.race_id = race_id
        self._bets = 0
        self.do(
            ScheduleRace(
                race_id=race_id,
                meeting="Flemington",
                venue="Flemington",
                post_time="2026-11-21T14:00:00+11:00",
                runners=tuple(Runner(n, f"Horse {n}") for n in range(1, runners + 1)),
                pools=tuple(
                    PoolConfig(
                        pool=p,
                        takeout_bps=takeout_bps,
                        profile=profile,
                        min_stake_cents=min_stake,
                        increment_cents=increment,
                        no_winner=no_winner,
                    )
                    for p in pools
                ),
                contributions_from=contributions_from,
            )
        )
        if open_betting:
            self.do(OpenBetting(race_id))

    def do(self, command) -> list:
        new = decide(self.state, command)
        for event in new:
            evolve(self.state, event)
        self.events += new
        return new

    def bet(self, pool: PoolType, selection, stake_cents: int, bet_id: str | None = None) -> str:
        self._bets += 1
        bet_id = bet_id or f"b{self._bets}"
        if isinstance(selection, int):
            selection = (selection,)
        self.do(
            PlaceBet(
                race_id=self.race_id,
                bet_id=bet_id,
                pool=pool,
                selection=tuple(selection),
                stake_cents=stake_cents,
            )
        )
        return bet_id

    def finish(self, *placings) -> list:
        """Close, declare ``placings`` (ints or tuples for dead heats) and dividends."""
        self.do(CloseBetting(self.race_id))
        groups = tuple((p,) if isinstance(p, int) else tuple(p) for p in placings)
        self.do(DeclareResult(self.race_id, groups))
        return self.do(DeclareDividends(self.race_id))

    def settlements(self) -> dict:
        from oddstream.domain.tote.events import BetSettled

        return {e.bet_id: e for e in self.events if isinstance(e, BetSettled)}

    def declared(self, pool: PoolType):
        from oddstream.domain.tote.events import DividendsDeclared

        (decl,) = [e for e in self.events if isinstance(e, DividendsDeclared)]
        return next(p for p in decl.pools if p.pool is pool)
