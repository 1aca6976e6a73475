"""The sweep's read of a book, on a deposed owner: never a release on a stale state.

The fence (``tests/cluster/test_fence.py``) stops a deposed owner's stale *append*. The
sweep's question to a book's owner — does it hold bet B for wallet W? — appends nothing
to the book, but its answer decides an append to the *wallet*: "no" releases the stake.
While ownership overlaps, the old owner (its state in memory from before the move) may
be asked, and the new owner may have taken the bet meanwhile: a "no" from memory would
release the stake of a bet the book holds (the stake then counted both in the wallet
and in the book: money not conserved, and the settlement pays nothing into the wallet).
Each test plays that moment with two writers on one PostgreSQL store, as
``test_fence.py`` does.
"""

from __future__ import annotations

from oddstream.domain.fixedodds import (
    Odds,
    Outcome,
)
from oddstream.domain.fixedodds import PlaceBet as MarketBet
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import OpenBetting, PlaceBet
from oddstream.domain.wallet import Credit, ReserveStake, market_book, race_book
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.runtime.cashier import Cashier, wallet_bet_request_id
from oddstream.runtime.market_cashier import MarketBets, MarketCashier, bet_request
from oddstream.runtime.market_writer import MarketWriter
from oddstream.runtime.race_writer import RaceWriter
from oddstream.runtime.wallet_writer import WalletWriter, wallet_stream

from .conftest import new_market_m1, race_r1


async def _closing(store: PostgresEventStore, wallet: str) -> tuple[str, str | None]:
    last = (await store.read_stream(wallet_stream(wallet)))[-1]
    return last.type, last.data.get("reason")


async def test_a_deposed_market_owner_never_says_a_bet_the_market_took_is_not_there(
    stores: tuple[PostgresEventStore, PostgresEventStore],
) -> None:
    old_store, new_store = stores
    old, new = MarketWriter(old_store), MarketWriter(new_store)
    await old.execute(new_market_m1())
    assert await old.bet_wallet("m1", "w1~b1") is None  # the old owner holds m1 in memory
    wallets = WalletWriter(new_store)
    await wallets.execute(Credit(wallet_id="w1", amount_cents=1_000))
    await wallets.execute(
        ReserveStake(wallet_id="w1", bet_id="w1~b1", book=market_book("m1"), amount_cents=500)
    )
    # ownership moved: the new owner takes the bet (the wallet's owner then died before
    # capturing it, so the reservation is left for the sweep)
    bet = MarketBet(
        market_id="m1",
        bet_id="w1~b1",
        outcome=Outcome.HOME,
        stake_cents=500,
        price=Odds.from_decimal("2"),
        wallet_id="w1",
    )
    await new.execute(bet_request(bet), request_id=wallet_bet_request_id("w1", "w1~b1"))
    # the sweep's question reaches the old owner, not yet aware it was deposed
    assert await old.bet_wallet("m1", "w1~b1") == "w1"
    cashier = MarketCashier(new_store, MarketBets(old), wallets)
    assert await cashier.resolve("w1", "m1", "w1~b1")
    assert await _closing(new_store, "w1") == ("wallet.StakeCaptured", None)
    state, _, _ = await wallets.committed("w1")
    assert (state.balance, state.in_play) == (500, 500)


async def test_a_deposed_race_owner_never_says_a_bet_the_race_took_is_not_there(
    stores: tuple[PostgresEventStore, PostgresEventStore],
) -> None:
    old_store, new_store = stores
    old, new = RaceWriter(old_store), RaceWriter(new_store)
    await old.execute(race_r1())
    await old.execute(OpenBetting("r1"))
    assert await old.bet_wallet("r1", "w1~b1") is None
    wallets = WalletWriter(new_store)
    await wallets.execute(Credit(wallet_id="w1", amount_cents=1_000))
    await wallets.execute(
        ReserveStake(wallet_id="w1", bet_id="w1~b1", book=race_book("r1"), amount_cents=500)
    )
    bet = PlaceBet(
        race_id="r1",
        bet_id="w1~b1",
        pool=PoolType.WIN,
        selection=(1,),
        stake_cents=500,
        wallet_id="w1",
    )
    await new.execute(bet, request_id=wallet_bet_request_id("w1", "w1~b1"))
    assert await old.bet_wallet("r1", "w1~b1") == "w1"
    cashier = Cashier(new_store, old, wallets)
    assert await cashier.resolve("w1", "r1", "w1~b1")
    assert await _closing(new_store, "w1") == ("wallet.StakeCaptured", None)
