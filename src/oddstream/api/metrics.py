"""Prometheus metrics of one app instance (its own registry, so tests and several apps
in one process do not collide)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ..velocity import VelocityBus
    from .auth import FailureLimiter


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.requests = Counter(
            "oddstream_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "oddstream_http_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.commands = Counter(
            "oddstream_commands_total", "Race commands stored", ["type"], registry=self.registry
        )
        self.bets = Counter("oddstream_bets_total", "Bets accepted", registry=self.registry)
        # the hot path's child, looked up once instead of per bet
        self.bet_commands = self.commands.labels("PlaceBet")
        self.append_latency = Histogram(
            "oddstream_append_seconds",
            "Event store append latency (as seen by the race writer)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "oddstream_consumer_lag_events",
            "Positions of the log a consumer has not reached yet",
            ["consumer"],
            registry=self.registry,
        )
        self.consumer_position = Gauge(
            "oddstream_consumer_position",
            "The log position a consumer has handled",
            ["consumer"],
            registry=self.registry,
        )
        self.consumer_failures = Gauge(
            "oddstream_consumer_failures",
            "Batches a consumer failed and was given again, since the process started",
            ["consumer"],
            registry=self.registry,
        )
        self.consumer_recoveries = Gauge(
            "oddstream_consumer_recoveries",
            "Resets of a consumer and restarts from what is stored after a checkpoint "
            "conflict or a wiped sink",
            ["consumer"],
            registry=self.registry,
        )
        self.consumer_resumes = Gauge(
            "oddstream_consumer_resumes",
            "Follow-ons of a consumer from a checkpoint another writer moved forward",
            ["consumer"],
            registry=self.registry,
        )
        self.wallet_commands = Counter(
            "oddstream_wallet_commands_total",
            "Wallet credits and debits executed (refused ones included)",
            ["kind"],
            registry=self.registry,
        )
        self.wallet_bets = Counter(
            "oddstream_wallet_bets_total", "Bets placed from wallets", registry=self.registry
        )
        self.sink_lag = Gauge(
            "oddstream_sink_lag_events",
            "How far a SQL sink's position is behind the log's head",
            ["connector"],
            registry=self.registry,
        )
        self.sink_state = Gauge(
            "oddstream_sink_state",
            "A SQL sink's task state as Kafka Connect names it (1 for the current one)",
            ["connector", "state"],
            registry=self.registry,
        )
        self.sink_dead_lettered = Gauge(
            "oddstream_sink_dead_lettered",
            "Records a SQL sink dead-lettered since this process started it",
            ["connector"],
            registry=self.registry,
        )
        self.sink_rows_written = Gauge(
            "oddstream_sink_rows_written",
            "Rows a SQL sink wrote since this process started it",
            ["connector"],
            registry=self.registry,
        )
        self.push_clients = Gauge(
            "oddstream_push_clients", "Live odds subscribers", registry=self.registry
        )
        #: the velocity bus the market writer publishes on (set at start), read at scrape
        self.velocity_bus: VelocityBus | None = None
        self.registry.register(_VelocityEvents(self))
        self.graphql_subscriptions = Gauge(
            "oddstream_graphql_subscriptions",
            "GraphQL getInstantOdds subscriptions",
            registry=self.registry,
        )
        self.graphql_sockets = Gauge(
            "oddstream_graphql_sockets", "GraphQL WebSockets open", registry=self.registry
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count a request and its latency (the label children are looked up once: the
        lookup cost more than the count on the hot paths)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def watch_auth(self, limiter: FailureLimiter) -> None:
        """Export ``limiter``'s refused authentications as
        ``oddstream_auth_refused_total{reason="unknown_key"|"locked"}`` (read at each
        scrape: :func:`.auth.principal_of` counts them on the limiter, which every surface
        shares, so the hot paths pay an integer increment, not a label lookup)."""
        self.registry.register(_AuthRefusals(limiter))


class _AuthRefusals(Collector):
    def __init__(self, limiter: FailureLimiter) -> None:
        self._limiter = limiter

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "oddstream_auth_refused",
            "API keys refused: unknown (403) or from a locked address (429, not looked up)",
            labels=["reason"],
        )
        for reason, count in self._limiter.refused.items():
            family.add_metric([reason], count)
        yield family


class _VelocityEvents(Collector):
    """``oddstream_velocity_events_total{tier, outcome="published"|"dropped"}`` and
    ``oddstream_velocity_malformed_messages_total``, read from the bus at each scrape
    (``publish`` pays integer increments only)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "oddstream_velocity_events",
            "Committed market events on the velocity bus by tier: published, or dropped "
            "(not sent to NATS, or not queued for an in-process subscriber)",
            labels=["tier", "outcome"],
        )
        bus = self._metrics.velocity_bus
        if bus is not None:
            for tier, (published, dropped) in bus.counts().items():
                family.add_metric([tier, "published"], published)
                family.add_metric([tier, "dropped"], dropped)
        yield family
        malformed = CounterMetricFamily(
            "oddstream_velocity_malformed_messages",
            "Velocity bus messages received that decoded in no format, dropped (their "
            "subscriptions were given a gap)",
        )
        if bus is not None:
            malformed.add_metric([], bus.malformed)
        yield malformed
