"""``oddstream serve --demo``: fixed-odds markets to look at (the page ``/markets``).

Keeps a few football money lines going: each market is created with prices from hidden
chances (the book's overround on top), repriced every few seconds as the chances drift
(``high`` velocity), closed after its time, resulted (the winner drawn by the same
chances) and replaced by a new one. Every step goes through the market writer, as a
provider's command over HTTP does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import uuid
from decimal import Decimal

from .demo import keep_going
from .domain.fixedodds import (
    CloseMarket,
    CreateMarket,
    MarketCommand,
    MarketLimits,
    MoneyLine,
    Odds,
    Outcome,
    ResultMarket,
    UpdatePrices,
)
from .runtime.market_writer import MarketRequest
from .runtime.ports import Markets
from .velocity.channels import Velocity

log = logging.getLogger(__name__)

#: the provider the demo's markets belong to
DEMO_PROVIDER = "demo"
TEAMS = [
    "Harbour City", "Northbridge", "Red Lions", "Old Quarry", "Kingsway", "Riverside",
    "Blue Anchors", "Hillcrest", "Ironworks", "Marsh Rovers", "Castle Vale", "Seaview",
]  # fmt: skip
#: the book's margin on each market: prices are 1 / (chance × OVERROUND)
OVERROUND = 1.06
LIMITS = MarketLimits(max_stake_cents=100_000, max_liability_cents=10_000_000)


def prices_of(chances: dict[Outcome, float]) -> MoneyLine:
    """Decimal prices for ``chances`` with the book's margin, to two places (at least
    1.01, at most 100: what a real book quotes)."""

    def price(chance: float) -> Odds:
        value = min(100.0, max(1.01, 1 / (chance * OVERROUND)))
        return Odds.from_decimal(Decimal(f"{value:.2f}"))

    return MoneyLine(
        home=price(chances[Outcome.HOME]),
        away=price(chances[Outcome.AWAY]),
        draw=price(chances[Outcome.DRAW]),
    )


class MarketDemo:
    """Runs ``markets`` concurrent markets through their whole life, forever."""

    def __init__(
        self,
        writer: Markets,
        *,
        market_seconds: float,
        markets: int = 4,
        seed: int | None = None,
    ) -> None:
        self._writer = writer
        self._seconds = max(10.0, market_seconds)
        self._markets = markets
        self._rng = random.Random(seed)
        self._counter = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for lane in range(self._markets):
            self._tasks.append(asyncio.create_task(self._lane(lane), name=f"demo-market-{lane}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _send(self, command: MarketCommand, game_id: str, velocity: Velocity) -> None:
        action = type(command).__name__
        await self._writer.execute(
            MarketRequest(action=action, command=command, game_id=game_id, velocity=velocity)
        )

    async def _lane(self, lane: int) -> None:
        await keep_going(self._one_market, lane * self._seconds / self._markets / 3, "demo market")

    async def _one_market(self) -> None:
        rng = self._rng
        number = next(self._counter)
        home, away = rng.sample(TEAMS, 2)
        slug = f"{home}-v-{away}".lower().replace(" ", "-")
        game_id = f"football:demo-{number}-{slug}"
        market_id = str(uuid.uuid4())
        strength = {Outcome.HOME: rng.uniform(0.8, 2.5), Outcome.AWAY: rng.uniform(0.6, 2.0)}
        strength[Outcome.DRAW] = rng.uniform(0.6, 1.0)

        def chances() -> dict[Outcome, float]:
            total = sum(strength.values())
            return {outcome: s / total for outcome, s in strength.items()}

        await self._send(
            CreateMarket(
                market_id=market_id,
                game_id=game_id,
                provider=DEMO_PROVIDER,
                money_line=prices_of(chances()),
                limits=LIMITS,
            ),
            game_id,
            "medium",
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._seconds
        while loop.time() < deadline:
            await asyncio.sleep(rng.uniform(1.0, 4.0))
            moved = rng.choice(list(strength))
            strength[moved] *= rng.uniform(0.85, 1.18)
            await self._send(
                UpdatePrices(
                    market_id=market_id, provider=DEMO_PROVIDER, money_line=prices_of(chances())
                ),
                game_id,
                "high",
            )
        await self._send(CloseMarket(market_id=market_id, provider=DEMO_PROVIDER), game_id, "low")
        await asyncio.sleep(3)
        final = chances()
        winner = rng.choices(list(final), weights=list(final.values()))[0]
        await self._send(
            ResultMarket(market_id=market_id, provider=DEMO_PROVIDER, winners=(winner,)),
            game_id,
            "low",
        )
