"""The single writer of fixed-odds markets with more than one process on a store (the
services mode: every API process writes markets, the stream's version is the fence)."""

from __future__ import annotations

from oddstream.application.odds import DEFAULT_LIMITS
from oddstream.domain.fixedodds import CreateMarket, MoneyLine, Odds, Outcome, UpdatePrices
from oddstream.runtime.market_writer import MarketRequest, MarketWriter


def line(home: str) -> MoneyLine:
    return MoneyLine(home=Odds.from_decimal(home), away=Odds.from_decimal("2"))


def update(market: str, home: str) -> MarketRequest:
    command = UpdatePrices(market_id=market, provider="acme", money_line=line(home))
    return MarketRequest(action="UpdateOdds", command=command, game_id="g1")


async def test_an_update_to_prices_a_stale_copy_shows_is_not_lost(store_factory) -> None:
    """Writer ``b`` holds the market at 2.5 when ``a`` moves it to 3. The provider then
    sets 2.5 through ``b``: what ``b`` holds made it a no-op answered without touching
    the store, and the market stayed at 3 while the provider was told 2.5 was set."""
    a_store, b_store = await store_factory(), await store_factory()
    try:
        a, b = MarketWriter(a_store), MarketWriter(b_store)
        create = CreateMarket(
            market_id="m1",
            game_id="g1",
            provider="acme",
            money_line=line("2.5"),
            limits=DEFAULT_LIMITS,
        )
        await a.execute(MarketRequest(action="NewOdds", command=create, game_id="g1"))
        await b.state("m1")  # b's copy: 2.5
        await a.execute(update("m1", "3"), request_id="client:provider:acme:UpdateOdds:u1")
        answered = await b.execute(
            update("m1", "2.5"), request_id="client:provider:acme:UpdateOdds:u2"
        )
        state, version, position = await MarketWriter(a_store).committed("m1")
        assert state.prices[Outcome.HOME] == Odds.from_decimal("2.5")
        assert (answered.stream_version, answered.last_position) == (version, position)
    finally:
        await a_store.close()
        await b_store.close()
