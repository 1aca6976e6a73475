"""The analysts' quote tables: the mapping from logged quote events to rows (pure), and
on each real database the sample's journeys written through ``JdbcSink`` in batches,
the "active products" queries answering what the domain's ``item_intervals`` computes,
a replay changing nothing, personal fields absent unless released."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

import msgspec
import pytest

from domain.quotes.samples import PRODUCTS_UPDATED, QUOTE_STARTED
from oddstream.domain.quotes import (
    PERSONAL_CONTACT_FIELDS,
    ItemInterval,
    QuoteEvent,
    active_at,
    decode_quote_event,
    item_intervals,
)
from oddstream.domain.quotes.stored import STORED_TYPES, from_stored, to_stored
from oddstream.eventstore.envelope import RecordedEvent
from oddstream.sinks import JdbcSink, SinkRecord, parse_config
from oddstream.sinks.quote_tables import (
    ACTIVE_PRODUCTS_AT,
    ACTIVE_PRODUCTS_OVER_TIME,
    MAX_ACTIVE_PRODUCTS,
    NO_RATE,
    QUOTE_ITEM_HISTORY,
    QUOTE_ITEMS,
    QUOTES,
    LoggedQuoteEvent,
    QuoteMappingError,
    QuoteReplayError,
    QuoteStateMissing,
    QuoteTables,
    render,
    sink_settings,
    time_parameter,
    to_millisecond,
)
from oddstream.sinks.quote_tables.sample import SAMPLE_START, sample_journeys

from .conftest import Target

UTC = dt.UTC
T0 = dt.datetime(2024, 3, 14, 9, 30, tzinfo=UTC)


def minute(n: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=n)


def logged(position: int, at: dt.datetime, event: QuoteEvent | str) -> LoggedQuoteEvent:
    if isinstance(event, str):
        event = decode_quote_event(event)
    stored = to_stored(event)
    name = type(event).__name__
    return LoggedQuoteEvent(position, at, STORED_TYPES[name], 1, msgspec.to_builtins(stored))


RATE = {"isOffered": True, "loading": 0, "discount": 0, "ipt": 0, "commission": 0, "status": "Q"}


def wire_update(*products: tuple[str, Sequence[tuple[str, float]]], quote_id: str) -> str:
    """A ``QuoteProductsUpdated`` of (product id, [(rate key, total)]) as JSON text."""
    return msgspec.json.encode(
        {
            "quoteId": quote_id,
            "products": [
                {
                    "id": pid,
                    "key": pid,
                    "name": pid.upper(),
                    "total": 0,  # so a rate re-priced leaves the product (and its other rates) be
                    "ipt": 0,
                    "rates": [
                        dict(RATE, key=key, basePremium=total, total=total) for key, total in rates
                    ],
                }
                for pid, rates in products
            ],
        }
    ).decode()


def by_topic(records: list[SinkRecord]) -> dict[str, list[SinkRecord]]:
    out: dict[str, list[SinkRecord]] = defaultdict(list)
    for record in records:
        out[record.topic].append(record)
    return out


# --- the mapping, pure ----------------------------------------------------------------

QID = msgspec.json.decode(QUOTE_STARTED)["id"]


def worked_journey() -> list[LoggedQuoteEvent]:
    """The docs' journey: public liability 1m and 2m at 09:31, employers' liability
    added at 09:32, 2m re-priced at 09:33, public liability removed at 09:34."""
    pl = ("pl", [("1m", 100.0), ("2m", 100.0)])
    el = ("el", [("10m", 100.0)])
    repriced = ("pl", [("1m", 100.0), ("2m", 150.0)])
    return [
        logged(10, minute(0), QUOTE_STARTED),
        logged(11, minute(1), wire_update(pl, quote_id=QID)),
        logged(15, minute(2), wire_update(pl, el, quote_id=QID)),
        logged(16, minute(3), wire_update(repriced, el, quote_id=QID)),
        logged(20, minute(4), wire_update(el, quote_id=QID)),
    ]


def test_the_worked_journey_as_rows():
    tables = QuoteTables()
    per_event = [tables.map(event) for event in worked_journey()]
    # each event ends with the quote's row: products now, the log's time and position
    quote_rows = [records[-1] for records in per_event]
    assert all(r.topic == QUOTES and r.key == {"quote_id": QID} for r in quote_rows)
    assert [(r.value["products_count"], r.value["items_count"]) for r in quote_rows] == [
        (0, 0), (1, 2), (2, 3), (2, 3), (1, 1),
    ]  # fmt: skip
    assert [r.value["last_position"] for r in quote_rows] == [10, 11, 15, 16, 20]
    assert quote_rows[-1].value["last_updated_at"] == minute(4)
    history: dict[tuple[Any, ...], dict[str, Any]] = {}
    items: dict[tuple[Any, ...], dict[str, Any]] = {}
    for records in per_event:
        for record in records:
            if record.topic == QUOTE_ITEM_HISTORY:
                history[tuple(record.key.values())] = record.value
            elif record.topic == QUOTE_ITEMS:
                items[tuple(record.key.values())] = record.value
    assert {k: (v["valid_from"], v["valid_to"], v["total_pence"]) for k, v in history.items()} == {
        (11, "pl", "1m"): (minute(1), minute(4), 10000),
        (11, "pl", "2m"): (minute(1), minute(3), 10000),
        (15, "el", "10m"): (minute(2), None, 10000),
        (16, "pl", "2m"): (minute(3), minute(4), 15000),
    }
    assert history[(11, "pl", "2m")]["closed_position"] == 16
    assert {k: (v["is_current"], v["valid_from"], v["removed_at"]) for k, v in items.items()} == {
        (QID, "pl", "1m"): (False, minute(1), minute(4)),
        (QID, "pl", "2m"): (False, minute(3), minute(4)),
        (QID, "el", "10m"): (True, minute(2), None),
    }
    assert items[(QID, "pl", "2m")]["total_pence"] == 15000  # its last values


def test_the_quotes_row_has_no_personal_field_unless_released():
    started = logged(1, T0, QUOTE_STARTED)
    row = QuoteTables().map(started)[0]
    assert row.value_schema is not None
    assert not [n for n in row.value_schema.names if n.startswith("contact_")]
    text = repr(row.value)
    for secret in ("Priya", "Shah", "priya@", "7700", "203.0.113", "Bakery Ltd", "1984"):
        assert secret not in text
    assert row.value["turnover_pence"] == 25_000_000
    assert (row.value["industry_id"], row.value["industry_label"]) == ("5611", "Bakeries")
    assert row.value["effective_date"] == dt.date(2024, 4, 1)
    assert row.value["started_at"] == dt.datetime(2024, 3, 14, 9, 26, 53, 589000, tzinfo=UTC)
    released = QuoteTables(release=["email", "dateOfBirth", "firstName"]).map(started)[0]
    assert {k: v for k, v in released.value.items() if k.startswith("contact_")} == {
        "contact_email": "priya@shahbakery.example",
        "contact_date_of_birth": "1984-02-29",
        "contact_first_name": "Priya",
    }
    with pytest.raises(ValueError, match="view already"):
        QuoteTables(release=["turnover"])
    with pytest.raises(TypeError):
        QuoteTables(release="email")


def test_rating_inputs_and_unknown_fields_stay_out_of_the_item_rows():
    update = msgspec.json.decode(wire_update(("pl", [("1m", 100.0)]), quote_id=QID))
    rate = update["products"][0]["rates"][0]
    rate["ratingInputs"] = {"email": "typed@secret.example", "dob": "1984-02-29"}
    rate["ratingAttributes"] = {"postcode": "SW1A 1AA"}
    rate["errors"] = [{"message": "phone 07700 900123 invalid"}]
    rate["holderName"] = "Priya Shah"  # a field the code does not know
    update["products"][0]["policyHolder"] = {"name": "Priya Shah"}
    tables = QuoteTables()
    tables.map(logged(1, T0, QUOTE_STARTED))
    records = tables.map(logged(2, minute(1), msgspec.json.encode(update).decode()))
    assert {r.topic for r in records} == {QUOTES, QUOTE_ITEMS, QUOTE_ITEM_HISTORY}
    text = repr([(r.key, r.value) for r in records])
    for secret in ("typed@secret", "1984", "SW1A", "07700", "Priya", "Shah"):
        assert secret not in text


def test_a_clock_going_back_keeps_the_log_order():
    tables = QuoteTables()
    tables.map(logged(1, T0, QUOTE_STARTED))
    tables.map(logged(2, minute(5), PRODUCTS_UPDATED))
    # recorded earlier than the quote's previous event: valid from that event's time
    records = tables.map(logged(3, minute(1), wire_update(("x", []), quote_id=QID)))
    opened = [r for r in records if r.topic == QUOTE_ITEM_HISTORY and r.value["valid_to"] is None]
    assert [(r.key["product_id"], r.key["rate_key"]) for r in opened] == [("x", NO_RATE)]
    assert opened[0].value["valid_from"] == minute(5)
    closed = [r for r in records if r.topic == QUOTE_ITEM_HISTORY and r.value["valid_to"]]
    assert {r.value["valid_to"] for r in closed} == {minute(5)}


def test_times_are_cut_to_the_millisecond_in_utc():
    at = dt.datetime(2024, 3, 14, 10, 0, 0, 123987, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert to_millisecond(at) == dt.datetime(2024, 3, 14, 9, 0, 0, 123000, tzinfo=UTC)
    assert time_parameter(at) == "2024-03-14 09:00:00.123"


def test_the_stores_recorded_events_map_and_other_events_are_ignored():
    started = logged(7, T0, QUOTE_STARTED)
    recorded = RecordedEvent(
        7, f"quote-{QID}", 1, uuid4(), started.type, 1, dict(started.data), {},
        int(T0.timestamp() * 1_000_000),
    )  # fmt: skip
    tables = QuoteTables()
    assert tables.map(recorded) == QuoteTables().map(started)
    other = RecordedEvent(8, "tote-1", 1, uuid4(), "tote.BetPlaced", 1, {}, {}, 0)
    assert tables.map(other) == []
    assert tables.ignored == 1


def test_a_stored_event_the_code_cannot_read_is_a_typed_error():
    bad = logged(9, T0, QUOTE_STARTED)
    newer = LoggedQuoteEvent(9, T0, bad.type, 99, bad.data)
    with pytest.raises(QuoteMappingError) as info:
        QuoteTables().map(newer)
    assert info.value.position == 9
    assert info.value.cause.reason == "unsupported_version"


def test_mapping_an_event_again_is_refused_not_answered_with_no_rows():
    # a write that failed must be retried with the records mapped the first time:
    # mapping the same events again found them in the state already, and gave the
    # quote's row without its history and items rows, which were then never written
    journey = worked_journey()
    tables = QuoteTables()
    tables.map_batch(journey[:1])
    first = tables.map_batch(journey[1:2])
    assert {r.topic for r in first} == {QUOTES, QUOTE_ITEMS, QUOTE_ITEM_HISTORY}
    with pytest.raises(QuoteReplayError) as info:
        tables.map_batch(journey[1:2])
    assert (info.value.position, info.value.last) == (11, 11)
    with pytest.raises(QuoteReplayError):
        tables.map(journey[0])
    # refused without a change: the next events map as on a mapping that saw each once
    reference = QuoteTables()
    reference.map_batch(journey[:2])
    assert tables.map_batch(journey[2:]) == reference.map_batch(journey[2:])


def test_a_batch_that_cannot_be_mapped_leaves_the_state_as_before():
    journey = worked_journey()
    unreadable = LoggedQuoteEvent(17, minute(3), journey[1].type, 99, journey[1].data)
    tables = QuoteTables()
    tables.map_batch(journey[:2])
    with pytest.raises(QuoteMappingError):
        tables.map_batch([journey[2], journey[3], unreadable])
    assert tables.last_position == 11
    with pytest.raises(QuoteMappingError):  # a quote the mapping had not seen before
        QuoteTables().map_batch([journey[0], journey[1], unreadable])
    # the bad event set aside, the batch maps as if the failed attempt never happened
    reference = QuoteTables()
    reference.map_batch(journey[:2])
    assert tables.map_batch(journey[2:]) == reference.map_batch(journey[2:])
    other = QuoteTables()
    with pytest.raises(QuoteMappingError):
        other.map_batch([journey[0], journey[1], unreadable])
    assert other.quote_count == 0
    assert other.map_batch(journey) == QuoteTables().map_batch(journey)


def bounded_records(
    events: Sequence[LoggedQuoteEvent], max_quotes: int, release: Sequence[str] = ()
) -> tuple[list[list[SinkRecord]], QuoteTables]:
    """Each event's records from a bounded mapping, a quote it does not hold rebuilt
    from the quote's own earlier events (what ``QuoteSource`` reads from its stream)."""
    tables = QuoteTables(max_quotes=max_quotes, release=release)
    out = []
    for n, event in enumerate(events):
        quote_id = event.data["quote_id"]
        if not tables.holds(quote_id):
            rebuilt = tables.rebuild(quote_id)
            for earlier in events[:n]:
                if earlier.data["quote_id"] == quote_id:
                    rebuilt.apply(earlier)
            tables.restore(rebuilt)
        out.append(tables.map(event))
        assert tables.quote_count <= max_quotes
    return out, tables


@pytest.mark.parametrize("max_quotes", [1, 2, 7])
def test_a_bounded_mapping_rebuilding_misses_maps_as_the_unbounded_one(max_quotes: int) -> None:
    unbounded = QuoteTables(release=["email"])
    expected = [unbounded.map(event) for event in SAMPLE]
    found, tables = bounded_records(SAMPLE, max_quotes, release=["email"])
    assert found == expected
    assert tables.evicted >= 50 - max_quotes  # every quote but the last few dropped once


def test_a_bounded_mapping_refuses_a_quote_it_does_not_hold() -> None:
    journey = worked_journey()
    tables = QuoteTables(max_quotes=1)
    with pytest.raises(QuoteStateMissing) as info:
        tables.map(journey[0])
    assert (info.value.quote_id, info.value.position) == (QID, 10)
    assert (tables.last_position, tables.quote_count) == (None, 0)
    tables.restore(tables.rebuild(QID))  # a quote with no earlier event
    assert tables.map(journey[0]) == QuoteTables().map(journey[0])
    with pytest.raises(ValueError, match="at least 1"):
        QuoteTables(max_quotes=0)
    # a rebuild for another release would give other rows
    with pytest.raises(ValueError, match="another release"):
        tables.restore(QuoteTables(release=["email"]).rebuild(QID))


def test_queries_render_for_each_driver_and_refuse_odd_names():
    sql = render(ACTIVE_PRODUCTS_AT, paramstyle="pyformat", quotes="a_q", history="a_h")
    assert "%(t)s" in sql
    assert ":t" not in sql
    assert "FROM a_q q" in sql
    assert "LEFT JOIN a_h h" in sql
    with pytest.raises(ValueError, match="not a plain table name"):
        render(ACTIVE_PRODUCTS_AT, history='x"; DROP TABLE y; --')


def test_the_sink_settings_parse():
    config = parse_config(sink_settings("jdbc:sqlite:/tmp/x.db", table_name_format="a_${topic}"))
    assert (config.insert_mode, config.pk_mode) == ("upsert", "record_key")
    assert all(config.follows(t) for t in (QUOTES, QUOTE_ITEMS, QUOTE_ITEM_HISTORY))
    assert [config.table_name(t) for t in (QUOTES, QUOTE_ITEMS, QUOTE_ITEM_HISTORY)] == [
        "a_quotes", "a_quote_items", "a_quote_item_history",
    ]  # fmt: skip
    # local times would step back at a daylight-saving change and not match :t (UTC)
    with pytest.raises(ValueError, match="UTC"):
        sink_settings("jdbc:sqlite:/tmp/x.db", overrides={"db.timezone": "Europe/London"})
    overridden = sink_settings("jdbc:sqlite:/tmp/x.db", overrides={"db.timezone": "UTC"})
    assert overridden["db.timezone"] == "UTC"


# --- the pure model of the sample, to compare the databases with ------------------------

SAMPLE = sample_journeys()


def model(
    events: Sequence[LoggedQuoteEvent],
) -> dict[str, list[ItemInterval[dt.datetime]]]:
    """Each quote's intervals by ``item_intervals``, on the log's times as the mapping
    documents them: to the millisecond, never before the quote's previous event."""
    by_quote: dict[str, list[tuple[dt.datetime, QuoteEvent]]] = defaultdict(list)
    for e in events:
        event = from_stored(e.type, e.schema_version, e.data)
        quote_id = e.data["quote_id"]
        at = to_millisecond(e.recorded_at)
        if by_quote[quote_id]:
            at = max(at, by_quote[quote_id][-1][0])
        by_quote[quote_id].append((at, event))
    return {q: item_intervals(events) for q, events in by_quote.items()}


MODEL = model(SAMPLE)


def products_at(intervals: list[ItemInterval[dt.datetime]], at: dt.datetime) -> int:
    return len({item.product.id for item in active_at(intervals, at)})


def model_over_time() -> dict[tuple[str, dt.datetime], int]:
    out = {}
    for quote, intervals in MODEL.items():
        instants = {i.valid_from for i in intervals} | {
            i.valid_to for i in intervals if i.valid_to is not None
        }
        for at in instants:
            out[(quote, at)] = products_at(intervals, at)
    return out


#: The docs' worked answer (docs/analytics.md, "Analysts' tables"): at 10:30 UTC, how
#: many of the sample's 50 quotes had each number of products active; and the most
#: products each quote had active at any one time.
SAMPLE_AT = dt.datetime(2024, 3, 14, 10, 30, tzinfo=UTC)
SAMPLE_ACTIVE_AT_1030 = {0: 8, 1: 12, 2: 14, 3: 12, 4: 4}
SAMPLE_MAX_ACTIVE = {1: 10, 2: 18, 3: 13, 4: 9}
#: the first quotes: (active at 10:30, most at any one time)
SAMPLE_FIRST_QUOTES = {
    "q001": (1, 1), "q002": (2, 2), "q003": (2, 2), "q004": (2, 2),
    "q005": (3, 4), "q006": (2, 2), "q007": (1, 1), "q008": (0, 1),
}  # fmt: skip
#: q005 over time: (changed at, products active from then on)
SAMPLE_Q005_STEPS = [("09:28:51.313", 3), ("09:33:36.111", 4), ("09:35:32.055", 3)]


def steps_of(over_time: dict[tuple[str, dt.datetime], int], quote: str) -> list[tuple[str, int]]:
    return sorted(
        (at.strftime("%H:%M:%S.%f")[:-3], n) for (q, at), n in over_time.items() if q == quote
    )


def test_the_sample_is_deterministic_and_the_model_gives_the_docs_answer():
    assert sample_journeys() == SAMPLE
    assert (len(SAMPLE), len(MODEL)) == (300, 50)
    assert SAMPLE[0].recorded_at >= SAMPLE_START
    at_1030 = {q: products_at(intervals, SAMPLE_AT) for q, intervals in MODEL.items()}
    assert dict(sorted(Counter(at_1030.values()).items())) == SAMPLE_ACTIVE_AT_1030
    most: dict[str, int] = defaultdict(int)
    for (quote, _), n in model_over_time().items():
        most[quote] = max(most[quote], n)
    assert dict(sorted(Counter(most.values()).items())) == SAMPLE_MAX_ACTIVE
    assert {q: (at_1030[q], most[q]) for q in SAMPLE_FIRST_QUOTES} == SAMPLE_FIRST_QUOTES
    assert steps_of(model_over_time(), "q005") == SAMPLE_Q005_STEPS
    # what the sample exercises: removals, re-adds, re-pricing, rate-less products,
    # zero-length intervals (two updates in one millisecond)
    intervals = [i for quote in MODEL.values() for i in quote]
    assert len(intervals) == 236
    assert sum(i.valid_to is None for i in intervals) == 139
    assert sum(i.valid_to == i.valid_from for i in intervals) == 2
    assert sum(i.item.rate is None for i in intervals) == 30


# --- on each database ------------------------------------------------------------------


class QuoteTarget:
    """The three tables under unique names on one target, dropped after the test."""

    def __init__(self, target: Target) -> None:
        self.target = target
        base = f"qt_{uuid.uuid4().hex[:10]}"
        self.names = {t: f"{base}_{t}" for t in (QUOTES, QUOTE_ITEMS, QUOTE_ITEM_HISTORY)}
        target.tables.extend(self.names.values())
        self.format = f"{base}_${{topic}}"

    def sink(self) -> JdbcSink:
        settings = sink_settings(self.target.url, table_name_format=self.format)
        return JdbcSink(self.target.sink_name(), parse_config(settings))

    def write_all(
        self, sink: JdbcSink, tables: QuoteTables, events: Sequence[Any], batch: int = 37
    ) -> list[Any]:
        results = []
        for start in range(0, len(events), batch):
            chunk = events[start : start + batch]
            after = sink.stored_position() or 0
            results.append(
                sink.write(tables.map_batch(chunk), after=after, position=chunk[-1].position)
            )
        return results

    def query(self, sql: str, t: str | None = None) -> list[tuple[Any, ...]]:
        style = "named" if self.target.kind == "sqlite" else "pyformat"
        text = render(
            sql, paramstyle=style, quotes=self.names[QUOTES], history=self.names[QUOTE_ITEM_HISTORY]
        )
        cur = self.target.conn.cursor()
        self.target.dialect.begin(self.target.conn)
        try:
            if t is None:
                cur.execute(text)
            else:
                cur.execute(text, {"t": t})
            return [tuple(row) for row in cur.fetchall()]
        finally:
            self.target.dialect.rollback(self.target.conn)

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        q = self.target.dialect.quote
        return {
            topic: sorted(self.target.query(f"SELECT * FROM {q(name)}"), key=repr)
            for topic, name in self.names.items()
        }

    def columns(self, topic: str) -> set[str]:
        return set(self.target.column_types(self.names[topic]))


def as_time(value: Any) -> dt.datetime:
    if isinstance(value, str):  # SQLite: the sink's text
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def test_the_sample_through_the_sink_answers_as_the_model(target: Target) -> None:
    qt = QuoteTarget(target)
    tables = QuoteTables()
    with qt.sink() as sink:
        results = qt.write_all(sink, tables, SAMPLE)
    assert sum(r.rows for r in results) == len(QuoteTables().map_batch(SAMPLE))
    intervals = [i for quote in MODEL.values() for i in quote]
    assert target.count(qt.names[QUOTE_ITEM_HISTORY]) == len(intervals)
    assert target.count(qt.names[QUOTES]) == 50
    # at every time an item opened or closed, a millisecond before, and each 10 minutes
    instants = {i.valid_from for i in intervals} | {i.valid_to for i in intervals if i.valid_to}
    instants |= {at - dt.timedelta(milliseconds=1) for at in instants}
    instants |= {SAMPLE_START + dt.timedelta(minutes=10 * n) for n in range(20)}
    for at in sorted(instants):
        answer = dict(qt.query(ACTIVE_PRODUCTS_AT, time_parameter(at)))
        expected = {q: products_at(quote, at) for q, quote in MODEL.items()}
        assert {q: int(n) for q, n in answer.items()} == expected, at
    over_time = {(q, as_time(at)): int(n) for q, at, n in qt.query(ACTIVE_PRODUCTS_OVER_TIME)}
    assert over_time == model_over_time()
    assert steps_of(over_time, "q005") == SAMPLE_Q005_STEPS
    most = {q: int(n) for q, n in qt.query(MAX_ACTIVE_PRODUCTS)}
    assert dict(sorted(Counter(most.values()).items())) == SAMPLE_MAX_ACTIVE
    at_1030 = {q: int(n) for q, n in qt.query(ACTIVE_PRODUCTS_AT, time_parameter(SAMPLE_AT))}
    assert dict(sorted(Counter(at_1030.values()).items())) == SAMPLE_ACTIVE_AT_1030
    assert {q: (at_1030[q], most[q]) for q in SAMPLE_FIRST_QUOTES} == SAMPLE_FIRST_QUOTES
    # quote_items: the current rows are the items of each quote's last update
    q = target.dialect.quote
    current = target.query(
        f"SELECT quote_id, product_id, rate_key FROM {q(qt.names[QUOTE_ITEMS])} "
        f"WHERE is_current = {'TRUE' if target.kind == 'postgres' else '1'}"
    )
    expected_current = {
        (i.item.quote_id, i.item.product.id, i.item.rate.key if i.item.rate else NO_RATE)
        for i in intervals
        if i.valid_to is None
    }
    assert set(current) == expected_current


def test_a_replay_changes_nothing(target: Target) -> None:
    qt = QuoteTarget(target)
    with qt.sink() as sink:
        qt.write_all(sink, QuoteTables(), SAMPLE)
        before = qt.dump()
        # the same sink given the log again: every batch is already written
        again = qt.write_all(Rewound(sink), QuoteTables(), SAMPLE)
        assert all(r.already_written for r in again)
    # a new sink (position 0) writing the whole log again over the same tables
    with qt.sink() as fresh:
        results = qt.write_all(fresh, QuoteTables(), SAMPLE, batch=101)
        assert not any(r.already_written for r in results)
    assert qt.dump() == before
    assert len(before[QUOTE_ITEM_HISTORY]) == sum(len(i) for i in MODEL.values())


class Rewound:
    """A sink whose ``stored_position`` reads 0 at first: a restart from an old
    checkpoint, handing the target batches it holds already."""

    def __init__(self, sink: JdbcSink) -> None:
        self.sink = sink
        self.after = 0

    def stored_position(self) -> int:
        return self.after

    def write(self, records: list[SinkRecord], *, after: int, position: int) -> Any:
        self.after = position
        return self.sink.write(records, after=after, position=position)


def test_personal_fields_absent_unless_released(target: Target) -> None:
    qt = QuoteTarget(target)
    events = SAMPLE[:60]
    with qt.sink() as sink:
        qt.write_all(sink, QuoteTables(), events)
    columns = qt.columns(QUOTES)
    assert not [c for c in columns if c.startswith("contact_")]
    rows = qt.dump()[QUOTES]
    cells = " ".join(repr(row) for row in rows)
    for personal in ("First", "Last", "@example.com", "+44", "203.0.113", "Business ", "Trading"):
        assert personal not in cells
    assert set(PERSONAL_CONTACT_FIELDS) >= {"email", "firstName"}
    # released by configuration: the columns are added (auto.evolve) and filled
    with qt.sink() as sink:
        qt.write_all(sink, QuoteTables(release=["email"]), events)
    assert "contact_email" in qt.columns(QUOTES)
    q = target.dialect.quote
    emails = target.query(f"SELECT contact_email FROM {q(qt.names[QUOTES])}")
    assert {e for (e,) in emails} == {
        f"person{int(e.data['quote_id'][1:])}@example.com"
        for e in events
        if e.type == STORED_TYPES["QuoteStarted"]
    }


def test_keys_differing_only_in_case_are_different_rows(target: Target) -> None:
    # MariaDB's default collation (utf8mb4_general_ci) made "1m" and "1M", or quotes
    # "qa" and "QA", one key: an upsert overwrote the other item's or quote's row
    upper = dict(msgspec.json.decode(QUOTE_STARTED), id="QA")
    lower = dict(upper, id="qa", reference="QTE-lower")
    rates = ("pl", [("1m", 100.0), ("1M", 250.0)])
    events = [
        logged(1, T0, msgspec.json.encode(upper).decode()),
        logged(2, T0, msgspec.json.encode(lower).decode()),
        logged(3, minute(1), wire_update(rates, quote_id="QA")),
        logged(4, minute(1), wire_update(("pl", [("1m", 100.0)]), quote_id="qa")),
    ]
    qt = QuoteTarget(target)
    with qt.sink() as sink:
        qt.write_all(sink, QuoteTables(), events)
    q = target.dialect.quote
    items = target.query(f"SELECT quote_id, rate_key, total_pence FROM {q(qt.names[QUOTE_ITEMS])}")
    assert sorted(items) == [("QA", "1M", 25000), ("QA", "1m", 10000), ("qa", "1m", 10000)]
    assert target.count(qt.names[QUOTE_ITEM_HISTORY]) == 3
    quotes = target.query(f"SELECT quote_id, reference FROM {q(qt.names[QUOTES])}")
    assert sorted(quotes) == [("QA", upper["reference"]), ("qa", "QTE-lower")]
    active = dict(qt.query(ACTIVE_PRODUCTS_AT, time_parameter(minute(2))))
    assert {k: int(v) for k, v in active.items()} == {"QA": 1, "qa": 1}
