"""Money through the tote is conserved, whatever happens (hypothesis).

Random sequences of deposits, withdrawals, wallet bets, cancellations, scratches,
results, abandonments, crashes between the cashier's steps, restarts and full replays of
the cashier must keep, once the cashier has caught up:

    Σ wallet balances + Σ open stakes + takeout + breakage retained − minus-pool top-ups
        = Σ deposits − Σ withdrawals

(open stakes: reserved or in a pool, not yet settled), with every wallet bet settled
exactly once into its wallet and no balance ever negative.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oddstream.domain.tote.events import PoolConfig, Runner
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import (
    AbandonRace,
    CancelBet,
    CloseBetting,
    DeclareDividends,
    DeclareResult,
    OpenBetting,
    PlaceBet,
    ScheduleRace,
    ScratchRunner,
    ToteRejection,
)
from oddstream.domain.wallet import Credit, Debit, ReserveStake, WalletRejection
from oddstream.domain.wallet.events import Credited, Debited
from oddstream.eventstore import EventStore, open_store
from oddstream.runtime.cashier import CHECKPOINT, Cashier
from oddstream.runtime.codec import registry
from oddstream.runtime.race_writer import RaceWriter
from oddstream.runtime.wallet_writer import WalletWriter

WALLETS = ("w0", "w1", "w2")
RACES = ("r0", "r1")
RUNNERS = 5
POOLS = (PoolType.WIN, PoolType.PLACE, PoolType.EXACTA)


def schedule(race_id: str, profile: str) -> ScheduleRace:
    return ScheduleRace(
        race_id=race_id,
        meeting="Test",
        venue="Test",
        post_time="2026-11-21T15:00:00Z",
        runners=tuple(Runner(n, f"R{n}") for n in range(1, RUNNERS + 1)),
        pools=tuple(
            PoolConfig(
                pool=p,
                takeout_bps=1500,
                profile=profile,
                min_stake_cents=100,
                increment_cents=10,
                no_winner="refund",
            )
            for p in POOLS
        ),
    )


actions = st.lists(
    st.one_of(
        st.tuples(st.just("deposit"), st.sampled_from(WALLETS), st.integers(1, 20_000)),
        st.tuples(st.just("withdraw"), st.sampled_from(WALLETS), st.integers(1, 20_000)),
        st.tuples(
            st.just("bet"),
            st.sampled_from(WALLETS),
            st.sampled_from(RACES),
            st.sampled_from(POOLS),
            st.permutations(range(1, RUNNERS + 1)),
            st.integers(10, 300).map(lambda x: x * 10),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("scratch"), st.sampled_from(RACES), st.integers(1, RUNNERS)),
        st.tuples(
            st.just("finish"), st.sampled_from(RACES), st.permutations(range(1, RUNNERS + 1))
        ),
        st.tuples(st.just("abandon"), st.sampled_from(RACES)),
        st.tuples(st.just("crash"), st.sampled_from(WALLETS), st.sampled_from(RACES)),
        st.tuples(st.just("restart"), st.booleans()),
    ),
    max_size=30,
)


class World:
    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.bets: list[tuple[str, str]] = []  # (race, bet id)
        self.counter = 0

    async def start(self) -> None:
        self.races = RaceWriter(self.store)
        self.wallets = WalletWriter(self.store, snapshot_every=7)
        self.cashier = Cashier(self.store, self.races, self.wallets, stale_after=0.0)
        await self.cashier.start()

    async def restart(self, from_scratch: bool) -> None:
        await self.cashier.stop()
        if from_scratch:  # the checkpoint lost: the cashier follows the whole log again
            await self.store.save_checkpoint(CHECKPOINT, 0)
        await self.start()

    async def run(self, action: tuple) -> None:
        kind, *args = action
        with contextlib.suppress(ToteRejection, WalletRejection):
            match kind:
                case "deposit":
                    await self.wallets.execute(Credit(wallet_id=args[0], amount_cents=args[1]))
                case "withdraw":
                    await self.wallets.execute(Debit(wallet_id=args[0], amount_cents=args[1]))
                case "bet":
                    wallet, race, pool, order, stake = args
                    self.counter += 1
                    bet_id = f"b{self.counter}"
                    size = {PoolType.EXACTA: 2}.get(pool, 1)
                    await self.cashier.place_bet(
                        PlaceBet(
                            race_id=race,
                            bet_id=bet_id,
                            pool=pool,
                            selection=tuple(order[:size]),
                            stake_cents=stake,
                            wallet_id=wallet,
                        )
                    )
                    self.bets.append((race, bet_id))
                case "cancel":
                    if self.bets:
                        race, bet_id = self.bets[args[0] % len(self.bets)]
                        await self.races.execute(CancelBet(race, bet_id))
                case "scratch":
                    await self.races.execute(ScratchRunner(args[0], args[1]))
                case "finish":
                    race, order = args
                    with contextlib.suppress(ToteRejection):
                        await self.races.execute(CloseBetting(race))
                    state = await self.races.state(race)
                    live = [r for r in order if r not in state.scratched]
                    await self.races.execute(DeclareResult(race, tuple((r,) for r in live)))
                    await self.races.execute(DeclareDividends(race))
                case "abandon":
                    await self.races.execute(AbandonRace(race_id=args[0], reason="test"))
                case "crash":  # a stake reserved by a process that died before the race
                    wallet, race = args
                    self.counter += 1
                    await self.wallets.execute(
                        ReserveStake(
                            wallet_id=wallet,
                            bet_id=f"b{self.counter}",
                            book=f"race-{race}",
                            amount_cents=100,
                        )
                    )
                case "restart":
                    await self.restart(args[0])

    async def settle_everything(self) -> None:
        """Let the cashier catch up and sweep until no reservation is left open."""
        for _ in range(200):
            await self.cashier.sweep()
            head = await self.store.head_position()
            if (
                self.cashier.position >= await self._last_followed(head)
                and not self.cashier.open_reservations
            ):
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the cashier did not settle")

    async def _last_followed(self, head: int) -> int:
        events = await self.store.read_all(
            0,
            100_000,
            types=[
                "wallet.StakeReserved",
                "wallet.StakeCaptured",
                "wallet.StakeReleased",
                "wallet.WinningsCredited",
                "wallet.StakeRefunded",
                "wallet.StakeLost",
                "tote.BetSettled",
            ],
        )
        return events[-1].position if events else 0


async def ledger(store: EventStore) -> dict[str, int]:
    deposits = withdrawals = retained = 0
    settled: dict[str, int] = {}
    paid: dict[str, int] = {}
    async for recorded in store.scan_all():
        if recorded.type == "snapshot":
            continue
        event = registry.decode(recorded)
        if isinstance(event, Credited):
            deposits += event.amount_cents
        elif isinstance(event, Debited):
            withdrawals += event.amount_cents
        elif recorded.type == "tote.DividendsDeclared":
            for pool in event.pools:
                retained += pool.takeout_cents + pool.breakage_cents - pool.topup_cents
        elif recorded.type == "tote.BetSettled" and event.wallet_id:
            settled[event.bet_id] = settled.get(event.bet_id, 0) + 1
        elif recorded.type in (
            "wallet.WinningsCredited",
            "wallet.StakeRefunded",
            "wallet.StakeLost",
        ):
            paid[event.bet_id] = paid.get(event.bet_id, 0) + 1
    return {
        "deposits": deposits,
        "withdrawals": withdrawals,
        "retained": retained,
        "settled_once": int(all(n == 1 for n in settled.values())),
        "paid_once": int(paid == settled),
    }


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(profile=st.sampled_from(["us", "tabcorp"]), script=actions)
def test_money_is_conserved_through_the_tote(profile, script) -> None:
    async def scenario() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            store = await open_store(f"sqlite:///{Path(tmp) / 'm.db'}", synchronous="NORMAL")
            async with store:
                world = World(store)
                await world.start()
                for race in RACES:
                    await world.races.execute(schedule(race, profile))
                    await world.races.execute(OpenBetting(race))
                for wallet in WALLETS:
                    await world.wallets.execute(Credit(wallet_id=wallet, amount_cents=5_000))
                for action in script:
                    await world.run(action)
                await world.settle_everything()
                await world.cashier.stop()
                states = [await WalletWriter(store).state(w) for w in WALLETS]
                book = await ledger(store)
                assert all(s.balance >= 0 for s in states)
                assert book["settled_once"]
                assert book["paid_once"]
                held = sum(s.balance + s.in_play for s in states)
                assert held + book["retained"] == book["deposits"] - book["withdrawals"]

    asyncio.run(scenario())
