"""``POST /quotes/events`` on a live server: one event, a batch, NDJSON, answered per
event; who may post; the refusals of a request unusable as a whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.conftest import LiveServer, live_settings, run_server
from domain.quotes.samples import PRODUCTS_UPDATED, QUOTE_ID, QUOTE_STARTED

INGEST_KEY = "ingest-key-Xq83LpZr29VwKt4N"
PRODUCER_KEY = "producer-key-Hy62MnQe71BcRs5D"
URL = "/quotes/events"


@pytest.fixture
def quotes_server(tmp_path: Path) -> Iterator[LiveServer]:
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {"key": INGEST_KEY, "role": "ingest"},
                    {"key": PRODUCER_KEY, "role": "producer"},
                ]
            }
        )
    )
    settings = live_settings(tmp_path, api_keys_file=str(keys), max_body_bytes=64 * 1024)
    yield from run_server(settings)


def post(server: LiveServer, body: bytes, media: str = "application/json", **kw) -> httpx.Response:
    headers = {"Content-Type": media, "X-API-Key": INGEST_KEY, **kw.pop("headers", {})}
    return httpx.post(f"{server.url}{URL}", content=body, headers=headers, timeout=10, **kw)


def test_one_event_a_batch_and_ndjson_are_answered_per_event(quotes_server: LiveServer):
    one = post(quotes_server, QUOTE_STARTED.encode())
    assert one.status_code == 200, one.text
    assert one.json()["results"][0]["status"] == "stored"
    assert one.json()["stored"] == 1
    batch = post(quotes_server, b"[" + QUOTE_STARTED.encode() + b', {"x": 1}]')
    assert batch.status_code == 200
    answer = batch.json()
    assert [r["status"] for r in answer["results"]] == ["repeated", "dead_lettered"]
    assert answer["results"][1]["reason"] == "unknown_type"
    assert answer["dead_lettered_by_reason"] == {"unknown_type": 1}
    lines = b"\n".join(
        [b"{broken", json.dumps(json.loads(PRODUCTS_UPDATED)).encode(), b'{"quoteId": 5}']
    )
    nd = post(quotes_server, lines, "application/x-ndjson")
    assert nd.status_code == 200, nd.text
    results = nd.json()["results"]
    assert [(r["line"], r["status"]) for r in results] == [
        (1, "dead_lettered"),
        (2, "stored"),
        (3, "dead_lettered"),
    ]
    assert results[1]["stream"] == f"quote-{QUOTE_ID}"
    assert (results[2]["reason"], results[2]["path"]) == ("wrong_type", "quoteId")


def test_an_admin_key_may_post_and_others_may_not(quotes_server: LiveServer):
    admin = post(quotes_server, QUOTE_STARTED.encode(), headers=quotes_server.admin)
    assert admin.status_code == 200
    customer = post(quotes_server, b"{}", headers=quotes_server.customer("alice"))
    assert (customer.status_code, customer.json()["error"]) == (403, "forbidden")
    producer = post(quotes_server, b"{}", headers={"X-API-Key": PRODUCER_KEY})
    assert (producer.status_code, producer.json()["error"]) == (403, "forbidden")
    anonymous = httpx.post(
        f"{quotes_server.url}{URL}", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "unauthenticated")


def test_a_request_unusable_as_a_whole_is_a_4xx(quotes_server: LiveServer):
    wrong = post(quotes_server, b"{}", "text/plain")
    assert (wrong.status_code, wrong.json()["error"]) == (415, "unsupported_media_type")
    latin = post(quotes_server, b"{}", "application/json; charset=latin-1")
    assert latin.status_code == 415
    big = post(quotes_server, b"[" + b" " * (64 * 1024) + b"]")
    assert (big.status_code, big.json()["error"]) == (413, "too_large")
    empty = post(quotes_server, b"  ")
    assert (empty.status_code, empty.json()["error"]) == (422, "empty_body")
    many = post(quotes_server, b"\n".join([b"1"] * 10_001), "application/x-ndjson")
    assert (many.status_code, many.json()["error"]) == (422, "too_many_events")
    # an empty batch is no refusal: nothing to answer
    none = post(quotes_server, b"[]")
    assert none.status_code == 200
    assert none.json()["results"] == []


def test_an_ingest_key_may_do_nothing_else(quotes_server: LiveServer):
    key = {"X-API-Key": INGEST_KEY}
    balance = httpx.get(f"{quotes_server.url}/wallet/alice/balance", headers=key)
    assert balance.status_code == 403
    assert "ingest key" in balance.json()["message"]
    admin = httpx.post(f"{quotes_server.url}/races/r1/open", headers=key)
    assert admin.status_code == 403
