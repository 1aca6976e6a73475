"""``oddstream serve --demo``: a living tote to look at.

Keeps a few races going: each is scheduled with runners and the six pools, opened, bet
on by simulated bettors (favourites attract more money), closed after its time, resulted
(the winner drawn by the same hidden chances), paid, and replaced by a new race. Every
step goes through the same commands a client would send.

With a cashier, some of the bettors are the demo's customers (``DEMO_WALLETS``): their
stakes come out of their wallets and their winnings go back in, so balances move too.

With the quote tables on (``ODDSTREAM_QUOTE_TABLES_URL``; ``serve --demo`` sets it
beside an SQLite store's file when unset: :func:`demo_quote_tables_url`), the sample
quote journeys are posted through the quote ingest at start (:func:`post_sample_quotes`),
so the analysts' tables have something in them; a later start finds them repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .domain.tote.events import PoolConfig, Runner
from .domain.tote.pools import PoolType
from .domain.tote.race import (
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    OpenBetting,
    PlaceBet,
    ScheduleRace,
    ToteRejection,
)
from .domain.wallet import Credit, WalletRejection
from .eventstore import EventStore
from .eventstore.factory import sqlite_path
from .runtime.cashier import InsufficientFunds
from .runtime.ports import Races, WalletBets, Wallets

log = logging.getLogger(__name__)


async def keep_going(one: Callable[[], Awaitable[None]], start_after: float, what: str) -> None:
    """A demo lane: after ``start_after`` seconds, ``one()`` again and again for ever; one
    that fails is logged (``what``) and another started a second later."""
    await asyncio.sleep(start_after)
    while True:
        try:
            await one()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; starting another", what)
            await asyncio.sleep(1)


VENUES = ["Flemington", "Randwick", "Churchill Downs", "Saratoga", "Ascot", "Longchamp"]
NAMES = [
    "Silver Comet", "Midnight Tide", "Copper Kettle", "Northern Dancer II", "Blue Monsoon",
    "Lucky Lantern", "Quiet Riot", "Paper Tiger", "Desert Rose", "Iron Duke", "Harbour Lights",
    "Gold Standard", "Whistle Stop", "Rolling Thunder", "Jasmine Tea", "Captain Flint",
    "Velvet Hammer", "Morning Glory", "Red Admiral", "Storm Petrel", "Crimson Tide",
    "Black Caviar Jr", "Sea Biscuit", "Winter Solstice", "Dancing Brave", "Sky Lark",
    "Brass Monkey", "Cobalt Blue", "Wild Card", "Top Gun",
]  # fmt: skip
TAKEOUTS = {
    PoolType.WIN: 1500,
    PoolType.PLACE: 1500,
    PoolType.SHOW: 1500,
    PoolType.EXACTA: 2000,
    PoolType.QUINELLA: 2000,
    PoolType.TRIFECTA: 2500,
}
STAKES = [200, 200, 500, 500, 1000, 1000, 2000, 5000, 10000]
#: The demo's customers; each gets a wallet with ``DEMO_FLOAT_CENTS`` to start with.
DEMO_WALLETS = ("alice", "bob", "carol")
DEMO_FLOAT_CENTS = 500_00
WALLET_BET_SHARE = 0.2


class Demo:
    """Runs ``races`` concurrent races through their whole life, forever."""

    def __init__(
        self,
        writer: Races,
        *,
        bets_per_second: float,
        race_seconds: float,
        races: int = 4,
        seed: int | None = None,
        wallets: Wallets | None = None,
        cashier: WalletBets | None = None,
    ) -> None:
        self._writer = writer
        self._wallets = wallets
        self._cashier = cashier
        self._rate = max(0.1, bets_per_second)
        self._race_seconds = max(5.0, race_seconds)
        self._races = races
        self._rng = random.Random(seed)
        self._counter = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._wallets is not None:
            self._tasks.append(asyncio.create_task(self._fund(), name="demo-fund"))
        for lane in range(self._races):
            self._tasks.append(asyncio.create_task(self._lane(lane), name=f"demo-{lane}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _fund(self) -> None:
        """Give each demo customer a float when its wallet is new (a request id alone
        would not do: it is remembered for a window of events, and a restart of a busy
        demo comes after that window)."""
        assert self._wallets is not None
        for wallet in DEMO_WALLETS:
            if (await self._wallets.committed(wallet))[0].opened:
                continue
            await self._wallets.execute(
                Credit(wallet_id=wallet, amount_cents=DEMO_FLOAT_CENTS, reference="demo float"),
                request_id=f"demo-float:{wallet}",
            )

    async def _bet(self, command: PlaceBet) -> None:
        rng = self._rng
        if self._cashier is not None and rng.random() < WALLET_BET_SHARE:
            wallet = rng.choice(DEMO_WALLETS)
            command = PlaceBet(
                race_id=command.race_id,
                bet_id=command.bet_id,
                pool=command.pool,
                selection=command.selection,
                stake_cents=command.stake_cents,
                wallet_id=wallet,
            )
            try:
                await self._cashier.place_bet(command)
            except InsufficientFunds:  # the refusal is recorded; the customer tops up
                assert self._wallets is not None
                await self._wallets.execute(
                    Credit(wallet_id=wallet, amount_cents=DEMO_FLOAT_CENTS, reference="top-up")
                )
            except (ToteRejection, WalletRejection):
                pass
            return
        with contextlib.suppress(ToteRejection):
            await self._writer.execute(command)

    async def _lane(self, lane: int) -> None:
        # stagger the lanes so races close one after another
        await keep_going(self._one_race, lane * self._race_seconds / self._races / 3, "demo race")

    async def _one_race(self) -> None:
        rng = self._rng
        number = next(self._counter)
        race_id = f"demo-{uuid.uuid4().hex[:6]}-{number}"
        field_size = rng.randint(6, 12)
        names = rng.sample(NAMES, field_size)
        strength = [rng.lognormvariate(0, 0.7) for _ in range(field_size)]
        total = sum(strength)
        chances = [s / total for s in strength]
        post = datetime.now(UTC) + timedelta(seconds=self._race_seconds)
        venue = rng.choice(VENUES)
        await self._writer.execute(
            ScheduleRace(
                race_id=race_id,
                meeting=f"{venue} R{number}",
                venue=venue,
                post_time=post.isoformat(timespec="seconds"),
                runners=tuple(Runner(i + 1, n) for i, n in enumerate(names)),
                pools=tuple(
                    PoolConfig(pool=p, takeout_bps=t, profile="us", min_stake_cents=100)
                    for p, t in TAKEOUTS.items()
                ),
            )
        )
        await self._writer.execute(OpenBetting(race_id))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._race_seconds
        per_race_rate = self._rate / self._races
        runners = list(range(1, field_size + 1))
        while loop.time() < deadline:
            await asyncio.sleep(rng.expovariate(per_race_rate))
            pool = rng.choices(list(TAKEOUTS), weights=[50, 15, 10, 10, 10, 5])[0]
            size = pool.runners_per_selection
            picks: list[int] = []
            while len(picks) < size:
                pick = rng.choices(runners, weights=chances)[0]
                if pick not in picks:
                    picks.append(pick)
            await self._bet(
                PlaceBet(
                    race_id=race_id,
                    bet_id=uuid.uuid4().hex,
                    pool=pool,
                    selection=tuple(picks),
                    stake_cents=rng.choice(STAKES),
                )
            )
        await self._writer.execute(CloseBetting(race_id))
        await asyncio.sleep(3)
        order = _draw_order(rng, runners, chances)
        await self._writer.execute(DeclareResult(race_id, tuple((r,) for r in order)))
        await asyncio.sleep(2)
        await self._writer.execute(DeclareDividends(race_id))
        await asyncio.sleep(8)  # let people look at the result before the next race


def _draw_order(rng: random.Random, runners: list[int], chances: list[float]) -> list[int]:
    left = list(zip(runners, chances, strict=True))
    order = []
    while left:
        pick = rng.choices(range(len(left)), weights=[c for _, c in left])[0]
        order.append(left.pop(pick)[0])
    return order


def demo_quote_tables_url(store_url: str) -> str | None:
    """Where ``serve --demo`` writes the quote tables when ``ODDSTREAM_QUOTE_TABLES_URL``
    is unset: ``analytics.db`` beside an SQLite store's file (``data/oddstream.db`` →
    ``jdbc:sqlite:data/analytics.db``); ``None`` (no quote tables) for another store."""
    store_file = sqlite_path(store_url)
    if not store_file or store_file == ":memory:":
        return None
    return f"jdbc:sqlite:{Path(store_file).with_name('analytics.db')}"


async def post_sample_quotes(store: EventStore) -> dict[str, int]:
    """Post the sample quote journeys (:func:`~oddstream.sinks.quote_tables.sample_journeys`,
    the docs' data set) through the quote ingest, as a client would: counts by outcome
    (``stored`` the first time, ``repeated`` at each later start)."""
    from .application.quotes.ingest import QuoteIngest
    from .application.quotes.messages import Message
    from .domain.quotes.stored import wire_of_stored
    from .sinks.quote_tables.sample import sample_journeys

    messages = [
        Message(index, wire_of_stored(event.type, event.schema_version, event.data))
        for index, event in enumerate(sample_journeys())
    ]
    outcomes = await QuoteIngest(store).ingest(messages, via="demo")
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts
