"""Bets on fixed-odds markets paid from wallets: reserve → place → capture or release,
settlements paid once, crashes at every step recovered by the sweep, the races' and the
markets' cashiers apart, and money conserved (wallets + book) on every store."""

from __future__ import annotations

import contextlib
import math
import random
from fractions import Fraction

import pytest

from oddstream.domain.fixedodds import (
    CloseMarket,
    CreateMarket,
    FixedOddsRejection,
    MarketLimits,
    MoneyLine,
    Odds,
    Outcome,
    PlaceBet,
    ResultMarket,
    ResumeMarket,
    SuspendMarket,
    UpdatePrices,
    VoidMarket,
)
from oddstream.domain.fixedodds.events import BetAccepted
from oddstream.domain.wallet import Credit, ReserveStake
from oddstream.eventstore import EventStore
from oddstream.runtime.cashier import Cashier, InsufficientFunds, wallet_bet_request_id
from oddstream.runtime.market_cashier import CHECKPOINT, MarketBets, MarketCashier, bet_request
from oddstream.runtime.market_writer import MarketRequest, MarketWriter
from oddstream.runtime.race_writer import RaceWriter
from oddstream.runtime.wallet_writer import WalletWriter
from oddstream.runtime.writer import RequestIdReused

from .wallet_helpers import until

P = "acme"
LINE = MoneyLine(home=Odds.from_decimal("1.91"), away=Odds.from_decimal("2.10"))
THREE_WAY = MoneyLine(
    home=Odds.from_decimal("2.5"), away=Odds.from_fractional("8/13"), draw=Odds.exact(3)
)
LIMITS = MarketLimits(max_stake_cents=100_000, max_liability_cents=10_000_000)


async def market(writer: MarketWriter, market_id: str, line: MoneyLine = LINE) -> None:
    create = CreateMarket(
        market_id=market_id, game_id=f"g-{market_id}", provider=P, money_line=line, limits=LIMITS
    )
    await writer.execute(MarketRequest(action="NewOdds", command=create))


async def provider(writer: MarketWriter, command) -> None:
    await writer.execute(MarketRequest(action=type(command).__name__, command=command))


def bet(market_id: str, bet_id: str, stake: int, price: str, outcome=Outcome.HOME, wallet="w1"):
    return PlaceBet(
        market_id=market_id,
        bet_id=bet_id,
        outcome=outcome,
        stake_cents=stake,
        price=Odds.from_decimal(price),
        wallet_id=wallet,
    )


class Rig:
    def __init__(self, store: EventStore, **kw: float) -> None:
        self.store = store
        self.markets = MarketWriter(store)
        self.wallets = WalletWriter(store)
        self.cashier = MarketCashier(store, MarketBets(self.markets), self.wallets, **kw)

    async def money(self, wallet: str = "w1") -> tuple[int, int]:
        state = await self.wallets.state(wallet)
        return state.balance, state.in_play

    async def caught_up(self) -> bool:
        head = await self.store.head_position()
        return await until(lambda: _past(self.cashier, head))


async def _past(cashier: MarketCashier | Cashier, head: int) -> bool:
    return cashier.position >= head


@pytest.fixture
async def rig(store: EventStore):
    r = Rig(store, stale_after=0.0, sweep_every=3600)
    await r.wallets.execute(Credit(wallet_id="w1", amount_cents=10_000))
    await market(r.markets, "m1")
    await r.cashier.start()
    try:
        yield r
    finally:
        await r.cashier.stop()


async def test_an_accepted_bet_is_captured_and_a_win_paid_once(rig: Rig) -> None:
    outcome = await rig.cashier.place_bet(bet("m1", "w1~b1", 1_000, "1.90"))
    (accepted,) = outcome.events
    assert isinstance(accepted, BetAccepted)
    assert accepted.price == Odds.from_decimal("1.91")  # the current price, better than asked
    assert await rig.money() == (9_000, 1_000)
    state = await rig.wallets.state("w1")
    assert state.staked == {("market-m1", "w1~b1"): 1_000}
    await provider(rig.markets, CloseMarket(market_id="m1", provider=P))
    await provider(rig.markets, ResultMarket(market_id="m1", provider=P, winners=(Outcome.HOME,)))
    assert await rig.caught_up()
    assert await rig.money() == (9_000 + 1_910, 0)
    # the settlements seen again (a replay from the start) pay nothing twice
    await rig.cashier.stop()
    await rig.store.save_checkpoint(CHECKPOINT, 0)
    await rig.cashier.start()
    assert await rig.caught_up()
    assert await rig.money() == (10_910, 0)


@pytest.mark.parametrize(
    ("setup", "price", "code"),
    [
        (None, "1.95", "price_worse"),
        (SuspendMarket(market_id="m1", provider=P), "1.5", "market_suspended"),
        (CloseMarket(market_id="m1", provider=P), "1.5", "market_closed"),
        (None, "1.5", "stake_limit"),
    ],
)
async def test_a_refused_bet_releases_its_stake(rig: Rig, setup, price, code) -> None:
    if setup is not None:
        await provider(rig.markets, setup)
    stake = 200_000 if code == "stake_limit" else 1_000
    await rig.wallets.execute(Credit(wallet_id="w1", amount_cents=200_000))
    with pytest.raises(FixedOddsRejection) as refused:
        await rig.cashier.place_bet(bet("m1", "w1~b1", stake, price))
    assert refused.value.code == code
    assert await rig.money() == (210_000, 0)
    released = (await rig.store.read_stream("wallet-w1"))[-1]
    assert released.type == "wallet.StakeReleased"
    assert released.data["reason"] == code
    assert released.data["book"] == "market-m1"
    assert (await rig.markets.state("m1")).bets == {}


async def test_a_short_balance_never_reaches_the_market(rig: Rig) -> None:
    with pytest.raises(InsufficientFunds):
        await rig.cashier.place_bet(bet("m1", "w1~b1", 10_001, "1.5"))
    assert await rig.money() == (10_000, 0)
    assert (await rig.markets.state("m1")).bets == {}


async def test_void_returns_stakes_and_a_dead_heat_divides_them(rig: Rig) -> None:
    await market(rig.markets, "m3", THREE_WAY)
    await rig.cashier.place_bet(bet("m3", "w1~h", 1_001, "2.5", Outcome.HOME))
    await rig.cashier.place_bet(bet("m3", "w1~d", 1_001, "3", Outcome.DRAW))
    a13 = PlaceBet(
        market_id="m3",
        bet_id="w1~a",
        outcome=Outcome.AWAY,
        stake_cents=1_300,
        price=Odds.from_fractional("8/13"),
        wallet_id="w1",
    )
    await rig.cashier.place_bet(a13)
    await rig.cashier.place_bet(bet("m1", "w1~v", 500, "1.91"))
    assert await rig.money() == (10_000 - 3_802, 3_802)
    await provider(rig.markets, CloseMarket(market_id="m3", provider=P))
    await provider(
        rig.markets,
        ResultMarket(market_id="m3", provider=P, winners=(Outcome.HOME, Outcome.DRAW)),
    )
    await provider(rig.markets, VoidMarket(market_id="m1", provider=P, reason="abandoned"))
    assert await rig.caught_up()
    # dead heat of two: ⌊1001 × 2.5 / 2⌋ = 1251 and ⌊1001 × 3 / 2⌋ = 1501; away lost;
    # the void returns 500 exactly
    assert await rig.money() == (10_000 - 3_802 + 1_251 + 1_501 + 500, 0)
    settled = {
        e.data["bet_id"]: (e.type, e.data.get("reason"))
        for e in await rig.store.read_stream("wallet-w1")
        if e.type in ("wallet.WinningsCredited", "wallet.StakeRefunded", "wallet.StakeLost")
    }
    assert settled == {
        "w1~h": ("wallet.WinningsCredited", None),
        "w1~d": ("wallet.WinningsCredited", None),
        "w1~a": ("wallet.StakeLost", None),
        "w1~v": ("wallet.StakeRefunded", "void"),
    }


async def test_a_retry_answers_without_moving_money_and_a_changed_one_is_refused(
    rig: Rig,
) -> None:
    first = await rig.cashier.place_bet(bet("m1", "w1~b1", 1_000, "1.5"))
    again = await rig.cashier.place_bet(bet("m1", "w1~b1", 1_000, "1.5"))
    assert again.repeated
    assert again.events == first.events
    with pytest.raises(RequestIdReused):
        await rig.cashier.place_bet(bet("m1", "w1~b1", 2_000, "1.5"))
    assert await rig.money() == (9_000, 1_000)
    # a late retry after settlement answers the original, and does not stake again
    await provider(rig.markets, VoidMarket(market_id="m1", provider=P, reason="x"))
    assert await rig.caught_up()
    late = await rig.cashier.place_bet(bet("m1", "w1~b1", 1_000, "1.5"))
    assert late.repeated
    assert await rig.money() == (10_000, 0)


async def test_a_crash_before_the_market_saw_the_bet_is_released_by_the_sweep(rig: Rig) -> None:
    await rig.wallets.execute(
        ReserveStake(wallet_id="w1", bet_id="w1~lost", book="market-m1", amount_cents=700)
    )
    assert await rig.caught_up()
    assert rig.cashier.open_reservations == 1
    assert await rig.cashier.sweep() == 1
    assert await rig.money() == (10_000, 0)
    last = (await rig.store.read_stream("wallet-w1"))[-1]
    assert last.type == "wallet.StakeReleased"
    assert last.data["reason"] == "not_placed"


async def test_a_crash_after_the_market_took_the_bet_is_captured_and_paid(rig: Rig) -> None:
    command = bet("m1", "w1~b1", 1_000, "1.5")
    await rig.wallets.execute(
        ReserveStake(wallet_id="w1", bet_id="w1~b1", book="market-m1", amount_cents=1_000)
    )
    await rig.markets.execute(bet_request(command), request_id=wallet_bet_request_id("w1", "w1~b1"))
    # the process died here, before the capture: a new cashier finds it in the log
    await rig.cashier.stop()
    cashier = MarketCashier(
        rig.store, MarketBets(MarketWriter(rig.store)), WalletWriter(rig.store), stale_after=0.0
    )
    rig.cashier = cashier
    await cashier.start()
    assert await rig.caught_up()
    assert cashier.open_reservations == 1
    assert await cashier.sweep() == 1
    fresh = await WalletWriter(rig.store).state("w1")
    assert fresh.staked == {("market-m1", "w1~b1"): 1_000}
    assert fresh.reserved == {}
    # a retry of the bet now answers the market's original, nothing moves
    again = await cashier.place_bet(command)
    assert again.repeated
    await provider(rig.markets, CloseMarket(market_id="m1", provider=P))
    await provider(rig.markets, ResultMarket(market_id="m1", provider=P, winners=(Outcome.HOME,)))
    assert await rig.caught_up()
    paid = await WalletWriter(rig.store).state("w1")
    assert (paid.balance, paid.in_play) == (9_000 + 1_910, 0)


async def test_the_races_and_the_markets_cashiers_leave_each_other_alone(store: EventStore) -> None:
    wallets = WalletWriter(store)
    await wallets.execute(Credit(wallet_id="w1", amount_cents=10_000))
    tote = Cashier(store, RaceWriter(store), wallets, stale_after=0.0, sweep_every=3600)
    markets = MarketCashier(
        store, MarketBets(MarketWriter(store)), wallets, stale_after=0.0, sweep_every=3600
    )
    await tote.start()
    await markets.start()
    try:
        await wallets.execute(
            ReserveStake(wallet_id="w1", bet_id="x", book="market-m9", amount_cents=100)
        )
        await wallets.execute(
            ReserveStake(wallet_id="w1", bet_id="x", book="race-r9", amount_cents=200)
        )
        head = await store.head_position()
        assert await until(lambda: _past(tote, head))
        assert await until(lambda: _past(markets, head))
        assert (tote.open_reservations, markets.open_reservations) == (1, 1)
        assert await tote.sweep() == 1
        state = await wallets.state("w1")
        assert state.reserved == {("market-m9", "x"): 100}
        assert await markets.sweep() == 1
        assert (await wallets.state("w1")).reserved == {}
    finally:
        await tote.stop()
        await markets.stop()


@pytest.mark.parametrize("seed", range(3))
async def test_money_is_conserved_through_wallets_and_books(store: EventStore, seed: int) -> None:
    """Random bets from three wallets on two markets whose prices move, with suspensions,
    refusals, crashes between reservation and capture, then results or voids: at every
    step the wallets' balances and reservations plus what the books hold equal the
    deposits; at the end nothing is in play."""
    rng = random.Random(seed)
    r = Rig(store, stale_after=0.0, sweep_every=3600)
    wallets = ("w1", "w2", "w3")
    deposits = 0
    deposited: dict[str, int] = {}
    for w in wallets:
        amount = rng.randint(5_000, 50_000)
        deposits += amount
        deposited[w] = amount
        await r.wallets.execute(Credit(wallet_id=w, amount_cents=amount))
    await market(r.markets, "ma", LINE)
    await market(r.markets, "mb", THREE_WAY)
    await r.cashier.start()
    prices = ["1.01", "1.5", "1.91", "2", "2.1", "2.5", "3.2"]
    try:
        for n in range(60):
            m = rng.choice(["ma", "mb"])
            w = rng.choice(wallets)
            roll = rng.random()
            if roll < 0.1:
                line = MoneyLine(
                    home=Odds.from_decimal(rng.choice(prices[1:])),
                    away=Odds.from_decimal(rng.choice(prices[1:])),
                    draw=None if m == "ma" else Odds.from_decimal(rng.choice(prices[1:])),
                )
                await provider(r.markets, UpdatePrices(market_id=m, provider=P, money_line=line))
            elif roll < 0.15:
                try:
                    await provider(r.markets, SuspendMarket(market_id=m, provider=P))
                except FixedOddsRejection:
                    await provider(r.markets, ResumeMarket(market_id=m, provider=P))
            elif roll < 0.22:  # a crash after the reservation
                await r.wallets.execute(
                    ReserveStake(
                        wallet_id=w, bet_id=f"{w}~c{n}", book=f"market-{m}", amount_cents=100
                    )
                )
                if rng.random() < 0.5:  # ... and after the market took it
                    await r.markets.execute(
                        bet_request(bet(m, f"{w}~c{n}", 100, "1.01", wallet=w)),
                        request_id=wallet_bet_request_id(w, f"{w}~c{n}"),
                    )
            else:
                outcome = rng.choice([Outcome.HOME, Outcome.AWAY])
                stake = rng.choice([1, 99, 1_000, 3_333, 20_000, 60_000])
                with contextlib.suppress(FixedOddsRejection, InsufficientFunds):
                    await r.cashier.place_bet(
                        bet(m, f"{w}~b{n}", stake, rng.choice(prices), outcome, wallet=w)
                    )
            await check_conserved(r, wallets, deposits)
        assert await r.caught_up()
        await r.cashier.sweep()
        await check_conserved(r, wallets, deposits)
        results: dict[str, tuple[Outcome, ...] | None] = {}  # None: voided
        for m in ("ma", "mb"):
            state = await r.markets.state(m)
            if state.status.value == "suspended" or rng.random() < 0.7:
                await provider(r.markets, CloseMarket(market_id=m, provider=P))
                winners = rng.choice(
                    [(Outcome.HOME,), (Outcome.AWAY,), (Outcome.HOME, Outcome.AWAY)]
                )
                await provider(r.markets, ResultMarket(market_id=m, provider=P, winners=winners))
                results[m] = winners
            else:
                await provider(r.markets, VoidMarket(market_id=m, provider=P, reason="x"))
                results[m] = None
        assert await r.caught_up()
        await check_conserved(r, wallets, deposits)
        # an oracle of its own: each wallet ends with its deposit, less the stakes the
        # markets took, plus ⌊stake × the price taken / the tied⌋ of each winner (exact
        # fractions) and each voided stake
        expected = dict(deposited)
        for m, winners in results.items():
            for e in await store.read_stream(f"market-{m}"):
                if e.type != "fixedodds.BetAccepted":
                    continue
                d = e.data
                stake, w = d["stake_cents"], d["wallet_id"]
                expected[w] -= stake
                if winners is None:
                    expected[w] += stake
                elif d["outcome"] in winners:
                    price = Fraction(d["price"]["num"], d["price"]["den"])
                    expected[w] += math.floor(stake * price / len(winners))
        for w in wallets:
            state = await WalletWriter(store).state(w)
            assert (state.balance, state.in_play) == (expected[w], 0)
    finally:
        await r.cashier.stop()


async def check_conserved(r: Rig, wallets: tuple[str, ...], deposits: int) -> None:
    """Σ balances + Σ stakes reserved that no book took yet + what the books hold
    (stakes taken less payouts and refunds) == Σ deposits. (A stake reserved and taken
    by the market, its capture not yet recorded — a crash in between — is the book's.)"""
    book = 0
    taken: set[tuple[str, str]] = set()
    for m in ("ma", "mb"):
        for e in await r.store.read_stream(f"market-{m}"):
            if e.type == "fixedodds.BetAccepted":
                book += e.data["stake_cents"]
                taken.add((f"market-{m}", e.data["bet_id"]))
            elif e.type == "fixedodds.BetSettled":
                book -= e.data["payout_cents"] + e.data["refund_cents"]
    held = 0
    for w in wallets:
        state = await WalletWriter(r.store).state(w)
        held += state.balance + sum(v for k, v in state.reserved.items() if k not in taken)
    assert held + book == deposits


class _StaleRecall(MarketBets):
    """A market's owner answering recalls from a deposed copy (services mode, for a
    moment): it has never seen the bet's request id, though the log holds it."""

    async def recall(self, command, request_id, legacy_ids=()):  # type: ignore[no-untyped-def]
        return None


async def test_a_changed_retry_does_not_release_a_reservation_it_did_not_make(
    store: EventStore,
) -> None:
    """Regression (review): a crash left bet b1's reservation open after the market took
    it; a retry of b1 with another stake, whose recall was answered from stale memory,
    reached the market, which refused it (``request_id_reused``) — and the cashier
    released b1's stake though this call had not reserved it: the market held a bet the
    wallet no longer paid for. A refusal now releases only what this call reserved; the
    open reservation is the sweep's, which captures it (the market holds the bet)."""
    r = Rig(store, stale_after=0.0, sweep_every=3600)
    await r.wallets.execute(Credit(wallet_id="w1", amount_cents=10_000))
    await market(r.markets, "m1")
    command = bet("m1", "w1~b1", 1_000, "1.5")
    await r.wallets.execute(
        ReserveStake(wallet_id="w1", bet_id="w1~b1", book="market-m1", amount_cents=1_000)
    )
    await r.markets.execute(bet_request(command), request_id=wallet_bet_request_id("w1", "w1~b1"))
    r.cashier = MarketCashier(
        store, _StaleRecall(r.markets), r.wallets, stale_after=0.0, sweep_every=3600
    )
    await r.cashier.start()
    try:
        with pytest.raises(RequestIdReused):
            await r.cashier.place_bet(bet("m1", "w1~b1", 1_000, "1.8"))
        state = await r.wallets.state("w1")
        assert state.reserved == {("market-m1", "w1~b1"): 1_000}  # still open: not released
        assert await r.caught_up()
        assert await r.cashier.sweep() == 1
        state = await r.wallets.state("w1")
        assert state.staked == {("market-m1", "w1~b1"): 1_000}
        assert (state.balance, state.in_play) == (9_000, 1_000)
    finally:
        await r.cashier.stop()
