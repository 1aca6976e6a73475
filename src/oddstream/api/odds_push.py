"""Live odds changes for GraphQL subscribers (``getInstantOdds``): every change of a
market, in log order, to every subscriber whose filter it matches.

The boards' hub (:mod:`.push`) pushes whole boards and keeps only the latest per client,
because a board replaces the one before. A market's record replaces its previous record
too, but a subscriber follows many markets, and a change of one market says nothing of
the others: so each subscriber has a bounded queue of changes instead of a one-message
slot, with the same rules otherwise. The read model calls :meth:`OddsHub.changed` after
each event it applies (:meth:`~oddstream.projections.odds_view.OddsView.on_market_changed`,
as the tote view's ``on_race_changed`` feeds the boards); the hub appends the record (an
immutable object shared by every subscriber, never copied) to each matching queue and
wakes its reader. Nobody waits for a subscriber:

- a subscriber that keeps up gets every change, in log order;
- one that falls ``max_pending`` changes behind is **coalesced**: its queue keeps only
  the latest record of each market, still in log order (a market's record is its whole
  state, so a client that missed intermediate prices is up to date with the latest);
- one still more than half ``max_pending`` markets behind after that is **dropped**: its
  stream ends with :class:`SubscriberTooSlow` (a client resubscribes with
  ``current: true`` to get every market's state again).

Memory per subscriber is at most ``max_pending`` references, and at most
``max_subscribers`` subscribe at once (:class:`TooManySubscribers` past it).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ..application.errors import ApiError
from ..projections.odds_view import OddsRecord, OddsView

#: changes queued for one subscriber before its queue is coalesced
MAX_PENDING = 1000
#: subscribers of one process at once
MAX_SUBSCRIBERS = 10_000


class SubscriberTooSlow(ApiError):
    """A subscriber fell too far behind and was dropped."""

    def __init__(self, pending: int) -> None:
        super().__init__(
            503,
            "subscriber_too_slow",
            f"dropped: {pending} markets' changes were waiting for this subscriber; "
            "subscribe again (current: true gets every market's state)",
        )


class TooManySubscribers(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            503, "too_many_subscribers", f"this process serves at most {limit} subscriptions"
        )


@dataclass(frozen=True, slots=True)
class OddsFilter:
    """Which markets a subscriber follows: all, a game's or one market."""

    game_id: str | None = None
    external_id: str | None = None

    def matches(self, record: OddsRecord) -> bool:
        return (self.game_id is None or record.game_id == self.game_id) and (
            self.external_id is None or record.external_id == self.external_id
        )


@dataclass(eq=False, slots=True)
class OddsSubscriber:
    """One subscription: the markets' states it asked for first, then its changes."""

    filter: OddsFilter
    max_pending: int
    #: the markets' records as they were when it subscribed (``current: true``)
    first: deque[OddsRecord] = field(default_factory=deque)
    pending: deque[OddsRecord] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: set when dropped: the error its stream ends with
    dropped: SubscriberTooSlow | None = None
    coalesced: int = 0

    def put(self, record: OddsRecord) -> None:
        if self.dropped is not None:
            return
        self.pending.append(record)
        if len(self.pending) > self.max_pending:
            self._coalesce()
        self.ready.set()

    def _coalesce(self) -> None:
        """Keep the latest record of each market, in the order of their positions."""
        latest: dict[str, OddsRecord] = {}
        for record in self.pending:
            latest.pop(record.external_id, None)  # re-inserted last: log order kept
            latest[record.external_id] = record
        self.coalesced += len(self.pending) - len(latest)
        self.pending = deque(latest.values())
        if len(self.pending) > self.max_pending // 2:
            self.dropped = SubscriberTooSlow(len(self.pending))
            self.pending.clear()
            self.first.clear()

    def take(self) -> OddsRecord | None:
        """The next record to send, or ``None`` when there is none yet."""
        if self.first:
            return self.first.popleft()
        if self.pending:
            return self.pending.popleft()
        return None


class OddsHub:
    """Fans the markets' changes out to live subscribers."""

    def __init__(
        self,
        view: OddsView,
        max_subscribers: int = MAX_SUBSCRIBERS,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._view = view
        self._max_subscribers = max_subscribers
        self._max_pending = max_pending
        self._subscribers: set[OddsSubscriber] = set()
        #: the highest position pushed: the replay of a rebuild pushes nothing again
        self._pushed = 0
        view.on_market_changed(self.changed)

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def changed(self, record: OddsRecord) -> None:
        """A market's new record (called by the read model, in log order)."""
        if record.position <= self._pushed:
            return
        self._pushed = record.position
        for sub in self._subscribers:
            if sub.filter.matches(record):
                sub.put(record)

    def attach(self, filter: OddsFilter, current: bool) -> OddsSubscriber:
        """Register a subscriber. With ``current``, it gets first the record of every
        market its filter matches as the read model holds them now (oldest market
        first), then every change after them: both taken in this one step on the event
        loop, so nothing is missed or sent twice between them."""
        if len(self._subscribers) >= self._max_subscribers:
            raise TooManySubscribers(self._max_subscribers)
        sub = OddsSubscriber(filter, self._max_pending)
        if current:
            if filter.external_id is not None:
                found = self._view.get(filter.external_id)
                records = [found] if found is not None and filter.matches(found) else []
            else:
                records = [r for r in self._view.records() if filter.matches(r)]
            sub.first.extend(records)
            if records:
                sub.ready.set()
        self._subscribers.add(sub)
        return sub

    def detach(self, sub: OddsSubscriber) -> None:
        self._subscribers.discard(sub)

    async def follow(self, filter: OddsFilter, current: bool) -> AsyncIterator[OddsRecord]:
        """The records to push to one subscriber, until it goes (or is dropped: then
        :class:`SubscriberTooSlow` is raised)."""
        sub = self.attach(filter, current)
        try:
            while True:
                await sub.ready.wait()
                sub.ready.clear()
                while (record := sub.take()) is not None:
                    yield record
                if sub.dropped is not None:
                    raise sub.dropped
        finally:
            self.detach(sub)
