"""Builders for market tests."""

from __future__ import annotations

from oddstream.domain.fixedodds.commands import CreateMarket, PlaceBet
from oddstream.domain.fixedodds.events import MarketLimits, MoneyLine, Outcome
from oddstream.domain.fixedodds.market import MarketState, decide, evolve
from oddstream.domain.fixedodds.odds import Odds

PROVIDER = "feed-a"


def odds(text: str) -> Odds:
    return Odds.from_decimal(text)


def line(home: str = "2.10", away: str = "3.40", draw: str | None = "3.25") -> MoneyLine:
    return MoneyLine(
        home=odds(home), away=odds(away), draw=odds(draw) if draw is not None else None
    )


class Market:
    """A market driven through decide/evolve, remembering every event."""

    def __init__(
        self,
        money_line: MoneyLine | None = None,
        max_stake: int = 100_000,
        max_liability: int = 1_000_000,
        min_stake: int = 1,
        market_id: str = "m1",
    ) -> None:
        self.state = MarketState()
        self.events: list = []
        self.market_id = market_id
        self._bets = 0
        self.do(
            CreateMarket(
                market_id=market_id,
                game_id="g1",
                provider=PROVIDER,
                money_line=money_line or line(),
                limits=MarketLimits(
                    max_stake_cents=max_stake,
                    max_liability_cents=max_liability,
                    min_stake_cents=min_stake,
                ),
            )
        )

    def do(self, command) -> list:
        events = decide(self.state, command)
        for event in events:
            evolve(self.state, event)
        self.events.extend(events)
        return events

    def bet(
        self, outcome: Outcome, stake: int, price: Odds | str | None = None, wallet: str = "w1"
    ) -> str:
        """Place a bet at ``price`` (default: the current price); return its id."""
        self._bets += 1
        bet_id = f"b{self._bets}"
        asked = price if isinstance(price, Odds) else None
        if isinstance(price, str):
            asked = odds(price)
        self.do(
            PlaceBet(
                market_id=self.market_id,
                bet_id=bet_id,
                outcome=outcome,
                stake_cents=stake,
                price=asked or self.state.prices[outcome],
                wallet_id=wallet,
            )
        )
        return bet_id
