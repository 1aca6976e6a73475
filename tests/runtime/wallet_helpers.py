"""Builders shared by the wallet and cashier tests: a small race, bets, a running
cashier, and polling for what a background follower does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from oddstream.domain.tote.events import PoolConfig, Runner
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import (
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    OpenBetting,
    PlaceBet,
    ScheduleRace,
)
from oddstream.eventstore import EventStore
from oddstream.runtime.cashier import Cashier
from oddstream.runtime.race_writer import RaceWriter
from oddstream.runtime.wallet_writer import WalletWriter

WIN = PoolType.WIN


def schedule(race_id: str, runners: int = 4) -> ScheduleRace:
    """A race with ``runners`` runners and a WIN pool (15% takeout, tabcorp)."""
    return ScheduleRace(
        race_id=race_id,
        meeting="Flemington",
        venue="Flemington",
        post_time="2026-11-21T15:00:00+11:00",
        runners=tuple(Runner(n, f"Runner {n}") for n in range(1, runners + 1)),
        pools=(PoolConfig(pool=WIN, takeout_bps=1500, profile="tabcorp"),),
    )


def bet(race_id: str, bet_id: str, runner: int, stake: int, wallet: str | None) -> PlaceBet:
    """A WIN bet, from ``wallet`` (``None``: a cash bet)."""
    return PlaceBet(
        race_id=race_id,
        bet_id=bet_id,
        pool=WIN,
        selection=(runner,),
        stake_cents=stake,
        wallet_id=wallet,
    )


async def open_race(races: RaceWriter, race_id: str) -> None:
    await races.execute(schedule(race_id))
    await races.execute(OpenBetting(race_id))


async def settle(races: RaceWriter, race_id: str, winner: int) -> None:
    """Close, result (``winner`` first) and pay a race of four runners."""
    await races.execute(CloseBetting(race_id))
    await races.execute(DeclareResult(race_id, ((winner,), (winner % 4 + 1,), (winner % 4 + 2,))))
    await races.execute(DeclareDividends(race_id))


async def balance(wallets: WalletWriter, wallet: str) -> tuple[int, int]:
    """``(balance, in play)`` of a wallet as its writer holds it."""
    state = await wallets.state(wallet)
    return state.balance, state.in_play


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> bool:
    """Whether ``predicate`` came true within ``timeout`` (polled: it reads the store)."""
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():  # noqa: ASYNC110 - polls the store, not an event
                await asyncio.sleep(0.01)
    except TimeoutError:
        return False
    return True


async def started(store: EventStore, **kw: float) -> tuple[RaceWriter, WalletWriter, Cashier]:
    """Writers and a started cashier on ``store``."""
    races, wallets = RaceWriter(store), WalletWriter(store)
    cashier = Cashier(store, races, wallets, **kw)
    await cashier.start()
    return races, wallets, cashier
