"""The log's quote events as a SQL sink's records, and the sink that runs them.

:class:`QuoteSource` is a :class:`~oddstream.sinks.RecordSource`: it follows the quote
streams (``quote-<id>``, ``quotes.QuoteStarted`` / ``quotes.QuoteProductsUpdated``)
and maps each event with a bounded :class:`~.mapping.QuoteTables` (the ``max_quotes``
quotes used last). A quote it does not hold — never seen by this process, or dropped to
stay within the bound — is rebuilt first from its own stream, read from the event store
up to the event being mapped (none to read for a quote's first event). So a restart
holds nothing and replays nothing: each quote is rebuilt when its next event comes.

**Each event mapped once.** Mapping changes the quotes' state, so the records of an
event are kept from the first time it is mapped until the target holds them: a batch
the runner gives again (the target was unavailable, a write failed part-way) gets the
records of the first time, never a second mapping. :class:`QuoteTablesSink` (the
:class:`~oddstream.sinks.SinkConsumer` for this source) drops them once its cursor is
past their event, and forgets everything when the runner resets it or follows on from
another writer's position (the state it holds would miss that writer's events).

A stored event the code cannot read (a version newer than the code) is an item with a
refusal: the sink dead-letters it (``errors.tolerance=all``; the payload is the stored
event) or stops at it (``none``). A later rebuild of its quote passes over it too, as
the sink did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import orjson

from ...consumers import Batch, Subscription
from ...domain.quotes.errors import BAD_VALUE
from ...domain.quotes.stored import STORED_TYPES, STREAM_CATEGORY, stream_of
from ...eventstore import EventStore, RecordedEvent
from ...runtime.deadletters import DeadLetterStore, Refusal
from ..config import JdbcSinkConfig
from ..consumer import EventItems, SinkConsumer
from ..schema import SinkRecord
from .mapping import QuoteMappingError, QuoteTables

#: how many quotes' states a source holds unless told otherwise
DEFAULT_MAX_QUOTES = 10_000
#: a rebuild reads its quote's stream this many events at a time
REBUILD_PAGE = 256


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON")


class QuoteSource:
    """The records of the analysts' quote tables, from the log's quote events.

    ``store`` is the log the runner follows (a quote's stream is read from it to
    rebuild the quote); ``release`` and ``max_quotes`` are :class:`QuoteTables`'."""

    subscription = Subscription(category=STREAM_CATEGORY, types=frozenset(STORED_TYPES.values()))

    def __init__(
        self,
        store: EventStore,
        *,
        release: Iterable[str] = (),
        max_quotes: int = DEFAULT_MAX_QUOTES,
    ) -> None:
        self.store = store
        self.release = tuple(release)
        self.max_quotes = max_quotes
        self.tables = QuoteTables(release=self.release, max_quotes=max_quotes)
        # the items of each event mapped whose records the target may not hold yet
        self._mapped: dict[int, EventItems] = {}
        #: quotes rebuilt from their streams, and the events read to do it
        self.rebuilds = 0
        self.rebuilt_events = 0

    @property
    def pending(self) -> int:
        """Events mapped whose records the target may not hold yet (kept for retries)."""
        return len(self._mapped)

    async def items(self, event: RecordedEvent) -> EventItems:
        found = self._mapped.get(event.position)
        if found is not None:
            return found  # given again: the records of the first time
        quote_id = event.data.get("quote_id")
        if isinstance(quote_id, str) and event.stream_id != stream_of(quote_id):
            # its quote's stream is another: rebuilding from this one would be wrong
            refusal = Refusal(
                BAD_VALUE,
                "$.quote_id",
                f"the quote event at log position {event.position} is of quote "
                f"{quote_id!r}, stored in stream {event.stream_id!r}",
            )
            items = _refused(event, refusal)
            self._mapped[event.position] = items
            return items
        if isinstance(quote_id, str) and not self.tables.holds(quote_id):
            await self._rebuild(quote_id, event)
        try:
            records = self.tables.map(event)
        except QuoteMappingError as exc:
            cause = exc.cause
            refusal = Refusal(cause.reason, cause.path, str(exc))
            items = _refused(event, refusal)
        else:
            items = EventItems(records, {}, partial(_letter, records, event.position))
        self._mapped[event.position] = items
        return items

    async def _rebuild(self, quote_id: str, event: RecordedEvent) -> None:
        """Rebuild ``quote_id`` from its events before ``event`` (its stream's versions
        below ``event.version``), read a page at a time."""
        rebuilt = self.tables.rebuild(quote_id)
        stream = stream_of(quote_id)
        version = 1
        while version < event.version:
            page = await self.store.read_stream(
                stream, from_version=version, limit=min(REBUILD_PAGE, event.version - version)
            )
            if not page:
                break
            for earlier in page:
                if earlier.position >= event.position:
                    break
                # one the code cannot read, or of another quote, was dead-lettered when
                # it came (or the sink stopped at it): passed over here too
                if earlier.data.get("quote_id") == quote_id:
                    with contextlib.suppress(QuoteMappingError):
                        rebuilt.apply(earlier)
                self.rebuilt_events += 1
            version = page[-1].version + 1
        self.tables.restore(rebuilt)
        self.rebuilds += 1

    def forget_through(self, position: int) -> None:
        """The target holds every event up to ``position``: drop their records."""
        if self._mapped and min(self._mapped) <= position:
            for kept in [p for p in self._mapped if p <= position]:
                del self._mapped[kept]

    def forget_all(self) -> None:
        """Drop every quote's state and every record kept (the runner resets the sink,
        or it follows on from another writer's position)."""
        self._mapped.clear()
        self.tables = QuoteTables(release=self.release, max_quotes=self.max_quotes)


def _refused(event: RecordedEvent, refusal: Refusal) -> EventItems:
    """An event the code cannot read: one item, refused; its dead letter is the event."""
    return EventItems([None], {0: refusal}, partial(_event_letter, event))


def _event_letter(event: RecordedEvent, index: int) -> tuple[bytes, Mapping[str, str]]:
    return _event_payload(event), _event_context(event)


def _letter(
    records: Sequence[SinkRecord], position: int, index: int
) -> tuple[bytes, Mapping[str, str]]:
    """The dead letter of the ``index``-th record of the event at ``position``."""
    record = records[index]
    payload = orjson.dumps(
        {"table": record.topic, "key": record.key, "value": record.value, "log_position": position},
        default=_json_default,
        option=orjson.OPT_NON_STR_KEYS,
    )
    context = {"table": record.topic, "log_position": str(position)}
    if isinstance(record.key, Mapping) and "quote_id" in record.key:
        context["quote_id"] = str(record.key["quote_id"])
    elif isinstance(record.value, Mapping) and "quote_id" in record.value:
        context["quote_id"] = str(record.value["quote_id"])
    return payload, context


def _event_payload(event: RecordedEvent) -> bytes:
    return orjson.dumps(
        {
            "stream": event.stream_id,
            "position": event.position,
            "type": event.type,
            "schema_version": event.schema_version,
            "data": dict(event.data),
        },
        default=_json_default,
    )


def _event_context(event: RecordedEvent) -> dict[str, str]:
    return {"stream": event.stream_id, "log_position": str(event.position)}


class QuoteTablesSink(SinkConsumer):
    """A :class:`~oddstream.sinks.SinkConsumer` writing a :class:`QuoteSource`'s
    records: it drops the records kept for retries once the target holds them, and
    forgets the quotes' states when the runner resets it or follows on from another
    writer's position."""

    def __init__(
        self,
        connector: str,
        config: JdbcSinkConfig,
        source: QuoteSource,
        dead_letters: DeadLetterStore | None = None,
        **options: Any,
    ) -> None:
        super().__init__(connector, config, source, dead_letters, **options)
        self.quotes = source

    async def handle(self, batch: Batch) -> None:
        self.quotes.forget_through(self.cursor[0])
        try:
            await super().handle(batch)
        finally:
            self.quotes.forget_through(self.cursor[0])

    async def reset(self) -> None:
        self.quotes.forget_all()

    async def resume_from(self, position: int) -> bool:
        # another writer wrote up to ``position``: the states held here miss its events
        # (rebuilt from the streams on their quotes' next events)
        self.quotes.forget_all()
        return True


__all__ = ["DEFAULT_MAX_QUOTES", "QuoteSource", "QuoteTablesSink"]
