"""The velocity bus: committed events delivered by tier, high before medium before low,
a burst in one tier never holding up another.

The log stays the source of truth; the bus only delivers, **at most once**. Every
message carries the event's log position, stream and version, so a subscriber that was
told it missed something (a :class:`Gap`) reads the log from ``gap.resume_after`` and
skips, per stream, the versions it already has.

- :meth:`VelocityBus.publish` never waits: it hands the event to each matching
  subscription (in process) or to its tier's sender (NATS), and returns the channel.
- A :class:`Subscription` holds a bounded queue per tier and hands out high first, then
  medium, then low. A subscription that falls ``limit`` events behind in a tier loses
  the newest events of that tier only (never another tier's) and is told so with one
  :class:`Gap` before its next event: nobody waits for a slow subscriber.
- Work on medium and low events is done in slices (:class:`Slicer`, ``SLICE``): past
  its slice, a subscription draining a backlog (or NATS's sender working through a
  burst) lets the other tasks run first, so a burst of low events keeps the event loop
  from a high subscriber for at most a slice. High events are never held back. On
  NATS the medium and low senders also wait while high events are queued, and keep to
  a pace (``RATE``), so a burst does not take the CPU of the other processes either.

The transports: :class:`InProcessVelocityBus` (embedded) and
:class:`~oddstream.velocity.nats_bus.NatsVelocityBus` (services mode). See
``docs/fixed-odds.md``, "Velocity tiers".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

import msgspec

from .channels import TIERS, Velocity, channel, check_pattern, matches, tier_of, tiers_of

#: events a subscription holds per tier before it drops the newest
DEFAULT_LIMIT = 4096
#: per tier: how long (seconds) work on its events may keep the event loop before other
#: tasks get it (None: never held back)
SLICE: dict[str, float | None] = {"high": None, "medium": 0.0002, "low": 0.00005}
#: per tier on NATS: events per second its sender sends at most, so that a burst is
#: spread out rather than taking the CPU of the publisher, the server and the
#: subscribers from the high tier (None: as fast as it can; high is never paced).
#: ``ODDSTREAM_VELOCITY_MEDIUM_RATE`` and ``ODDSTREAM_VELOCITY_LOW_RATE`` set them.
RATE: dict[str, float | None] = {"high": None, "medium": 100_000.0, "low": 50_000.0}


class Slicer:
    """Lets other tasks run once a tier's work has held the event loop for its slice."""

    __slots__ = ("_budget", "_since")

    def __init__(self, tier: str) -> None:
        self._budget = SLICE[tier]
        self._since = time.perf_counter()

    def resume(self) -> None:
        """The task was suspended anyway: a new slice starts."""
        self._since = time.perf_counter()

    def due(self) -> bool:
        """Whether the slice is used up (then ``await asyncio.sleep(0)`` and
        :meth:`resume`)."""
        budget = self._budget
        return budget is not None and time.perf_counter() - self._since > budget

    async def tick(self) -> None:
        """Yield the loop if the slice is used up."""
        if self.due():
            await asyncio.sleep(0)
            self._since = time.perf_counter()


class BusEvent(msgspec.Struct, frozen=True, array_like=True, kw_only=True):
    """A committed event as the bus carries it."""

    #: its global log position, stream and version in the stream
    position: int
    stream: str
    version: int
    #: its registered type (``fixedodds.PricesUpdated``) and its data as stored (JSON)
    type: str
    data: bytes
    velocity: Velocity
    game_type: str
    domain: str
    #: set by the bus: the channel it travelled on, who published it and its number
    #: among that publisher's events on the channel (from 1)
    channel: str = ""
    publisher: str = ""
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Gap:
    """Events this subscription should have had and may not have: read the log after
    ``resume_after`` (positions above it) for them."""

    resume_after: int
    #: events known dropped (0 when unknown: a reconnection, a number skipped on NATS)
    dropped: int
    reason: str


class Subscription:
    """One subscriber's events for a channel pattern: ``async for item in sub`` gives
    :class:`BusEvent`\\ s, high tier first, and a :class:`Gap` when some were lost."""

    def __init__(
        self,
        pattern: str,
        *,
        limit: int = DEFAULT_LIMIT,
        on_close: Callable[[Subscription], None] | None = None,
    ) -> None:
        self.pattern = check_pattern(pattern)
        self.tiers = tiers_of(pattern)
        self._limit = limit
        self._queues: dict[str, deque[BusEvent]] = {t: deque() for t in TIERS}
        self._ready = asyncio.Event()
        self._gap: Gap | None = None
        self._slicers = {t: Slicer(t) for t in TIERS}
        self._closed = False
        self._on_close = on_close
        #: per (publisher, channel): the last number and position seen
        self._last: dict[tuple[str, str], tuple[int, int]] = {}
        #: the publishers heard from (a new one from its first number: one started)
        self._publishers: set[str] = set()
        #: the highest position offered to this subscription
        self.position = 0
        self.received = 0
        self.dropped = 0

    def pending(self, tier: str | None = None) -> int:
        """Events waiting (in ``tier``, or in all)."""
        if tier is not None:
            return len(self._queues[tier])
        return sum(len(q) for q in self._queues.values())

    def offer(self, event: BusEvent) -> bool:
        """Queue an event (the transport's side; never waits): ``False`` if it was
        dropped (its tier's queue full)."""
        if self._closed:
            return True
        key = (event.publisher, event.channel)
        last = self._last.get(key)
        if last is not None and event.seq != last[0] + 1 and event.seq > last[0]:
            self._mark(last[1], 0, f"{event.seq - last[0] - 1} event(s) of {event.channel} lost")
        elif last is None and event.publisher not in self._publishers:
            if event.seq == 1 and self._publishers:
                # a publisher (re)started: a stopped one may have committed events it
                # never published, which no number of its shows
                self._mark(
                    min(pos for _, pos in self._last.values()),
                    0,
                    f"a publisher started ({event.publisher}): one stopped may not have "
                    "published all it committed",
                )
            self._publishers.add(event.publisher)
        self._last[key] = (event.seq, event.position)
        queue = self._queues[event.velocity]
        if len(queue) >= self._limit:
            self.dropped += 1
            self._mark(event.position - 1, 1, f"{event.velocity} queue full ({self._limit})")
            return False
        queue.append(event)
        self.received += 1
        if event.position > self.position:
            self.position = event.position
        self._ready.set()
        return True

    def interrupted(self, reason: str) -> None:
        """The transport lost messages it cannot name (a reconnection): the subscriber
        resumes from the lowest position it may lack, the last one of each channel."""
        after = min((pos for _, pos in self._last.values()), default=self.position)
        self._mark(after, 0, reason)

    def _mark(self, after: int, dropped: int, reason: str) -> None:
        gap = self._gap
        if gap is None:
            self._gap = Gap(after, dropped, reason)
        else:
            self._gap = Gap(min(gap.resume_after, after), gap.dropped + dropped, gap.reason)
        self._ready.set()

    async def get(self) -> BusEvent | Gap:
        """The next item: a pending gap first, then high, medium, low events; waits
        when there is none. :class:`StopAsyncIteration` once closed."""
        while True:
            if self._gap is not None:
                gap, self._gap = self._gap, None
                return gap
            for tier in self.tiers:
                queue = self._queues[tier]
                if queue:
                    slicer = self._slicers[tier]
                    if slicer.due():
                        await asyncio.sleep(0)  # let others (a high subscriber) run
                        slicer.resume()
                        break  # and look again from the high tier
                    return queue.popleft()
            else:
                if self._closed:
                    raise StopAsyncIteration
                self._ready.clear()
                await self._ready.wait()
                for slicer in self._slicers.values():
                    slicer.resume()

    def __aiter__(self) -> AsyncIterator[BusEvent | Gap]:
        return self

    async def __anext__(self) -> BusEvent | Gap:
        return await self.get()

    def close(self) -> None:
        """Stop receiving; a reader waiting in :meth:`get` ends once the queue is empty."""
        if self._closed:
            return
        self._closed = True
        self._ready.set()
        if self._on_close is not None:
            self._on_close(self)

    @property
    def closed(self) -> bool:
        return self._closed


class VelocityBus(Protocol):
    """Delivery of committed events by velocity tier (embedded or NATS)."""

    def publish(self, event: BusEvent) -> str:
        """Send ``event`` on its channel (from its velocity, game type and domain); never
        waits. Returns the channel."""
        ...

    async def subscribe(self, pattern: str, *, limit: int = DEFAULT_LIMIT) -> Subscription:
        """A subscription to a channel or a pattern of channels (``tier_pattern``)."""
        ...

    async def close(self) -> None: ...

    def counts(self) -> dict[str, tuple[int, int]]:
        """Per tier since the bus started: events published, and events dropped (not
        sent, or not queued for a subscriber); ``/metrics`` exports them as
        ``oddstream_velocity_events_total``."""
        ...

    @property
    def malformed(self) -> int:
        """Messages received that did not decode, dropped (their subscriptions had a
        :class:`Gap`); ``/metrics`` exports it as
        ``oddstream_velocity_malformed_messages_total``."""
        ...


class Publisher:
    """Stamps events with their channel, this publisher's id and their number on the
    channel (how a subscriber knows it missed some)."""

    def __init__(self) -> None:
        self.id = uuid.uuid4().hex[:12]
        self._seq: dict[str, int] = {}
        self._names: dict[tuple[str, str, str], str] = {}

    def stamp(self, event: BusEvent) -> BusEvent:
        key = (event.velocity, event.game_type, event.domain)
        name = self._names.get(key)
        if name is None:
            if len(self._names) > 10_000:  # game types are few; bounded all the same
                self._names.clear()
            name = self._names[key] = channel(*key)
        seq = self._seq.get(name, 0) + 1
        self._seq[name] = seq
        return msgspec.structs.replace(event, channel=name, publisher=self.id, seq=seq)


class InProcessVelocityBus:
    """The embedded bus: :meth:`publish` puts the event in each matching subscription's
    queue of its tier, synchronously."""

    #: nothing to decode: events pass as Python objects
    malformed = 0

    def __init__(self) -> None:
        self._publisher = Publisher()
        self._subscriptions: set[Subscription] = set()
        self._routes: dict[str, list[Subscription]] = {}
        self._published = dict.fromkeys(TIERS, 0)
        #: events a subscription of this bus dropped (its queue of the tier full)
        self._dropped = dict.fromkeys(TIERS, 0)

    def publish(self, event: BusEvent) -> str:
        event = self._publisher.stamp(event)
        name = event.channel
        route = self._routes.get(name)
        if route is None:
            route = self._routes[name] = [
                s for s in self._subscriptions if matches(s.pattern, name)
            ]
        for sub in route:
            if not sub.offer(event):
                self._dropped[event.velocity] += 1
        self._published[event.velocity] += 1
        return name

    @property
    def published(self) -> int:
        return sum(self._published.values())

    def counts(self) -> dict[str, tuple[int, int]]:
        return {t: (self._published[t], self._dropped[t]) for t in TIERS}

    async def subscribe(self, pattern: str, *, limit: int = DEFAULT_LIMIT) -> Subscription:
        sub = Subscription(pattern, limit=limit, on_close=self._forget)
        tier_of(pattern)  # a pattern naming no tier is refused here
        self._subscriptions.add(sub)
        self._routes.clear()
        return sub

    def _forget(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)
        self._routes.clear()

    async def close(self) -> None:
        for sub in list(self._subscriptions):
            sub.close()
