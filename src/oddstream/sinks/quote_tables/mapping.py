"""Quote events from the log → the analysts' tables' records. Pure: no I/O.

:class:`QuoteTables` follows the log's quote events in order — each with its log
position and recorded time — and turns each into :class:`~oddstream.sinks.SinkRecord`
upserts for ``quotes``, ``quote_items`` and ``quote_item_history``
(:mod:`.tables`). It keeps, per quote, the analysts' view of its start and its
:class:`~oddstream.domain.quotes.ItemTimeline`, so an update becomes the history rows it
closes and opens without replaying the quote.

**Time.** ``QuoteProductsUpdated`` carries no time, so an update is valid from the time
the log recorded it (``recorded_at``), cut to the millisecond, and never earlier than
the quote's previous event (a store's clock going back does not reorder a quote: the
log's order wins). Within one time, the log position orders events.

**Bounded state.** Unbounded (``max_quotes=None``), the state holds every quote seen.
With ``max_quotes=N`` it holds the ``N`` quotes used last (an LRU), and a quote that is
not held must be restored before its next event is mapped: :meth:`QuoteTables.rebuild`
folds the quote's own earlier events (its stream, read by the caller) into a fresh
state, records dropped, and :meth:`QuoteTables.restore` puts it back. A quote's state is
a function of its own events only, so a rebuilt quote maps its next event exactly as
the unbounded mapping would. :class:`~.source.QuoteSource` does the reading; a restart
starts with nothing held and rebuilds each quote when its next event comes.

**Each event once.** Mapping an event changes the state, so mapping it again would find
nothing changed and give no history rows: a write that failed is retried with the
records already mapped, never by mapping the events again. An event at or before the
last position mapped is refused (:class:`QuoteReplayError`), and :meth:`QuoteTables.map_batch`
is all or nothing: when one event cannot be mapped, the state is as before the batch.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import msgspec

from oddstream.domain.quotes import (
    AnalystQuote,
    InvalidQuoteEvent,
    ItemInterval,
    ItemTimeline,
    QuoteEvent,
    QuoteItem,
    QuoteProductsUpdated,
    QuoteStarted,
    analyst_view,
)
from oddstream.domain.quotes.items import ItemChanges
from oddstream.domain.quotes.stored import STORED_TYPES, from_stored, quote_id_of

from ..errors import SinkError
from ..schema import SinkRecord
from .tables import (
    HISTORY_KEY,
    HISTORY_VALUE,
    ITEM_KEY,
    NO_RATE,
    QUOTE_ITEM_HISTORY,
    QUOTE_ITEMS,
    QUOTE_ITEMS_VALUE,
    QUOTES,
    QUOTES_KEY,
    TOPICS,
    quotes_value_schema,
    released_column,
)

_STORED = frozenset(STORED_TYPES.values())
_JSON = msgspec.json.Encoder(decimal_format="number")


class LoggedEvent(Protocol):
    """An event as the log holds it (:class:`~oddstream.eventstore.RecordedEvent` is one)."""

    @property
    def position(self) -> int: ...
    @property
    def recorded_at(self) -> datetime: ...
    @property
    def type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class LoggedQuoteEvent:
    """A logged event as plain values (samples and tests; the runner has the store's)."""

    position: int
    recorded_at: datetime
    type: str
    schema_version: int
    data: Mapping[str, Any]


class LogTime(NamedTuple):
    """When an event takes effect: its time, then its log position (ordered as a pair)."""

    at: datetime
    position: int


class QuoteMappingError(SinkError):
    """A stored quote event that cannot be read back (``cause``: the codec's
    :class:`~oddstream.domain.quotes.InvalidQuoteEvent`, e.g. a version newer than the
    code), at log ``position``."""

    def __init__(self, position: int, cause: InvalidQuoteEvent) -> None:
        super().__init__(f"the quote event at log position {position}: {cause}")
        self.position = position
        self.cause = cause


class QuoteReplayError(SinkError):
    """A quote event at or before the last log position the mapping followed: mapping it
    again would lose its rows (the state has it already). Retry a failed write with the
    records mapped the first time, or rebuild the mapping (:class:`QuoteTables`)."""

    def __init__(self, position: int, last: int) -> None:
        super().__init__(
            f"the quote event at log position {position} is not after the last one "
            f"mapped ({last}): map each event once, retry a write with its records"
        )
        self.position = position
        self.last = last


class QuoteStateMissing(SinkError):
    """A bounded mapping (``max_quotes``) was given an event of a quote it does not hold:
    restore the quote from its stream first (:meth:`QuoteTables.rebuild`)."""

    def __init__(self, quote_id: str, position: int) -> None:
        super().__init__(
            f"the quote event at log position {position}: quote {quote_id!r} is not held "
            "by this bounded mapping; rebuild it from its stream first"
        )
        self.quote_id = quote_id
        self.position = position


def to_millisecond(at: datetime) -> datetime:
    """``at`` in UTC, cut to the millisecond (a naive time is taken as UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


@dataclass
class _Quote:
    timeline: ItemTimeline[LogTime] = field(default_factory=ItemTimeline)
    view: AnalystQuote | None = None

    def copy(self) -> _Quote:
        """A copy whose changes leave this one as it is (intervals and views are
        immutable; the timeline's open intervals are not)."""
        timeline: ItemTimeline[LogTime] = ItemTimeline(self.timeline.quote_id)
        timeline.open = dict(self.timeline.open)
        timeline.last_at = self.timeline.last_at
        return _Quote(timeline, self.view)

    def advance(
        self, logged: LoggedEvent, event: QuoteEvent, release: tuple[str, ...]
    ) -> tuple[LogTime, ItemChanges[LogTime]]:
        """Apply the quote's next event: when it takes effect, and what it changed."""
        at = to_millisecond(logged.recorded_at)
        last = self.timeline.last_at
        if last is not None and at < last.at:
            at = last.at  # the store's clock went back: the log's order wins
        when = LogTime(at, logged.position)
        changes = self.timeline.apply(when, event)
        if isinstance(event, QuoteStarted):
            self.view = analyst_view(event, release=release)
        return when, changes


def _decode(logged: LoggedEvent) -> QuoteEvent:
    try:
        return from_stored(logged.type, logged.schema_version, logged.data)
    except InvalidQuoteEvent as exc:
        raise QuoteMappingError(logged.position, exc) from exc


class QuoteRebuild:
    """One quote's state being rebuilt from its earlier events
    (:meth:`QuoteTables.rebuild`); :meth:`QuoteTables.restore` puts it in the mapping."""

    def __init__(self, quote_id: str, release: tuple[str, ...]) -> None:
        self.quote_id = quote_id
        self.release = release
        self.state = _Quote(ItemTimeline(quote_id))
        #: events folded in
        self.events = 0

    def apply(self, logged: LoggedEvent) -> None:
        """Fold the quote's next earlier event in (in its stream's order); events of
        other types are passed over. :class:`QuoteMappingError` for one the code cannot
        read, leaving the state as it was (the caller decides whether to pass over it,
        as the sink did when it dead-lettered it)."""
        if logged.type not in _STORED:
            return
        event = _decode(logged)
        if quote_id_of(event) != self.quote_id:
            raise ValueError(f"an event of another quote in quote {self.quote_id!r}'s rebuild")
        self.state.advance(logged, event, self.release)
        self.events += 1


class QuoteTables:
    """Maps the log's quote events, in log order, to the three tables' records.

    ``release``: personal contact fields (wire names) the ``quotes`` table gets, each
    as a ``contact_…`` text column; none by default (:func:`analyst_view`).

    ``max_quotes``: hold at most this many quotes' states, the ones used last (see
    "Bounded state" above); ``None``: every quote's."""

    def __init__(self, *, release: Iterable[str] = (), max_quotes: int | None = None) -> None:
        if isinstance(release, str):
            raise TypeError("release is a collection of field names, not one string")
        if max_quotes is not None and max_quotes < 1:
            raise ValueError("max_quotes is at least 1 (or None: unbounded)")
        self.release = tuple(dict.fromkeys(release))
        self.max_quotes = max_quotes
        self.quotes_schema = quotes_value_schema(self.release)
        self._quotes: OrderedDict[str, _Quote] = OrderedDict()
        #: log events of other types passed to :meth:`map` (ignored)
        self.ignored = 0
        #: quotes' states dropped to stay within ``max_quotes``
        self.evicted = 0
        #: the log position of the last quote event mapped (None before the first)
        self.last_position: int | None = None

    @property
    def quote_count(self) -> int:
        """How many quotes' states the mapping holds."""
        return len(self._quotes)

    def holds(self, quote_id: str) -> bool:
        """Whether the mapping holds ``quote_id``'s state (a bounded mapping must be
        given it by :meth:`restore` before the quote's next event otherwise)."""
        return quote_id in self._quotes

    def rebuild(self, quote_id: str) -> QuoteRebuild:
        """A fresh state for ``quote_id``, to fold its events before the one to map
        into (:meth:`QuoteRebuild.apply`), then :meth:`restore`. A quote with no earlier
        event is restored with nothing folded in."""
        return QuoteRebuild(quote_id, self.release)

    def restore(self, rebuilt: QuoteRebuild) -> None:
        """Hold a rebuilt quote's state (as the one used last), dropping the state of
        the quote used least recently when past ``max_quotes``."""
        if rebuilt.release != self.release:
            raise ValueError("a rebuild made for another release of personal fields")
        self._quotes[rebuilt.quote_id] = rebuilt.state
        self._quotes.move_to_end(rebuilt.quote_id)
        self._trim()

    def _trim(self) -> None:
        if self.max_quotes is None:
            return
        while len(self._quotes) > self.max_quotes:
            self._quotes.popitem(last=False)
            self.evicted += 1

    def map(self, logged: LoggedEvent) -> list[SinkRecord]:
        """The records of one logged event, in the order to write them; none for an
        event that is not a quote event. Each quote event once, in log order
        (:class:`QuoteReplayError` otherwise); on an error the state is unchanged."""
        return self._map(logged, None)

    def _map(self, logged: LoggedEvent, saved: dict[str, _Quote | None] | None) -> list[SinkRecord]:
        """:meth:`map`; with ``saved``, a quote's state is copied before its first
        change and the original kept there, so that the batch can be undone."""
        if logged.type not in _STORED:
            self.ignored += 1
            return []
        if self.last_position is not None and logged.position <= self.last_position:
            raise QuoteReplayError(logged.position, self.last_position)
        event = _decode(logged)
        quote_id = quote_id_of(event)
        state = self._quotes.get(quote_id)
        if state is None and self.max_quotes is not None:
            raise QuoteStateMissing(quote_id, logged.position)
        if saved is not None and quote_id not in saved:
            saved[quote_id] = state
            if state is not None:
                state = self._quotes[quote_id] = state.copy()
        if state is None:
            state = self._quotes[quote_id] = _Quote(ItemTimeline(quote_id))
        elif self.max_quotes is not None:
            self._quotes.move_to_end(quote_id)
        when, changes = state.advance(logged, event, self.release)
        records: list[SinkRecord] = []
        if isinstance(event, QuoteProductsUpdated):
            for interval in changes.closed:
                records.append(_history(interval))
                if interval.key not in state.timeline.open:  # removed, not re-valued
                    records.append(_item(interval, when))
            for interval in changes.opened:
                records.append(_history(interval))
                records.append(_item(interval, when))
        if state.view is not None:
            # an update without a start (the ingest dead-letters those) has no row here
            records.append(self._quote_row(state.view, state.timeline, when))
        self.last_position = logged.position
        return records

    def map_batch(self, logged: Iterable[LoggedEvent]) -> list[SinkRecord]:
        """The records of a batch of logged events, grouped by table (in each table in
        log order, so a key's last write wins): fewer, larger statements per batch. The
        tables share no constraint, so the grouping changes no outcome."""
        by_topic: dict[str, list[SinkRecord]] = {topic: [] for topic in TOPICS}
        saved: dict[str, _Quote | None] = {}
        last_position, ignored = self.last_position, self.ignored
        try:
            for event in logged:
                for record in self._map(event, saved):
                    by_topic[record.topic].append(record)
        except BaseException:
            # all or nothing: the caller may set the bad event aside and map the batch
            # again, which must find the state as it was
            for quote_id, state in saved.items():
                if state is None:
                    self._quotes.pop(quote_id, None)
                else:
                    self._quotes[quote_id] = state
            self._trim()
            self.last_position, self.ignored = last_position, ignored
            raise
        return [record for topic in TOPICS for record in by_topic[topic]]

    def _quote_row(
        self, view: AnalystQuote, timeline: ItemTimeline[LogTime], when: LogTime
    ) -> SinkRecord:
        items = timeline.active()
        industry = view.industry[0] if view.industry else None
        value: dict[str, Any] = {
            "reference": view.reference,
            "started_at": to_millisecond(view.started_at),
            "is_first_quote": view.is_first_quote,
            "business_type": view.business_type,
            "industry_id": None if industry is None else str(industry.id),
            "industry_label": None
            if industry is None
            else (industry.label or industry.text or industry.value),
            "industries_json": _JSON.encode(
                [
                    {"id": e.id, "value": e.value, "text": e.text, "label": e.label}
                    for e in view.industry
                ]
            ).decode()
            if view.industry
            else None,
            "turnover_pence": view.turnover_pence,
            "employee_count": view.employee_count,
            "effective_date": view.effective_date,
            "products_count": len({item.product.id for item in items}),
            "items_count": len(items),
            "last_updated_at": when.at,
            "last_position": when.position,
        }
        for name in self.release:
            released = view.personal.get(name)
            value[released_column(name)] = (
                released
                if released is None or isinstance(released, str)
                else _JSON.encode(released).decode()
            )
        return SinkRecord(
            QUOTES,
            value,
            self.quotes_schema,
            key={"quote_id": view.quote_id},
            key_schema=QUOTES_KEY,
        )


def _item_values(item: QuoteItem) -> dict[str, Any]:
    product, rate, agency = item.product, item.rate, item.product.agency_product
    return {
        "product_key": product.key,
        "product_name": product.name,
        "product_total_pence": product.total_pence,
        "product_ipt_pence": product.ipt_pence,
        "agency_product_guid": None if agency is None else agency.guid,
        "agency_product_name": None if agency is None else agency.name,
        "rate_description": None if rate is None else rate.description,
        "is_offered": None if rate is None else rate.is_offered,
        "status": None if rate is None else rate.status,
        "base_premium_pence": None if rate is None else rate.base_premium_pence,
        "loading_pence": None if rate is None else rate.loading_pence,
        "discount_pence": None if rate is None else rate.discount_pence,
        "ipt_pence": None if rate is None else rate.ipt_pence,
        "commission_pence": None if rate is None else rate.commission_pence,
        "total_pence": None if rate is None else rate.total_pence,
    }


def _rate_key(item: QuoteItem) -> str:
    return NO_RATE if item.rate is None else item.rate.key


def _history(interval: ItemInterval[LogTime]) -> SinkRecord:
    item = interval.item
    closed = interval.valid_to
    value = {
        "quote_id": item.quote_id,
        **_item_values(item),
        "valid_from": interval.valid_from.at,
        "valid_to": None if closed is None else closed.at,
        "closed_position": None if closed is None else closed.position,
    }
    key = {
        "opened_position": interval.valid_from.position,
        "product_id": item.product.id,
        "rate_key": _rate_key(item),
    }
    return SinkRecord(QUOTE_ITEM_HISTORY, value, HISTORY_VALUE, key=key, key_schema=HISTORY_KEY)


def _item(interval: ItemInterval[LogTime], when: LogTime) -> SinkRecord:
    """The ``quote_items`` row after ``interval`` opened (current) or closed for good
    (removed: its last values, ``removed_at`` set)."""
    item = interval.item
    removed = interval.valid_to
    value = {
        **_item_values(item),
        "is_current": removed is None,
        "valid_from": interval.valid_from.at,
        "removed_at": None if removed is None else removed.at,
        "last_position": when.position,
    }
    key = {"quote_id": item.quote_id, "product_id": item.product.id, "rate_key": _rate_key(item)}
    return SinkRecord(QUOTE_ITEMS, value, QUOTE_ITEMS_VALUE, key=key, key_schema=ITEM_KEY)


def sink_settings(
    connection_url: str,
    *,
    table_name_format: str = "${topic}",
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A JDBC sink configuration (Connect names) for the quote tables: the three topics,
    upserts keyed by each record's key, tables created and evolved, times in UTC.
    ``overrides`` adds or replaces settings by Connect name (``connection.user`` …),
    except ``db.timezone``: the tables hold UTC, as the queries' ``:t`` is, and local
    times would go back at a daylight-saving change (MariaDB's DATETIME and SQLite's
    text keep no offset), misordering the intervals."""
    timezone = (overrides or {}).get("db.timezone", "UTC")
    if timezone != "UTC":
        raise ValueError(f"the quote tables hold UTC times, not db.timezone={timezone!r}")
    config = {
        "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
        "connection.url": connection_url,
        "topics": ",".join(TOPICS),
        "table.name.format": table_name_format,
        "insert.mode": "upsert",
        "pk.mode": "record_key",
        "auto.create": "true",
        "auto.evolve": "true",
        "db.timezone": "UTC",
    }
    config.update(overrides or {})
    return config
