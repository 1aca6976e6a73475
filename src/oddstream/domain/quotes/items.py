"""The items of a quote over time: which product × rate was in the quote, and when.

Every ``QuoteProductsUpdated`` carries the quote's whole list of products. An *item* is
one rate of one product (a product sent with no rates is one item of its own, with no
rate), identified across updates by ``(product id, rate key)``: product ids are unique
in an update and rate keys unique in a product (the decoder refuses duplicates), and a
product's ``key`` says what kind of product it is, so two products of one kind stay
two items.

Each item's history is a run of *intervals* ``[valid_from, valid_to)``, half-open, with
``valid_to = None`` while it is open:

- an item that appears opens an interval at the update's time;
- an item absent from a later update has its interval closed at that update's time;
- an item whose values change (its rate's or its product's: totals, status, name …)
  has its interval closed and a new one opened at that time, so each interval holds the
  values that were true throughout it (a "type 2" history);
- an item unchanged by an update keeps its interval open.

So one item's intervals never overlap, and the items active at a time ``t`` (``valid_from
<= t < valid_to``) are exactly those of the latest update at or before ``t``. Two updates
at one time leave the first one's departing items a zero-length interval ``[t, t)``:
recorded, never active. What "time" is belongs to the caller — the log's position or
recorded time, anything ordered — as ``QuoteProductsUpdated`` carries no time of its
own. The times of a quote's events must not go back.

A ``QuoteStarted`` changes no items, and updates may come without one: whether an update
for a quote that has not started is held or dead-lettered is for the ingest to decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from .events import Product, QuoteEvent, QuoteProductsUpdated, QuoteStarted, Rate

#: An item's identity within its quote: (product id, rate key, or None for a product
#: sent without rates).
ItemKey = tuple[str, str | None]


class _Ordered(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...


T = TypeVar("T", bound=_Ordered)

OUT_OF_ORDER = "out_of_order"
OTHER_QUOTE = "other_quote"


class QuoteHistoryError(ValueError):
    """Events that cannot be one quote's history in order; ``code`` is stable
    (:data:`OUT_OF_ORDER`, :data:`OTHER_QUOTE`)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class QuoteItem(msgspec.Struct, frozen=True, kw_only=True):
    """One item as an update describes it: the product (its ``rates`` left out) and the
    rate, or ``rate=None`` for a product without rates."""

    quote_id: str
    product: Product
    rate: Rate | None

    @property
    def key(self) -> ItemKey:
        return (self.product.id, None if self.rate is None else self.rate.key)


def items_of(update: QuoteProductsUpdated) -> dict[ItemKey, QuoteItem]:
    """The update's items by key, in the order it lists them."""
    items: dict[ItemKey, QuoteItem] = {}
    for product in update.products:
        bare = msgspec.structs.replace(product, rates=())
        for rate in product.rates or (None,):
            item = QuoteItem(quote_id=update.quote_id, product=bare, rate=rate)
            items[item.key] = item
    return items


@dataclass(frozen=True)
class ItemInterval(Generic[T]):
    """An item and the half-open interval ``[valid_from, valid_to)`` in which it was in
    the quote with these values; ``valid_to`` is None while it still is."""

    item: QuoteItem
    valid_from: T
    valid_to: T | None = None

    @property
    def key(self) -> ItemKey:
        return self.item.key

    def active_at(self, at: T) -> bool:
        """Whether the item was in the quote, with these values, at ``at``."""
        return not at < self.valid_from and (self.valid_to is None or at < self.valid_to)


@dataclass(frozen=True)
class ItemChanges(Generic[T]):
    """What one event did: intervals it closed (now with ``valid_to``) and opened."""

    closed: tuple[ItemInterval[T], ...] = ()
    opened: tuple[ItemInterval[T], ...] = ()


class ItemTimeline(Generic[T]):
    """One quote's items, followed event by event: what a sink keeps per quote to
    turn each update into closed and opened history rows without replaying the quote."""

    def __init__(self, quote_id: str | None = None) -> None:
        #: the quote followed (set by the first event when not given)
        self.quote_id = quote_id
        #: the open interval of each item in the quote now, in the order they opened
        self.open: dict[ItemKey, ItemInterval[T]] = {}
        #: the time of the last event applied
        self.last_at: T | None = None

    def apply(self, at: T, event: QuoteEvent) -> ItemChanges[T]:
        """Apply the quote's next event, at time ``at`` (not before the last one's)."""
        quote_id = event.id if isinstance(event, QuoteStarted) else event.quote_id
        if self.quote_id is None:
            self.quote_id = quote_id
        elif quote_id != self.quote_id:
            raise QuoteHistoryError(
                OTHER_QUOTE, f"an event of quote {quote_id!r} in quote {self.quote_id!r}'s history"
            )
        if self.last_at is not None and at < self.last_at:
            raise QuoteHistoryError(
                OUT_OF_ORDER, f"an event at {at!r} after one at {self.last_at!r}"
            )
        self.last_at = at
        if isinstance(event, QuoteStarted):
            return ItemChanges()
        current = items_of(event)
        closed = []
        for key, interval in list(self.open.items()):
            if current.get(key) != interval.item:
                closed.append(replace(interval, valid_to=at))
                del self.open[key]
        opened = []
        for key, item in current.items():
            if key not in self.open:
                self.open[key] = interval = ItemInterval(item=item, valid_from=at)
                opened.append(interval)
        return ItemChanges(closed=tuple(closed), opened=tuple(opened))

    def active(self) -> list[QuoteItem]:
        """The items in the quote now."""
        return [interval.item for interval in self.open.values()]


def item_intervals(events: Iterable[tuple[T, QuoteEvent]]) -> list[ItemInterval[T]]:
    """Every interval of one quote's items, from its events in order as ``(time,
    event)``: closed ones with their ``valid_to``, open ones with None; in the order
    they opened."""
    timeline: ItemTimeline[T] = ItemTimeline()
    found: dict[int, ItemInterval[T]] = {}  # by opening order
    opening: dict[ItemKey, int] = {}
    for at, event in events:
        changes = timeline.apply(at, event)
        for interval in changes.closed:
            found[opening.pop(interval.key)] = interval
        for interval in changes.opened:
            opening[interval.key] = len(found)
            found[len(found)] = interval
    return [found[i] for i in range(len(found))]


def active_at(intervals: Iterable[ItemInterval[T]], at: T) -> Iterator[QuoteItem]:
    """The items of ``intervals`` that were in the quote at ``at``."""
    return (interval.item for interval in intervals if interval.active_at(at))
