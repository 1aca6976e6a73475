"""The fence: a deposed owner can never commit a decision made on a stale state.

Ownership can overlap for a moment (PostgreSQL frees a lock as soon as the holder's
connection ends; the holder notices at its next look). Each test plays that moment with
two writers on one PostgreSQL store: the old owner, whose state in memory is stale, and
the new one, which has moved the stream on (a race, a wallet, a fixed-odds market).
Every append carries the version its decision was made on, so the old owner's append
is refused by the store, and the writer decides again on what the log now holds."""

from __future__ import annotations

import pytest

from oddstream.domain.fixedodds import (
    FixedOddsRejection,
    Odds,
    Outcome,
    SuspendMarket,
)
from oddstream.domain.fixedodds import PlaceBet as MarketBet
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import (
    CloseBetting,
    OpenBetting,
    PlaceBet,
    ToteRejection,
)
from oddstream.domain.wallet import Credit, Debit
from oddstream.domain.wallet.events import Debited, DebitRejected
from oddstream.eventstore import ExpectedVersion, WrongExpectedVersion
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.runtime.market_writer import MarketRequest, MarketWriter, market_stream
from oddstream.runtime.race_writer import RaceWriter, race_stream
from oddstream.runtime.wallet_writer import WalletWriter, wallet_stream

from .conftest import new_market_m1, race_r1


def count_refused_appends(store: PostgresEventStore) -> list[str]:
    """Record every append the store refuses for its expected version (the fence),
    whether it came alone or in an ``append_many`` call (the writers' way)."""
    refused: list[str] = []
    append = store.append
    append_many = store.append_many

    async def watched(stream_id, events, expected=ExpectedVersion.ANY):  # type: ignore[no-untyped-def]
        try:
            return await append(stream_id, events, expected)
        except WrongExpectedVersion:
            refused.append(stream_id)
            raise

    async def watched_many(appends):  # type: ignore[no-untyped-def]
        outcomes = await append_many(appends)
        refused.extend(
            a.stream_id
            for a, o in zip(appends, outcomes, strict=True)
            if isinstance(o, WrongExpectedVersion)
        )
        return outcomes

    store.append = watched  # type: ignore[method-assign]
    store.append_many = watched_many  # type: ignore[method-assign]
    return refused


def bet(bet_id: str) -> PlaceBet:
    return PlaceBet(race_id="r1", bet_id=bet_id, pool=PoolType.WIN, selection=(1,), stake_cents=500)


async def test_a_deposed_race_owner_cannot_take_a_bet_after_the_new_owner_closed(
    stores: tuple[PostgresEventStore, PostgresEventStore],
) -> None:
    old_store, new_store = stores
    old, new = RaceWriter(old_store), RaceWriter(new_store)
    await old.execute(race_r1())
    await old.execute(OpenBetting("r1"))
    await old.execute(bet("b1"))  # the old owner's state in memory: betting open
    # ownership moved: the new owner closes betting
    await new.execute(CloseBetting("r1"))
    fenced = count_refused_appends(old_store)
    # the old owner, not yet aware, decides on its stale state (open) and appends:
    # the store refuses that version, the writer reloads, and the bet is refused
    with pytest.raises(ToteRejection) as refused:
        await old.execute(bet("b2"))
    assert refused.value.code == "betting_closed"
    assert fenced == [race_stream("r1")]  # its stale decision reached the store, refused
    types = [e.type for e in await new_store.read_stream(race_stream("r1"))]
    assert types[-1] == "tote.BettingClosed"
    assert types.count("tote.BetPlaced") == 1


async def test_a_deposed_wallet_owner_cannot_spend_money_already_spent(
    stores: tuple[PostgresEventStore, PostgresEventStore],
) -> None:
    old_store, new_store = stores
    old, new = WalletWriter(old_store), WalletWriter(new_store)
    await old.execute(Credit(wallet_id="w1", amount_cents=1_000))
    await old.execute(Debit(wallet_id="w1", amount_cents=100))  # old owner: 900 in memory
    spent = await new.execute(Debit(wallet_id="w1", amount_cents=900))
    assert isinstance(spent.events[-1], Debited)
    fenced = count_refused_appends(old_store)
    # the old owner still believes 900 is there: its debit is decided again and refused
    late = await old.execute(Debit(wallet_id="w1", amount_cents=900))
    assert isinstance(late.events[-1], DebitRejected)
    assert fenced == [wallet_stream("w1")]
    state, _, _ = await new.committed("w1")
    assert state.balance == 0
    debits = [
        e for e in await new_store.read_stream(wallet_stream("w1")) if e.type == "wallet.Debited"
    ]
    assert len(debits) == 2


def market_bet(bet_id: str) -> MarketRequest:
    command = MarketBet(
        market_id="m1",
        bet_id=bet_id,
        outcome=Outcome.HOME,
        stake_cents=500,
        price=Odds.from_decimal("2"),
        wallet_id="w1",
    )
    return MarketRequest(action="PlaceBet", command=command)


async def test_a_deposed_market_owner_cannot_take_a_bet_after_the_new_owner_suspended(
    stores: tuple[PostgresEventStore, PostgresEventStore],
) -> None:
    old_store, new_store = stores
    old, new = MarketWriter(old_store), MarketWriter(new_store)
    await old.execute(new_market_m1())
    await old.execute(market_bet("b1"))  # the old owner's state in memory: open
    # ownership moved: the new owner suspends the market
    suspend = SuspendMarket(market_id="m1", provider="acme")
    await new.execute(MarketRequest(action="SuspendOdds", command=suspend))
    fenced = count_refused_appends(old_store)
    # the old owner, not yet aware, takes the bet on its stale state (open) and appends:
    # the store refuses that version, the writer reloads, and the bet is refused
    with pytest.raises(FixedOddsRejection) as refused:
        await old.execute(market_bet("b2"))
    assert refused.value.code == "market_suspended"
    assert fenced == [market_stream("m1")]  # its stale decision reached the store, refused
    types = [e.type for e in await new_store.read_stream(market_stream("m1"))]
    assert types[-1] == "fixedodds.MarketSuspended"
    assert types.count("fixedodds.BetAccepted") == 1
