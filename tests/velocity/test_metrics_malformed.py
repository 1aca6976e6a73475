"""``/metrics`` exports the velocity bus's malformed messages with its other counts."""

from __future__ import annotations

from prometheus_client import generate_latest

from oddstream.api.metrics import Metrics
from oddstream.velocity.nats_bus import NatsVelocityBus


def test_metrics_export_the_malformed_messages_of_the_bus() -> None:
    metrics = Metrics()
    bus = NatsVelocityBus("nats://127.0.0.1:1", "t.velocity")  # not started: no socket
    metrics.velocity_bus = bus
    bus.malformed = 3
    text = generate_latest(metrics.registry).decode()
    assert "oddstream_velocity_malformed_messages_total 3.0" in text
