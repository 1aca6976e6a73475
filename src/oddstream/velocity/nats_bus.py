"""The velocity bus on NATS (services mode): a channel is the subject
``<prefix>.<channel>``; core NATS, one connection per tier.

**Core NATS, not JetStream.** The log (PostgreSQL) already keeps every event durably
and in order, and a subscriber that missed messages resumes from it by position
(:class:`~oddstream.velocity.bus.Gap`). JetStream would keep a second durable copy of
each event (a disk write and an acknowledgement per message on the server) to offer a
replay the log already gives, and the burst of one tier would queue in the server
behind the same stream limits. Core NATS delivers at most once, with the least latency.

**A connection per tier**, both to publish and to subscribe: a connection's messages
come in one ordered socket, so a high event behind 100,000 low ones would wait for them
to be read and parsed (and a high publish behind their bytes to be written). On its own
connection a high event passes the low burst in the server. Each tier's publishes go
through a bounded queue and a task of its own: :meth:`NatsVelocityBus.publish` never
waits; a queue that is full drops the newest of its tier, and NATS away past nats-py's
reconnect buffer what the sender takes meanwhile (the oldest queued), which subscribers
see as numbers skipped (a :class:`~oddstream.velocity.bus.Gap`). A
reconnection gives every subscription on that connection a gap too.

**Priority over the CPU.** Connections of their own keep a high event out of the low
bytes' queue, not out of the CPU's: a low sender flooding as fast as it can keeps the
publisher, the server and the low subscribers busy while the high event waits for a
core at each hop. So the medium and low senders give way: before each batch they wait
until the high sender has nothing left to send, and they keep to a pace (``RATE``, events
per second, a :class:`Pacer` holding one batch: ``ODDSTREAM_VELOCITY_MEDIUM_RATE``,
``ODDSTREAM_VELOCITY_LOW_RATE``). Events now and then go at once; a burst is spread out,
a batch at a time. High is never paced. A closing bus sends what is queued unpaced
(for at most ``CLOSE_TIMEOUT``; what is left is counted dropped).

**Batches.** A message is a list of events of one channel: what a tier's sender
finds queued for the channel, up to ``MAX_BATCH``, in msgpack or protobuf
(``ODDSTREAM_BUS_FORMAT``; :mod:`~oddstream.velocity.bus_format`, which reads both).
An event published alone goes alone; a burst goes in few messages, so the publisher,
the server and each subscriber pay a message's cost (a write, a parse, a callback) per
batch rather than per event. A message that does not decode is counted
(:attr:`NatsVelocityBus.malformed`) and dropped, and the subscription is given a
:class:`~oddstream.velocity.bus.Gap`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import bus_format
from .bus import DEFAULT_LIMIT, RATE, BusEvent, Publisher, Slicer, Subscription
from .bus_format import FORMATS, BusFormat, MalformedMessage
from .channels import TIERS, check_pattern, per_tier

log = logging.getLogger(__name__)

#: events waiting to be published per tier before the newest are dropped
OUTBOUND_LIMIT = 200_000
#: events of one channel sent in one NATS message, at most (what is queued: one, when
#: events come one by one; a burst goes in a few large messages)
MAX_BATCH = 256
#: events in one message of a paced tier, at most (its pace's bucket): the work a batch
#: costs the server and a subscriber comes in pieces this small, between which the high
#: tier's work gets a core (64 rather than 256: the burst's high p99 1.2–1.3 against
#: 2.1–2.4 ms on quiet cores, draining 100,000 low events in 2.7 rather than 2.2 s;
#: bench/README.md)
PACED_BATCH = 64
#: seconds a closing bus spends sending what is queued before it gives up on the rest
#: (counted dropped)
CLOSE_TIMEOUT = 5.0


def check_rate(tier: str, rate: float | None) -> float | None:
    """``rate`` if it is a pace a tier's sender can keep (None: unpaced), else
    :class:`ValueError` saying why. The high tier is never paced."""
    if rate is None:
        return None
    if tier == "high":
        raise ValueError("the high tier is never paced (its rate is None)")
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
        raise ValueError(f"the {tier} tier's rate is events per second, > 0 (got {rate!r})")
    return float(rate)


class Pacer:
    """A token bucket: at most ``rate`` events a second on average, ``burst`` at once
    (a batch); a bucket left alone fills up to ``burst``, so events that come now and
    then are never held back — only a burst is spread out."""

    __slots__ = ("_at", "_clock", "_tokens", "burst", "rate")

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (math.isfinite(rate) and rate > 0) or burst < 1:
            raise ValueError(
                f"a pace is > 0 events per second and a burst >= 1 (got {rate}, {burst})"
            )
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def _fill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait(self, n: int) -> float:
        """Seconds until ``n`` events (at most ``burst``) may go: 0 when they may now."""
        self._fill()
        lack = min(n, self.burst) - self._tokens
        return lack / self.rate if lack > 0 else 0.0

    def available(self) -> int:
        """Events that may go now."""
        self._fill()
        return int(self._tokens)

    def take(self, n: int) -> None:
        """``n`` events went."""
        self._tokens -= n


class _Tier:
    def __init__(self, name: str) -> None:
        self.name = name
        #: its sender's pace (None: as fast as it can)
        self.pacer: Pacer | None = None
        #: the tiers it gives way to: it sends nothing while one of them has events
        #: waiting to be sent
        self.above: list[_Tier] = []
        self.nc: Any = None
        self.outbound: deque[BusEvent] = deque()
        self.wake = asyncio.Event()
        #: set while nothing waits to be published
        self.idle = asyncio.Event()
        self.idle.set()
        self.sender: asyncio.Task[None] | None = None
        self.subs: dict[Subscription, Any] = {}
        self.published = 0
        self.dropped = 0


class NatsVelocityBus:
    """The :class:`~oddstream.velocity.bus.VelocityBus` on NATS subjects under
    ``prefix`` (``oddstream.<schema>.<deployment>.velocity`` in services mode),
    publishing its messages in ``fmt`` (``ODDSTREAM_BUS_FORMAT``)."""

    def __init__(
        self,
        servers: str | Sequence[str],
        prefix: str,
        *,
        name: str = "oddstream-velocity",
        outbound_limit: int = OUTBOUND_LIMIT,
        max_batch: int = MAX_BATCH,
        fmt: BusFormat = "msgpack",
        rates: Mapping[str, float | None] | None = None,
        paced_batch: int = PACED_BATCH,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"bus format {fmt!r} is none of {', '.join(FORMATS)}")
        paces = {**RATE, **(rates or {})}
        unknown = set(paces) - set(TIERS)
        if unknown:
            raise ValueError(f"rates are per tier ({', '.join(TIERS)}), not {sorted(unknown)}")
        paces = {t: check_rate(t, paces[t]) for t in TIERS}
        #: the format of the messages this bus publishes (it reads every format)
        self.format: BusFormat = fmt
        #: messages received that did not decode (dropped; their subscription has a Gap)
        self.malformed = 0
        if isinstance(servers, str):  # ODDSTREAM_NATS_URL: comma-separated
            servers = [part.strip() for part in servers.split(",")]
        self._servers = list(servers)
        self.prefix = prefix
        self._name = name
        self._outbound_limit = outbound_limit
        self._max_batch = max(1, max_batch)
        self._publisher = Publisher()
        self._tiers = {t: _Tier(t) for t in TIERS}
        for tier in self._tiers.values():
            rate = paces[tier.name]
            if rate is not None:
                tier.pacer = Pacer(rate, max(1, min(self._max_batch, paced_batch)))
            if tier.name != "high":  # medium and low give way to high (never paced)
                tier.above = [self._tiers["high"]]
        #: the bus is closing: what is queued goes as fast as it can
        self._closing = asyncio.Event()
        self._closed = False

    async def start(self) -> None:
        """Connect (a connection per tier) and start the senders; if a connection
        fails, those already opened are closed before the error is raised."""
        try:
            await self._connect()
        except BaseException:
            await self.close()
            raise

    async def _connect(self) -> None:
        import nats

        for tier in self._tiers.values():
            tier.nc = await nats.connect(
                servers=self._servers,
                name=f"{self._name}-{tier.name}",
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,
                reconnected_cb=self._reconnected(tier),
                error_cb=self._error(tier),
            )
            tier.sender = asyncio.get_running_loop().create_task(self._send(tier))

    def _reconnected(self, tier: _Tier) -> Any:
        async def reconnected() -> None:
            for sub in tier.subs:
                sub.interrupted(f"NATS reconnected ({tier.name} tier)")

        return reconnected

    def _error(self, tier: _Tier) -> Any:
        async def error(exc: Exception) -> None:
            from nats.errors import SlowConsumerError

            if isinstance(exc, SlowConsumerError):
                for sub, nsub in tier.subs.items():
                    if nsub is exc.sub:
                        sub.interrupted("slow consumer: NATS dropped messages")
                return
            log.warning("velocity bus (%s tier): %s", tier.name, exc)

        return error

    def subject(self, channel_name: str) -> str:
        return f"{self.prefix}.{channel_name}"

    def publish(self, event: BusEvent) -> str:
        event = self._publisher.stamp(event)
        tier = self._tiers[event.velocity]
        if self._closed or len(tier.outbound) >= self._outbound_limit:
            tier.dropped += 1  # subscribers see the number skipped
        else:
            tier.outbound.append(event)
            tier.idle.clear()
            tier.wake.set()
        return event.channel

    @property
    def rates(self) -> dict[str, float | None]:
        """Per tier: the events per second its sender sends at most (None: unpaced)."""
        return {name: t.pacer.rate if t.pacer else None for name, t in self._tiers.items()}

    async def _give_way(self, tier: _Tier) -> bool:
        """Wait (for as long as needed) until no tier above ``tier`` has events waiting
        to be sent, then until ``tier``'s pace lets a batch go; whether it waited."""
        waited = False
        while True:
            for above in tier.above:
                # look again once woken: a high event may have been queued between
                # the high sender going idle and this task running
                while not above.idle.is_set():
                    await above.idle.wait()
                    waited = True
            pacer = tier.pacer
            if pacer is None or self._closing.is_set():
                return waited
            delay = pacer.wait(min(len(tier.outbound), self._max_batch))
            if delay <= 0:
                return waited
            waited = True
            with contextlib.suppress(TimeoutError):  # or the bus closing ends the wait
                async with asyncio.timeout(delay):
                    await self._closing.wait()
            # high may have come meanwhile: look again

    async def _send(self, tier: _Tier) -> None:
        nc = tier.nc
        slicer = Slicer(tier.name)
        while True:
            await tier.wake.wait()
            tier.wake.clear()
            slicer.resume()
            outbound = tier.outbound
            while outbound:
                await slicer.tick()  # a burst of low events does not hold the loop
                if (tier.above or tier.pacer is not None) and await self._give_way(tier):
                    slicer.resume()  # it was suspended: a new slice
                # what is queued for one channel goes in one message: a burst costs the
                # publisher, the server and each subscriber a message per batch
                limit = self._max_batch
                if tier.pacer is not None and not self._closing.is_set():
                    limit = max(1, min(limit, tier.pacer.available()))
                batch = [outbound.popleft()]
                name = batch[0].channel
                while outbound and len(batch) < limit and outbound[0].channel == name:
                    batch.append(outbound.popleft())
                if tier.pacer is not None:
                    tier.pacer.take(len(batch))
                try:
                    await nc.publish(self.subject(name), bus_format.encode(batch, self.format))
                except asyncio.CancelledError:  # the bus closing gave up on it
                    tier.dropped += len(batch)
                    raise
                except Exception as exc:  # closed, or the reconnect buffer full: lost
                    tier.dropped += len(batch)
                    log.debug("velocity bus: %d of %s not published: %s", len(batch), name, exc)
                else:
                    tier.published += len(batch)
            tier.idle.set()

    async def subscribe(self, pattern: str, *, limit: int = DEFAULT_LIMIT) -> Subscription:
        """Subscribes on each tier's connection the pattern can match."""
        check_pattern(pattern)
        sub = Subscription(pattern, limit=limit, on_close=self._forget)

        def deliverer(slicer: Slicer) -> Any:
            async def deliver(msg: Any) -> None:
                # NATS's task hands a backlog over without suspending: sliced as well
                try:
                    events = bus_format.decode(msg.data)
                except MalformedMessage as exc:
                    self.malformed += 1
                    log.warning("velocity bus: a message on %s dropped: %s", msg.subject, exc)
                    sub.interrupted(f"a malformed message on {msg.subject} dropped")
                    return
                for event in events:
                    await slicer.tick()
                    sub.offer(event)

            return deliver

        parts = per_tier(pattern)
        for name, part in parts.items():
            tier = self._tiers[name]
            deliver = deliverer(Slicer(name))
            # the bound that matters is the subscription's own (per tier): offer never
            # waits, so NATS's pending queue only holds what arrived in one read
            tier.subs[sub] = await tier.nc.subscribe(
                self.subject(part),
                cb=deliver,
                pending_msgs_limit=1_000_000,
                pending_bytes_limit=512 * 1024 * 1024,
            )
        for name in parts:
            await self._tiers[name].nc.flush()  # the server has it: later events reach it
        return sub

    def _forget(self, sub: Subscription) -> None:
        for tier in self._tiers.values():
            nsub = tier.subs.pop(sub, None)
            if nsub is not None and not tier.nc.is_closed:
                asyncio.get_running_loop().create_task(nsub.unsubscribe())

    @property
    def dropped(self) -> int:
        """Events not published (queue full, NATS away, the bus closed)."""
        return sum(t.dropped for t in self._tiers.values())

    def counts(self) -> dict[str, tuple[int, int]]:
        """Per tier: events handed to NATS, and events not (queue full, NATS away past
        nats-py's reconnect buffer, the bus closed). What subscriptions in other
        processes drop is theirs (``Subscription.dropped``)."""
        return {name: (t.published, t.dropped) for name, t in self._tiers.items()}

    async def flush(self) -> None:
        """Wait until every event published so far is sent to the server."""
        for tier in self._tiers.values():
            await tier.idle.wait()
            if tier.nc is not None:
                await tier.nc.flush()

    async def close(self) -> None:
        """Send what is queued (bounded: ``CLOSE_TIMEOUT``), then disconnect; what
        could not be sent by then is counted dropped."""
        if self._closed:
            return
        self._closing.set()  # no priority to keep while stopping: pace no more
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.flush()
        self._closed = True
        for tier in self._tiers.values():
            for sub in list(tier.subs):
                sub.close()
            if tier.sender is not None:
                tier.sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await tier.sender
            tier.dropped += len(tier.outbound)  # never sent: subscribers see a gap
            tier.outbound.clear()
            tier.idle.set()
            if tier.nc is not None:
                with contextlib.suppress(Exception):
                    await tier.nc.close()
