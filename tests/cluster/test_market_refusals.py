"""A market's refusals on the routed path are the embedded mode's, answered at once.

The router reads a worker's ``not_owner`` (the partition moved: ask again) from a
reply's code; the fixed-odds domain refuses a provider's command on another provider's
market with the code ``not_owner`` too (403 embedded). Told apart by their kind, the
market's refusal comes back as itself, not retried until the deadline and answered
503 as if no worker owned the partition."""

from __future__ import annotations

import asyncio

import pytest

from oddstream.domain.fixedodds import FixedOddsRejection, SuspendMarket, UpdatePrices

from .test_markets import (  # the two-worker deployment and its helpers
    LINE,
    Deployment,
    deployment,  # noqa: F401 - a fixture
    market_in,
    new_market,
    provider,
)


async def test_another_providers_command_is_refused_not_owner_at_once(
    deployment: Deployment,  # noqa: F811
) -> None:
    w0, w1 = deployment.workers
    for worker in (w0, w1):  # a market of each worker
        market = market_in(worker.partitions()[0], "o")
        await deployment.router.markets.execute(new_market(market), request_id=f"c-{market}")
        loop = asyncio.get_running_loop()
        for command in (
            UpdatePrices(market_id=market, provider="rival", money_line=LINE),
            SuspendMarket(market_id=market, provider="rival"),
        ):
            started = loop.time()
            with pytest.raises(FixedOddsRejection) as refused:
                await deployment.router.markets.execute(provider(command))
            assert refused.value.code == "not_owner"
            assert loop.time() - started < 2.0  # not the 5 s deadline
        assert deployment.router.retries == 0
