"""The velocity bus's high tier waking the API process's odds view in services mode: the
app built and started as ``oddstream api`` builds it and a worker as ``oddstream
worker`` does (the local PostgreSQL, NATS and Redis, in a schema, a Redis prefix and
NATS subjects of the test's own), with ``ODDSTREAM_FOLLOW_PACE_MS=1000``.

A market created and read by the view (a read that found something: the next one is
paced), then its prices updated at once: the update is in the API process's odds view
well inside the pace, woken by the bus, while an odds view following the same log
without the bus (as every API process did before) has it only a pace after its last
read. The log stays the source of truth: the view reads it; the bus only wakes it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from oddstream.api.app import create_app
from oddstream.cluster.worker import Worker
from oddstream.config import Settings
from oddstream.domain.fixedodds.odds import Odds
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.projections.odds_view import OddsView

from .conftest import ADMIN_KEY

PACE_MS = 1000


async def _reached(view: OddsView, position: int, timeout: float = 10.0) -> float:
    """When (``time.perf_counter``) ``view`` reached ``position``, looked at every
    millisecond: not ``wait_for``, whose nudge would end every follower's pace."""
    deadline = time.perf_counter() + timeout
    while view.position < position:
        if time.perf_counter() > deadline:
            raise AssertionError(f"the view is at {view.position}, not {position}")
        await asyncio.sleep(0.001)
    return time.perf_counter()


async def test_a_high_event_wakes_the_api_odds_view_before_its_pace(
    services_settings: Callable[..., Settings], pg_url: str, pg_schema: str
) -> None:
    settings = services_settings(ODDSTREAM_FOLLOW_PACE_MS=str(PACE_MS))
    app = create_app(settings, role="api")
    worker = Worker(settings, name="w0")
    # an odds view of the same log without the bus, on a store of its own (another
    # process's, as far as pacing goes): what every API process did before
    control_store = await PostgresEventStore.open(
        pg_url, schema=pg_schema, follow_pace=PACE_MS / 1000
    )
    control = OddsView(control_store)
    try:
        await worker.start()
        await control.start()
        async with app.router.lifespan_context(app):
            view = app.state.services.odds_view
            transport = httpx.ASGITransport(app=app)
            headers = {"X-API-Key": ADMIN_KEY}
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                await asyncio.sleep(PACE_MS / 1000 + 0.1)  # both quiet: the next read is at once
                created = await client.post(
                    "/odds",
                    json={
                        "RequestID": "wake-1",
                        "Provider": "acme",
                        "Command": "NewOdds",
                        "EventVelocity": "high",
                        "Payload": {
                            "GameID": "football:g1",
                            "MoneyLine": {"Home": 1.91, "Away": 2.1},
                        },
                    },
                    headers=headers,
                )
                assert created.status_code == 201, created.text
                first = created.json()
                # both views read it (at once: a quiet spell before); their next read of
                # another process's commit waits for the pace (1 s) from that read
                await asyncio.gather(
                    _reached(view, first["Position"]), _reached(control, first["Position"])
                )
                updated = await client.patch(
                    f"/odds/{first['ExternalID']}",
                    json={
                        "RequestID": "wake-2",
                        "Provider": "acme",
                        "Command": "UpdateOdds",
                        "EventVelocity": "high",
                        "Payload": {
                            "GameID": "football:g1",
                            "MoneyLine": {"Home": 1.8, "Away": 2.2},
                        },
                    },
                    headers=headers,
                )
                accepted = time.perf_counter()
                assert updated.status_code == 200, updated.text
                position = updated.json()["Position"]
                woken, paced = await asyncio.gather(
                    _reached(view, position), _reached(control, position)
                )
            record = view.get(first["ExternalID"])
            assert record is not None
            assert record.money_line.home == Odds.from_decimal("1.8")
    finally:
        await control.stop()
        await control_store.close()
        await worker.stop()

    # with the wake-up: well inside the pace; without it (the control, as before): a pace
    assert woken - accepted < 0.4 * PACE_MS / 1000, woken - accepted
    assert paced - accepted > 0.5 * PACE_MS / 1000, paced - accepted
