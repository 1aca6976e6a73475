"""Items of a quote over time: worked examples, refusals, and (hypothesis) intervals that
never overlap for one item, with the items active at any time exactly those of the
latest update at or before it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oddstream.domain.quotes import (
    ItemChanges,
    ItemInterval,
    ItemTimeline,
    Product,
    QuoteHistoryError,
    QuoteProductsUpdated,
    QuoteStarted,
    Rate,
    active_at,
    decode_quote_event,
    item_intervals,
    items_of,
)

from .samples import PRODUCTS_UPDATED, QUOTE_ID, QUOTE_STARTED

Q = "q-1"


def rate(key: str, total: int = 100, status: str = "Quoted") -> Rate:
    return Rate(
        key=key,
        is_offered=True,
        base_premium_pence=total,
        loading_pence=0,
        discount_pence=0,
        ipt_pence=0,
        commission_pence=0,
        total_pence=total,
        status=status,
    )


def product(pid: str, *rates: Rate, key: str = "pl", total: int = 100) -> Product:
    return Product(id=pid, key=key, name=pid.upper(), total_pence=total, ipt_pence=0, rates=rates)


def update(*products: Product, quote_id: str = Q) -> QuoteProductsUpdated:
    return QuoteProductsUpdated(quote_id=quote_id, products=products)


def keyed(
    intervals: list[ItemInterval[int]],
) -> list[tuple[tuple[str, str | None], int, int | None]]:
    return [(i.key, i.valid_from, i.valid_to) for i in intervals]


def test_items_of_the_sample_update():
    event = decode_quote_event(PRODUCTS_UPDATED)
    assert isinstance(event, QuoteProductsUpdated)
    items = items_of(event)
    assert list(items) == [
        ("prod-pl-1", "pl-1m"),
        ("prod-pl-1", "pl-2m"),
        ("prod-pl-1", "pl-5m"),
        ("prod-el-1", "el-10m"),
    ]
    item = items[("prod-pl-1", "pl-2m")]
    assert item.quote_id == QUOTE_ID
    assert item.product.rates == ()  # the row carries its own rate, not its siblings
    assert item.product.total_pence == 123456
    assert item.rate is not None
    assert item.rate.total_pence == 30


def test_a_product_without_rates_is_one_item():
    items = items_of(update(product("p1")))
    assert list(items) == [("p1", None)]
    assert items[("p1", None)].rate is None


def test_worked_example_of_a_quote_journey():
    started = decode_quote_event(QUOTE_STARTED)
    assert isinstance(started, QuoteStarted)
    t = [datetime(2024, 3, 14, 9, 30 + minute, tzinfo=UTC) for minute in range(6)]
    u1 = update(product("pl", rate("1m"), rate("2m")), quote_id=QUOTE_ID)
    # employers' liability added
    u2 = update(
        product("pl", rate("1m"), rate("2m")), product("el", rate("10m")), quote_id=QUOTE_ID
    )
    # the 2m rate re-priced; 1m unchanged
    u3 = update(
        product("pl", rate("1m"), rate("2m", total=150)),
        product("el", rate("10m")),
        quote_id=QUOTE_ID,
    )
    # public liability removed
    u4 = update(product("el", rate("10m")), quote_id=QUOTE_ID)
    intervals = item_intervals([(t[0], started), (t[1], u1), (t[2], u2), (t[3], u3), (t[4], u4)])
    assert [(i.key, i.valid_from, i.valid_to) for i in intervals] == [
        (("pl", "1m"), t[1], t[4]),
        (("pl", "2m"), t[1], t[3]),
        (("el", "10m"), t[2], None),
        (("pl", "2m"), t[3], t[4]),
    ]
    assert intervals[1].item.rate == rate("2m")
    assert intervals[3].item.rate == rate("2m", total=150)
    # how many products were active at each time: the analysts' question
    products_at = [len({item.product.id for item in active_at(intervals, at)}) for at in t]
    assert products_at == [0, 1, 2, 2, 1, 1]
    assert [len(list(active_at(intervals, at))) for at in t] == [0, 2, 3, 3, 1, 1]


def test_a_timeline_reports_what_each_event_closed_and_opened():
    timeline: ItemTimeline[int] = ItemTimeline(Q)
    first = timeline.apply(1, update(product("a", rate("x"), rate("y"))))
    assert keyed(list(first.opened)) == [(("a", "x"), 1, None), (("a", "y"), 1, None)]
    assert first.closed == ()
    same = timeline.apply(2, update(product("a", rate("x"), rate("y"))))
    assert (same.closed, same.opened) == ((), ())
    changed = timeline.apply(3, update(product("a", rate("x"), rate("y", status="Referred"))))
    assert keyed(list(changed.closed)) == [(("a", "y"), 1, 3)]
    assert keyed(list(changed.opened)) == [(("a", "y"), 3, None)]
    # a product-level change (its total) re-opens each of its items
    product_changed = timeline.apply(
        4, update(product("a", rate("x"), rate("y", status="Referred"), total=7))
    )
    assert {i.key for i in product_changed.closed} == {("a", "x"), ("a", "y")}
    assert {i.key for i in product_changed.opened} == {("a", "x"), ("a", "y")}
    emptied = timeline.apply(5, update())
    assert len(emptied.closed) == 2
    assert timeline.active() == []
    started = decode_quote_event(QUOTE_STARTED)
    assert isinstance(started, QuoteStarted)
    assert timeline.apply(6, msgspec.structs.replace(started, id=Q)) == ItemChanges()


def test_two_updates_at_one_time_leave_a_zero_length_interval():
    intervals = item_intervals(
        [(5, update(product("a", rate("x")))), (5, update(product("b", rate("y"))))]
    )
    assert keyed(intervals) == [(("a", "x"), 5, 5), (("b", "y"), 5, None)]
    assert [i.key for i in active_at(intervals, 5)] == [("b", "y")]


def test_events_out_of_order_or_of_another_quote_are_refused():
    timeline: ItemTimeline[int] = ItemTimeline()
    timeline.apply(10, update(product("a", rate("x"))))
    with pytest.raises(QuoteHistoryError) as info:
        timeline.apply(9, update())
    assert info.value.code == "out_of_order"
    with pytest.raises(QuoteHistoryError) as info:
        timeline.apply(11, update(quote_id="q-2"))
    assert info.value.code == "other_quote"
    assert [item.key for item in timeline.active()] == [("a", "x")]  # unchanged by refusals


# ------------------------------------------------------------------ properties

PRODUCT_IDS = ["p1", "p2", "p3"]
RATE_KEYS = ["a", "b", "c"]


@st.composite
def updates(draw: st.DrawFn) -> QuoteProductsUpdated:
    products = []
    for pid in draw(st.lists(st.sampled_from(PRODUCT_IDS), unique=True)):
        keys = draw(st.lists(st.sampled_from(RATE_KEYS), unique=True))
        rates = [rate(key, total=draw(st.sampled_from([100, 200]))) for key in keys]
        products.append(product(pid, *rates, total=draw(st.sampled_from([100, 300]))))
    return update(*products)


histories = st.lists(st.tuples(st.integers(min_value=0, max_value=3), updates()), max_size=12).map(
    lambda steps: [(sum(gap for gap, _ in steps[: i + 1]), u) for i, (_, u) in enumerate(steps)]
)


@settings(max_examples=150, deadline=None)
@given(histories)
def test_intervals_of_one_item_never_overlap(history):
    intervals = item_intervals(history)
    by_key: dict[tuple[str, str | None], list[ItemInterval[int]]] = {}
    for interval in intervals:
        by_key.setdefault(interval.key, []).append(interval)
    for runs in by_key.values():
        runs.sort(key=lambda i: (i.valid_from, i.valid_to is None, i.valid_to or 0))
        for earlier, later in pairwise(runs):
            assert earlier.valid_to is not None
            assert earlier.valid_to <= later.valid_from
        for run in runs:
            assert run.valid_to is None or run.valid_from <= run.valid_to
        assert sum(run.valid_to is None for run in runs) <= 1


@settings(max_examples=150, deadline=None)
@given(histories)
def test_the_items_active_at_t_are_those_of_the_latest_update_at_or_before_t(history):
    intervals = item_intervals(history)
    last = history[-1][0] if history else 0
    for t in range(-1, last + 2):
        latest = [u for at, u in history if at <= t]
        expected = list(items_of(latest[-1]).values()) if latest else []
        active = list(active_at(intervals, t))
        assert Counter(item.key for item in active) == Counter(item.key for item in expected)
        assert sorted(active, key=lambda i: str(i.key)) == sorted(
            expected, key=lambda i: str(i.key)
        )


@settings(max_examples=100, deadline=None)
@given(histories)
def test_a_timeline_followed_event_by_event_ends_where_the_last_update_is(history):
    timeline: ItemTimeline[int] = ItemTimeline()
    opened: set[tuple[str, str | None]] = set()
    for at, event in history:
        changes = timeline.apply(at, event)
        for interval in changes.closed:
            assert interval.key in opened  # only what was open is closed
            opened.discard(interval.key)
            assert interval.valid_to == at
        for interval in changes.opened:
            assert interval.key not in opened
            opened.add(interval.key)
    assert opened == {item.key for item in timeline.active()}
    expected = items_of(history[-1][1]).values() if history else []
    assert {item.key for item in timeline.active()} == {item.key for item in expected}
