"""The quote ingest on every store adapter: valid events into ``quote-<id>`` exactly,
every bad kind dead-lettered with its bytes intact, batches and NDJSON mixed, repeats,
the unknown-quote rule, client event ids, concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
from typing import Any

import pytest

from domain.quotes.samples import PRODUCTS_UPDATED, QUOTE_ID, QUOTE_STARTED
from oddstream.application.quotes import QuoteIngest, json_messages, ndjson_lines
from oddstream.domain.deadletters import restore
from oddstream.domain.quotes import decode_quote_event
from oddstream.domain.quotes.stored import from_stored
from oddstream.eventstore import EventStore
from oddstream.runtime.deadletters import DeadLetterStore, Refusal

START = QUOTE_STARTED.encode()
UPDATE = PRODUCTS_UPDATED.encode()


def started(quote_id: str) -> bytes:
    return json.dumps({**json.loads(QUOTE_STARTED), "id": quote_id}).encode()


def updated(quote_id: str, products: list[Any] | None = None) -> bytes:
    body = json.loads(PRODUCTS_UPDATED)
    body["quoteId"] = quote_id
    if products is not None:
        body["products"] = products
    return json.dumps(body).encode()


async def ingest_batch(store: EventStore, *raw: bytes) -> list[Any]:
    body = b"[" + b",".join(raw) + b"]"
    return await QuoteIngest(store).ingest(list(json_messages(body)))


async def test_valid_events_are_stored_exactly_in_their_quote_stream(store: EventStore):
    outcomes = await ingest_batch(store, START, UPDATE)
    assert [o.status for o in outcomes] == ["stored", "stored"]
    events = await store.read_stream(f"quote-{QUOTE_ID}")
    assert [e.type for e in events] == ["quotes.QuoteStarted", "quotes.QuoteProductsUpdated"]
    assert [e.schema_version for e in events] == [1, 1]
    assert [o.position for o in outcomes] == [e.position for e in events]
    # exact: the log gives back the event the bytes decode to, pence and Decimals too
    for event, raw in zip(events, (START, UPDATE), strict=True):
        assert from_stored(event.type, event.schema_version, event.data) == decode_quote_event(raw)
    rate = from_stored(events[1].type, 1, events[1].data).products[0].rates[1]
    assert (rate.base_premium_pence, rate.loading_pence, rate.total_pence) == (10, 20, 30)


async def test_free_form_numbers_survive_the_log_digit_for_digit(store: EventStore):
    body = json.loads(PRODUCTS_UPDATED)
    precise = "0.12345678901234567890123456789"
    text = json.dumps(body).replace('"employees": 7', f'"employees": {precise}', 1)
    await ingest_batch(store, START, text.encode())
    (_, event) = await store.read_stream(f"quote-{QUOTE_ID}")
    back = from_stored(event.type, 1, event.data)
    assert str(back.products[0].rates[0].rating_inputs["employees"]) == precise


BAD = {
    "invalid_json": b'{"id": "q1", "contact": ',
    "invalid_json_not_utf8": b'{"quoteId": "q\xff", "products": []}',
    "missing_field": b'{"quoteId": "q1", "products": [{"id": "p", "key": "k"}]}',
    "wrong_type": b'{"quoteId": "q1", "products": "none"}',
    "null_required": b'{"quoteId": "q1", "products": null}',
    "unknown_type": b'{"type": "QuoteDeleted", "version": 1, "data": {}}',
    "unsupported_version": b'{"type": "QuoteStarted", "version": 9, "data": {}}',
    "bad_money": updated("q1").replace(b"1234.56", b"1234.567", 1),
    "too_big": b'{"quoteId": "q1", "products": [], "pad": "' + b"x" * (1 << 20) + b'"}',
}


@pytest.mark.parametrize("kind", sorted(set(BAD) - {"too_big"}))
async def test_every_bad_kind_is_dead_lettered_with_its_bytes_intact(store: EventStore, kind):
    raw = BAD[kind]
    body = started("q1") + b"\n" + raw + b"\n"
    outcomes = await QuoteIngest(store).ingest(list(ndjson_lines(body)))
    assert outcomes[0].status == "stored"
    bad = outcomes[1]
    expected = kind.removesuffix("_not_utf8")
    assert (bad.status, bad.reason) == ("dead_lettered", expected)
    assert bad.path
    assert bad.message
    assert bad.letter_id
    (letter,) = await DeadLetterStore(store).letters("quotes")
    assert letter.letter_id == bad.letter_id
    assert (letter.reason, letter.status, letter.letter.payload_bytes) == (
        expected,
        "open",
        len(raw),
    )
    assert restore(letter.letter.payload, letter.letter.payload_encoding) == raw
    assert not letter.letter.payload_truncated


async def test_a_payload_too_big_keeps_its_prefix_size_and_digest(store: EventStore):
    raw = BAD["too_big"]
    (o,) = await QuoteIngest(store).ingest(list(json_messages(raw)))
    assert (o.status, o.reason, o.path) == ("dead_lettered", "too_big", "$")
    (letter,) = await DeadLetterStore(store).letters()
    kept = letter.letter
    assert kept.payload_truncated
    assert kept.payload_bytes == len(raw)
    assert kept.payload_sha256 == hashlib.sha256(raw).hexdigest()
    assert raw.startswith(restore(kept.payload, kept.payload_encoding))
    # its replay needs a fixed payload: the letter says so and stays open
    letters = DeadLetterStore(store)
    again = await letters.replay(letter, {"quotes": QuoteIngest(store, letters).replay})
    assert again.status == "open"
    assert "fixed payload" in again.message


async def test_a_mixed_batch_flows_on_in_order(store: EventStore):
    # bad, but each element balanced: an element that leaves a bracket open cannot be
    # told from the ones after it (NDJSON can; see the NDJSON test)
    raws = [started("a"), b"{nope}", updated("a"), b"null", started("b"), b"[1]", updated("b")]
    outcomes = await ingest_batch(store, *raws)
    assert [o.index for o in outcomes] == list(range(7))
    assert [o.status for o in outcomes] == [
        "stored", "dead_lettered", "stored", "dead_lettered", "stored", "dead_lettered", "stored",
    ]  # fmt: skip
    letters = await DeadLetterStore(store).letters("quotes")
    assert [restore(x.letter.payload, x.letter.payload_encoding) for x in letters] == [
        b"{nope}",
        b"null",
        b"[1]",
    ]
    positions = [o.position for o in outcomes if o.status == "stored"]
    assert positions == sorted(positions)


async def test_ndjson_lines_mixed_good_and_bad_keep_their_line_numbers(store: EventStore):
    body = b"\n".join([started("n1"), b"", b"{bad json", updated("n1") + b"\r", b"  "]) + b"\n"
    outcomes = await QuoteIngest(store).ingest(list(ndjson_lines(body)))
    assert [(o.line, o.status) for o in outcomes] == [
        (1, "stored"),
        (3, "dead_lettered"),
        (4, "stored"),
    ]
    (letter,) = await DeadLetterStore(store).letters()
    assert letter.letter.payload == "{bad json"


async def test_the_same_events_sent_twice_are_stored_once(store: EventStore):
    first = await ingest_batch(store, START, UPDATE, b"{bad")
    again = await ingest_batch(store, START, UPDATE, b"{bad")
    assert [o.status for o in first] == ["stored", "stored", "dead_lettered"]
    assert [o.status for o in again] == ["repeated", "repeated", "dead_lettered"]
    assert again[2].letter_id == first[2].letter_id  # one letter for the same bytes
    assert await store.stream_version(f"quote-{QUOTE_ID}") == 2
    assert len(await DeadLetterStore(store).letters()) == 1
    # spelling does not matter: the enveloped form of the same event is a repeat too
    envelope = json.dumps({"type": "QuoteStarted", "version": 1, "data": json.loads(START)})
    (o,) = await ingest_batch(store, envelope.encode())
    assert o.status == "repeated"


async def test_a_change_back_is_stored_but_a_repeat_of_the_latest_is_not(store: EventStore):
    a, b = updated("c", []), updated("c")
    outcomes = await ingest_batch(store, started("c"), a, a, b, a)
    assert [o.status for o in outcomes] == ["stored", "stored", "repeated", "stored", "stored"]
    assert await store.stream_version("quote-c") == 4


async def test_client_event_ids_decide_repeats(store: EventStore):
    def enveloped(raw: bytes, event_id: str) -> bytes:
        kind = "QuoteStarted" if b'"contact"' in raw else "QuoteProductsUpdated"
        return json.dumps(
            {"type": kind, "version": 1, "eventId": event_id, "data": json.loads(raw)}
        ).encode()

    a = enveloped(updated("e", []), "u-1")
    outcomes = await ingest_batch(store, enveloped(started("e"), "s-1"), a, a)
    assert [o.status for o in outcomes] == ["stored", "stored", "repeated"]
    # an older id again, after other events: still a repeat
    later = await ingest_batch(store, enveloped(updated("e"), "u-2"), a)
    assert [o.status for o in later] == ["stored", "repeated"]
    # the same id with another event is refused
    (reused,) = await ingest_batch(store, enveloped(updated("e"), "u-1"))
    assert (reused.status, reused.reason, reused.path) == (
        "dead_lettered",
        "event_id_reused",
        "eventId",
    )
    (bad,) = await ingest_batch(store, json.dumps({"eventId": 5, **json.loads(UPDATE)}).encode())
    assert (bad.reason, bad.path) == ("wrong_type", "eventId")


async def test_an_update_for_a_quote_not_started_is_dead_lettered(store: EventStore):
    outcomes = await ingest_batch(store, updated("late"), started("late"))
    assert [(o.status, o.reason) for o in outcomes] == [
        ("dead_lettered", "unknown_quote"),
        ("stored", None),
    ]
    assert await store.stream_version("quote-late") == 1
    # a second, different start for the same quote is refused too
    other = json.loads(started("late"))
    other["reference"] = "QTE-OTHER"
    (o,) = await ingest_batch(store, json.dumps(other).encode())
    assert (o.reason, o.path) == ("already_started", "id")


async def test_replay_resolves_or_keeps_the_letter_with_the_new_reason(store: EventStore):
    letters = DeadLetterStore(store)
    ingest = QuoteIngest(store, letters)
    (o,) = await ingest_batch(store, updated("r"))
    letter = await letters.get(o.letter_id)
    replayers = {"quotes": ingest.replay}
    still = await letters.replay(letter, replayers)
    assert (still.status, still.reason) == ("open", "unknown_quote")
    fixed = await letters.replay(still, replayers, b'{"quoteId": "r", "products": 1}')
    assert (fixed.status, fixed.reason, fixed.path) == ("open", "wrong_type", "products")
    await ingest_batch(store, started("r"))
    done = await letters.replay(await letters.get(o.letter_id[:8]), replayers)
    assert done.status == "resolved"
    assert (await letters.get(o.letter_id)).status == "resolved"
    assert await store.stream_version("quote-r") == 2
    assert [type(a).__name__ for a in (await letters.get(o.letter_id)).attempts] == [
        "ReplayFailed",
        "ReplayFailed",
        "Resolved",
    ]


async def test_concurrent_ingests_of_one_quote_store_each_event_once(store: EventStore):
    await ingest_batch(store, started("k"))
    updates = [
        updated("k", [{**json.loads(UPDATE)["products"][0], "id": f"p{i}"}]) for i in range(8)
    ]
    results = await asyncio.gather(*(ingest_batch(store, u) for u in updates * 2))
    statuses = [r[0].status for r in results]
    assert statuses.count("stored") >= 8
    assert "dead_lettered" not in statuses
    events = await store.read_stream("quote-k")
    digests = [e.metadata["digest"] for e in events[1:]]
    # no two consecutive events are one and the same
    assert all(a != b for a, b in itertools.pairwise(digests))
    assert len(set(digests)) == 8


async def test_a_nul_in_a_quote_id_is_dead_lettered_not_a_failure_of_the_batch(store: EventStore):
    # the id cannot name a stream, and the letter's context quotes it: the log holds no
    # NUL, so the letter must escape it rather than fail the batch after "ok" was stored
    bad = json.dumps({**json.loads(QUOTE_STARTED), "id": "q\u0000x"}).encode()
    outcomes = await ingest_batch(store, started("ok"), bad)
    assert [(o.status, o.reason) for o in outcomes] == [
        ("stored", None),
        ("dead_lettered", "bad_value"),
    ]
    (letter,) = await DeadLetterStore(store).letters("quotes")
    assert restore(letter.letter.payload, letter.letter.payload_encoding) == bad
    assert letter.letter.context["quote_id"] == "q\\x00x"
    # any source's refusal text is kept escaped, never refused by the log
    letters = DeadLetterStore(store)
    other = await letters.record(
        "quotes", b"x", Refusal("r", "a\ud800", "m\x00"), context={"k\x00": "\udfff"}
    )
    kept = (await letters.get(other.letter_id)).letter
    assert (kept.path, kept.message, kept.context) == ("a\\ud800", "m\\x00", {"k\\x00": "\\udfff"})


async def test_a_batch_sent_again_is_repeated_whole_with_several_updates_of_a_quote(
    store: EventStore,
):
    # a client whose answer was lost (or a 503 after some appends) sends the same
    # request again: its runs of a quote's updates are the end of the quote's stream,
    # not changes back, and must not be stored a second time
    a, b, c = updated("w", []), updated("w"), updated("w", [json.loads(UPDATE)["products"][0]])
    first = await ingest_batch(store, started("w"), a, b)
    assert [o.status for o in first] == ["stored"] * 3
    again = await ingest_batch(store, started("w"), a, b)
    assert [o.status for o in again] == ["repeated"] * 3
    assert [o.position for o in again] == [o.position for o in first]
    # without the start too, and with an event the first request did not store
    more = await ingest_batch(store, a, b, c)
    assert [o.status for o in more] == ["repeated", "repeated", "stored"]
    # the in-call repeat of [S, a, a, b, a] is the same sequence sent again
    seq = [started("v"), a.replace(b'"w"', b'"v"'), a.replace(b'"w"', b'"v"')]
    seq += [b.replace(b'"w"', b'"v"'), a.replace(b'"w"', b'"v"')]
    assert [o.status for o in await ingest_batch(store, *seq)] == [
        "stored", "stored", "repeated", "stored", "stored",
    ]  # fmt: skip
    assert [o.status for o in await ingest_batch(store, *seq)] == ["repeated"] * 5
    assert await store.stream_version("quote-w") == 4
    assert await store.stream_version("quote-v") == 4
    # a lone change back is still a change, stored
    (back,) = await ingest_batch(store, b)
    assert back.status == "stored"


async def test_a_batch_half_stored_then_sent_again_stores_only_the_rest(store: EventStore):
    a, b = updated("h", []), updated("h")
    await ingest_batch(store, started("h"), a)  # what the failed request had stored
    again = await ingest_batch(store, started("h"), a, b)
    assert [o.status for o in again] == ["repeated", "repeated", "stored"]
    (late,) = await ingest_batch(store, b)
    assert late.status == "repeated"
    assert await store.stream_version("quote-h") == 3


async def test_listing_letters_holds_no_payloads_and_get_gives_the_whole_letter(
    store: EventStore,
):
    # `dlq list` folded every letter with its payload (up to 512 KiB each) in memory
    raws = [b'{"quoteId": "p%d", "pad": "%s"}' % (i, b"y" * 200_000) for i in range(20)]
    outcomes = await ingest_batch(store, *raws)
    letters = DeadLetterStore(store)
    await letters.replay(
        await letters.get(outcomes[0].letter_id),
        {"quotes": QuoteIngest(store, letters).replay},
        b'{"quoteId": "p0", "products": 5}',
    )
    listed = await letters.letters(payloads=False)
    assert [x.letter_id for x in listed] == [o.letter_id for o in outcomes]
    assert all(x.letter.payload == "" for x in listed)
    assert listed[0].attempts[0].payload is None  # the fixed payload tried, too
    assert (listed[0].reason, listed[1].letter.payload_bytes) == ("wrong_type", len(raws[1]))
    whole = await letters.get(outcomes[0].letter_id[:8])
    assert restore(whole.letter.payload, whole.letter.payload_encoding) == raws[0]
    assert whole.attempts[0].payload == '{"quoteId": "p0", "products": 5}'
