"""A market's owner stops: its partitions go to the other worker, which loads the market
from the log. A bet placed before, retried after, is answered ``repeated`` and paid
from the wallet once; the new owner decides on the market as the log holds it (a worse
price refused, the stake back); the result is paid once to the cent."""

from __future__ import annotations

import asyncio

import pytest

from oddstream.domain.fixedodds import (
    CloseMarket,
    FixedOddsRejection,
    Odds,
    Outcome,
    PlaceBet,
    ResultMarket,
)
from oddstream.domain.wallet import Credit
from oddstream.runtime.market_cashier import CHECKPOINT as MARKET_CASHIER
from oddstream.runtime.wallet_writer import wallet_stream

from .test_markets import (  # the two-worker deployment and its helpers
    Deployment,
    deployment,  # noqa: F401 - a fixture
    market_in,
    new_market,
    provider,
    wallet_in,
)


def bet(market: str, wallet: str, bet_id: str, stake: int, price: str) -> PlaceBet:
    return PlaceBet(
        market_id=market,
        bet_id=f"{wallet}~{bet_id}",
        outcome=Outcome.HOME,
        stake_cents=stake,
        price=Odds.from_decimal(price),
        wallet_id=wallet,
    )


async def test_a_bet_retried_across_its_markets_handover_is_paid_once(
    deployment: Deployment,  # noqa: F811
) -> None:
    w0, w1 = deployment.workers
    router = deployment.router
    wallet, market = wallet_in(w0.partitions()[0]), market_in(w1.partitions()[0], "h")
    market_partition = w1.partitions()[0]
    await router.wallets.execute(Credit(wallet_id=wallet, amount_cents=10_000))
    await router.markets.execute(new_market(market), request_id="create")
    first = await router.market_bets.place_bet(bet(market, wallet, "b1", 1_000, "2.5"))
    # the market's owner stops: the other worker takes its partitions (and followers)
    async with asyncio.timeout(30):
        await w1.stop()
        while not w0.owns(market_partition) or MARKET_CASHIER not in w0._consumers:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    retry = await deployment.other.market_bets.place_bet(bet(market, wallet, "b1", 1_000, "2.5"))
    assert retry.repeated
    assert (retry.stream_version, retry.last_position) == (
        first.stream_version,
        first.last_position,
    )
    # the new owner's market is the log's: the creation's retry repeated, its price
    # 2.5 (a bet asking for 3 is refused, the stake back)
    again = await router.markets.execute(new_market(market), request_id="create")
    assert again.repeated
    with pytest.raises(FixedOddsRejection) as worse:
        await router.market_bets.place_bet(bet(market, wallet, "b2", 500, "3"))
    assert worse.value.code == "price_worse"
    for command in (
        CloseMarket(market_id=market, provider="acme"),
        ResultMarket(market_id=market, provider="acme", winners=(Outcome.HOME,)),
    ):
        await router.markets.execute(provider(command))
    expected = (10_000 - 1_000 + 2_500, 0)  # 1000 × 2.5, stake included
    async with asyncio.timeout(15):
        while True:
            state, _, _ = await w0.wallets.committed(wallet)
            if (state.balance, state.in_play) == expected:
                break
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # nothing is paid twice meanwhile
    types = [e.type for e in await deployment.store.read_stream(wallet_stream(wallet))]
    assert types.count("wallet.StakeReserved") == 2  # b1 once (not on its retry), b2
    assert types.count("wallet.WinningsCredited") == 1
    state, _, _ = await w0.wallets.committed(wallet)
    assert (state.balance, state.in_play) == expected
