"""``ODDSTREAM_BUS_FORMAT`` reaching the velocity buses of services mode: the settings
read from the environment, the app built and started as ``oddstream api`` builds it
and a worker as ``oddstream worker`` does (on the local PostgreSQL, NATS and Redis, in
a schema, a Redis prefix and NATS subjects of the test's own), a market command sent to
the API process (which routes it to the worker owning the market, the process that
writes it and publishes it), and the message the worker's bus put on NATS read raw:
protobuf (``0x01`` and a ``BusBatch``) with ``protobuf``, msgpack when unset or
``msgpack``; the API process's bus (for subscribers) is of the same format. A bad value is
refused by the settings (``tests/test_config.py``: the variable named, and ``oddstream
api`` ending with it, no traceback)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from oddstream.api.app import create_app
from oddstream.cluster.worker import Worker
from oddstream.config import Settings
from oddstream.velocity.bus_format import PROTOBUF_V1, decode
from oddstream.velocity.nats_bus import NatsVelocityBus

from .conftest import ADMIN_KEY


@pytest.mark.parametrize("fmt", [None, "msgpack", "protobuf"], ids=["unset", "msgpack", "protobuf"])
async def test_the_bus_publishes_in_the_format_of_its_settings(
    services_settings: Callable[..., Settings], pg_schema: str, nats_url: str, fmt: str | None
) -> None:
    import nats

    settings = services_settings(ODDSTREAM_BUS_FORMAT=fmt, ODDSTREAM_VELOCITY_LOW_RATE="1234")
    assert settings.bus_format == (fmt or "msgpack")

    # the deployment's velocity subjects, whatever its deployment id: under its schema
    nc = await nats.connect(nats_url)
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_message(msg: object) -> None:
        received.put_nowait(msg.data)  # type: ignore[attr-defined]

    await nc.subscribe(f"oddstream.{pg_schema}.*.velocity.>", cb=on_message)
    await nc.flush()
    app = create_app(settings, role="api")
    worker = Worker(settings, name="w0")
    try:
        await worker.start()
        assert isinstance(worker.bus, NatsVelocityBus)
        assert worker.bus.format == (fmt or "msgpack")
        # the paced tiers' rates, from the settings, where the events are published
        assert worker.bus.rates == {"high": None, "medium": 100000.0, "low": 1234.0}
        async with app.router.lifespan_context(app):
            bus = app.state.services.velocity_bus
            assert isinstance(bus, NatsVelocityBus)
            assert bus.format == (fmt or "msgpack")
            body = {
                "RequestID": "bus-1",
                "Provider": "acme",
                "Command": "NewOdds",
                "EventVelocity": "high",
                "Payload": {"GameID": "football:g1", "MoneyLine": {"Home": 1.91, "Away": 2.1}},
            }
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                answer = await client.post("/odds", json=body, headers={"X-API-Key": ADMIN_KEY})
            assert answer.status_code == 201, answer.text
            created = answer.json()
            data = await asyncio.wait_for(received.get(), 10)
    finally:
        await worker.stop()
        await nc.close()

    if fmt == "protobuf":
        assert data[0] == PROTOBUF_V1
    else:  # a msgpack array: fixarray, array 16 or array 32
        assert 0x90 <= data[0] <= 0x9F or data[0] in (0xDC, 0xDD), data[:8]
    (event,) = decode(data)
    assert event.type == "fixedodds.MarketCreated"
    assert event.stream == f"market-{created['ExternalID']}"
    assert event.position == created["Position"]
    assert event.channel == "high.odds.football"
