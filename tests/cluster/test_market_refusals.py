"""A market's refusals on the routed path are the embedded mode's, answered at once.

The router reads a worker's ``not_owner`` (the partition moved: ask again) from a
reply's code; the fixed-odds domain refuses a provider's command on another provider's
market with the code ``not_owner`` too (403 embedded). Told apart by their kind, the
market's refusal comes back as itself, not retried until the deadline and answered
503 as if no worker owned the partition."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from oddstream.domain.fixedodds import FixedOddsRejection, SuspendMarket, UpdatePrices

from .conftest import ADMIN, Cluster
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


async def test_over_http_another_providers_command_is_403_not_owner(cluster: Cluster) -> None:
    """The same through real processes: 403 ``not_owner``, as the embedded mode answers
    (it was 503 ``store_unavailable`` after the 5 s deadline)."""
    cluster.worker("w0")
    api = cluster.api()
    async with httpx.AsyncClient(base_url=api.url, timeout=15) as client:
        new = {
            "RequestID": "m-1",
            "Provider": "acme",
            "Command": "NewOdds",
            "Payload": {"GameID": "football:g1", "MoneyLine": {"Home": 2.5, "Away": 1.6}},
        }
        created = await client.post("/odds", json=new, headers=ADMIN)
        assert created.status_code == 201, created.text
        market = created.json()["ExternalID"]
        update = {
            "RequestID": "u-1",
            "Provider": "rival",  # an admin key may speak for any provider
            "Command": "UpdateOdds",
            "Payload": {"GameID": "football:g1", "MoneyLine": {"Home": 3, "Away": 1.5}},
        }
        loop = asyncio.get_running_loop()
        started = loop.time()
        r = await client.patch(f"/odds/{market}", json=update, headers=ADMIN)
        assert r.status_code == 403, r.text
        assert (r.json()["Status"], r.json()["error"]) == ("fail", "not_owner")
        assert loop.time() - started < 2.0
