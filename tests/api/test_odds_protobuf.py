"""The odds routes in protobuf (docs/protobuf.md): command bodies with ``Content-Type:
application/x-protobuf``, answers in protobuf to an ``Accept`` that prefers it, JSON
otherwise; each answer decoded with the generated protobuf classes and checked against
the JSON the same service answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest

from oddstream.application import odds_proto
from oddstream.application.odds import record_json
from oddstream.domain.fixedodds import MoneyLine, Odds
from oddstream.domain.fixedodds.market import MarketStatus
from oddstream.pb import fixedodds_pb2, odds_api_pb2
from oddstream.projections.odds_view import OddsRecord

from .conftest import LiveServer, live_settings, run_server

ACME_KEY = "acme-provider-key-7Qx2Lm9Zr4"
PROTO = "application/x-protobuf"
SEND = {"X-API-Key": ACME_KEY, "Content-Type": PROTO}
WANT = {"Accept": PROTO}


@pytest.fixture(scope="module")
def proto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp_path: Path = tmp_path_factory.mktemp("odds-proto")
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps({"keys": [{"key": ACME_KEY, "role": "provider", "provider": "acme"}]})
    )
    yield from run_server(live_settings(tmp_path, api_keys_file=str(keys)))


def price(num: int, den: int) -> fixedodds_pb2.Odds:
    return fixedodds_pb2.Odds(num=num, den=den)


def request_body(
    command: int,
    request_id: str,
    *,
    game: str = "g1",
    home: fixedodds_pb2.Odds | None = None,
    away: fixedodds_pb2.Odds | None = None,
    draw: fixedodds_pb2.Odds | None = None,
    **fields: Any,
) -> bytes:
    line = odds_api_pb2.MoneyLine(home=home or price(191, 100), away=away or price(191, 100))
    if draw is not None:
        line.draw.CopyFrom(draw)
    message = odds_api_pb2.CommandRequest(
        request_id=request_id,
        provider="acme",
        command=command,  # type: ignore[arg-type]
        payload=odds_api_pb2.Payload(game_id=game, money_line=line),
        **fields,
    )
    return message.SerializeToString()


def command_answer(response: httpx.Response) -> odds_api_pb2.CommandResponse:
    assert response.headers["content-type"] == PROTO, response.text
    return odds_api_pb2.CommandResponse.FromString(response.content)


def query_answer(response: httpx.Response) -> odds_api_pb2.QueryResponse:
    assert response.headers["content-type"] == PROTO, response.text
    assert response.headers["vary"] == "Accept"
    return odds_api_pb2.QueryResponse.FromString(response.content)


def fraction(odds: fixedodds_pb2.Odds) -> Fraction:
    return Fraction(odds.num, odds.den)


def new_market(url: str, request_id: str, **kw: Any) -> str:
    body = request_body(odds_api_pb2.COMMAND_NEW_ODDS, request_id, **kw)
    answer = command_answer(httpx.post(f"{url}/odds", content=body, headers=SEND))
    assert answer.status == odds_api_pb2.STATUS_SUCCESS, answer
    return answer.external_id


def test_a_market_over_protobuf_from_command_to_record_and_log(proto_server: LiveServer) -> None:
    url = proto_server.url
    body = request_body(
        odds_api_pb2.COMMAND_NEW_ODDS,
        "p-1",
        home=price(41, 20),
        away=price(21, 13),  # fractional 8/13: no decimal writes it
        draw=price(13, 4),
        event_velocity=odds_api_pb2.EVENT_VELOCITY_HIGH,
    )
    created = httpx.post(f"{url}/odds", content=body, headers=SEND)
    assert created.status_code == 201
    answer = command_answer(created)  # a protobuf body, no Accept: answered in protobuf
    assert answer.status == odds_api_pb2.STATUS_SUCCESS
    assert answer.request_id == "p-1"
    assert not answer.repeated
    assert created.headers["location"] == f"/odds/{answer.external_id}"
    market, position = answer.external_id, answer.position

    # the record, exact in protobuf; JSON shows the same market to six places
    got = query_answer(
        httpx.get(f"{url}/odds/{market}", params={"min_position": position}, headers=WANT)
    )
    assert got.status == odds_api_pb2.STATUS_SUCCESS
    assert got.WhichOneof("data") == "record"
    record = got.record
    assert (record.external_id, record.game_id, record.deleted) == (market, "g1", False)
    assert record.status == odds_api_pb2.MARKET_STATUS_OPEN
    line = record.money_line
    assert [fraction(line.home), fraction(line.away), fraction(line.draw)] == [
        Fraction(41, 20),
        Fraction(21, 13),
        Fraction(13, 4),
    ]
    as_json = httpx.get(f"{url}/odds/{market}")
    assert as_json.headers["content-type"] == "application/json"
    data = as_json.json()["Data"]
    assert data["ID"] == record.id
    assert data["MoneyLine"] == {"Home": 2.05, "Away": 1.615385, "Draw": 3.25}
    for name in ("CreatedAt", "UpdatedAt"):
        stamp = getattr(record, name.replace("At", "_at").lower())
        assert stamp.ToDatetime(tzinfo=UTC) == datetime.fromisoformat(data[name])

    # an update and a delete in protobuf; the log in protobuf equals the log in JSON
    patch = request_body(
        odds_api_pb2.COMMAND_UPDATE_ODDS,
        "p-2",
        home=price(2, 1),
        away=price(9, 5),
        draw=price(7, 2),
    )
    updated = command_answer(httpx.patch(f"{url}/odds/{market}", content=patch, headers=SEND))
    assert updated.status == odds_api_pb2.STATUS_SUCCESS
    assert updated.position > position
    gone = odds_api_pb2.CommandRequest(
        request_id="p-3",
        provider="acme",
        command=odds_api_pb2.COMMAND_DELETE_ODDS,
        payload=odds_api_pb2.Payload(game_id="g1"),
    )
    deleted = httpx.request(
        "DELETE", f"{url}/odds/{market}", content=gone.SerializeToString(), headers=SEND
    )
    final = command_answer(deleted).position
    log = query_answer(
        httpx.get(f"{url}/odds/{market}/events", params={"min_position": final}, headers=WANT)
    )
    log_json = httpx.get(f"{url}/odds/{market}/events").json()["Data"]
    assert [
        (e.id, e.odds_id, e.event_id, e.created_at.ToDatetime(tzinfo=UTC)) for e in log.events.items
    ] == [
        (e["ID"], e["OddsID"], e["EventID"], datetime.fromisoformat(e["CreatedAt"]))
        for e in log_json
    ]
    assert len(log.events.items) == 3
    again = query_answer(httpx.get(f"{url}/odds/{market}", headers=WANT)).record
    assert again.deleted
    assert again.status == odds_api_pb2.MARKET_STATUS_DELETED
    assert fraction(again.money_line.away) == Fraction(9, 5)


@pytest.mark.parametrize(
    "status", [s for s in MarketStatus if s is not MarketStatus.UNCREATED], ids=str
)
def test_a_record_s_status_is_its_protobuf_enum(status: MarketStatus) -> None:
    """Each status a record shows (the JSON ``Status``) has its ``MarketStatus`` value."""
    line = MoneyLine(home=Odds.from_decimal("2"), away=Odds.from_decimal("2"))
    at = datetime(2026, 11, 30, tzinfo=UTC)
    record = OddsRecord(
        id=1,
        external_id="m",
        game_id="g1",
        provider="acme",
        money_line=line,
        deleted=status is MarketStatus.DELETED,
        created_at=at,
        updated_at=at,
        version=1,
        position=1,
        status=status,
    )
    message = odds_proto.record_message(record)
    assert odds_api_pb2.MarketStatus.Name(message.status) == f"MARKET_STATUS_{status.name}"
    assert record_json(record)["Status"] == status.value


def test_a_page_of_markets_in_protobuf_is_the_json_page(proto_server: LiveServer) -> None:
    url = proto_server.url
    for i in range(3):
        new_market(url, f"page-{i}", game=f"page-game-{i}")
    params = {"page_no": 1, "page_size": 2}
    page = httpx.get(f"{url}/odds", params=params, headers=WANT)
    got = query_answer(page)
    as_json = httpx.get(f"{url}/odds", params=params)
    assert got.WhichOneof("data") == "records"
    assert [
        (r.external_id, odds_api_pb2.MarketStatus.Name(r.status)) for r in got.records.items
    ] == [(r["ExternalID"], f"MARKET_STATUS_{r['Status'].upper()}") for r in as_json.json()["Data"]]
    assert len(got.records.items) == 2
    assert page.headers["x-total-count"] == as_json.headers["x-total-count"]
    assert got.msg == as_json.json()["Msg"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("text/html", "application/json"),  # nothing offered matches: JSON, as every route
        ("application/x-protobuf", PROTO),
        ("application/protobuf", "application/protobuf"),
        ("application/json;q=0.5, application/x-protobuf", PROTO),
        ("application/x-protobuf;q=0.2, application/json", "application/json"),
        ("application/*;q=0.3, application/x-protobuf;q=0.9", PROTO),
        ("application/x-protobuf;q=0", "application/json"),
    ],
)
def test_a_query_answers_the_type_accept_prefers(
    proto_server: LiveServer, accept: str | None, expected: str
) -> None:
    headers = {} if accept is None else {"Accept": accept}
    response = httpx.get(f"{proto_server.url}/odds", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == expected
    assert response.headers["vary"] == "Accept"
    if expected == "application/json":
        assert response.json()["Status"] == "success"
    else:
        assert odds_api_pb2.QueryResponse.FromString(response.content).status == 1


def test_json_and_protobuf_bodies_are_one_request_to_the_idempotency_check(
    proto_server: LiveServer,
) -> None:
    url = proto_server.url
    body = request_body(odds_api_pb2.COMMAND_NEW_ODDS, "same-1", game="idem")
    first = command_answer(httpx.post(f"{url}/odds", content=body, headers=SEND))
    retry = command_answer(httpx.post(f"{url}/odds", content=body, headers=SEND))
    assert retry.repeated
    assert (retry.external_id, retry.position) == (first.external_id, first.position)
    as_json = {
        "RequestID": "same-1",
        "Provider": "acme",
        "Command": "NewOdds",
        "Payload": {"GameID": "idem", "MoneyLine": {"Home": 1.91, "Away": 1.91}},
    }
    answer = httpx.post(f"{url}/odds", json=as_json, headers={"X-API-Key": ACME_KEY})
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["Repeated"] is True
    assert answer.json()["ExternalID"] == first.external_id
    # a protobuf body answered in JSON when Accept asks for it
    in_json = httpx.post(
        f"{url}/odds", content=body, headers={**SEND, "Accept": "application/json"}
    )
    assert in_json.json()["Repeated"] is True


def _refused(response: httpx.Response, status: int, code: str) -> odds_api_pb2.CommandResponse:
    assert response.status_code == status, response.content
    answer = command_answer(response)
    assert answer.status == odds_api_pb2.STATUS_FAIL
    assert answer.error == code, answer
    assert answer.msg
    return answer


@pytest.mark.parametrize(
    ("body", "code", "reason"),
    [
        (b"\xff\xff\xff\xff", "invalid_request", "not a protobuf CommandRequest"),
        (request_body(1, "bad-den", home=price(3, 0)), "bad_odds", "Payload.MoneyLine.Home"),
        (request_body(1, "too-low", away=price(1, 1)), "odds_too_low", "Payload.MoneyLine.Away"),
        (request_body(1, "too-high", home=price(10_002, 1)), "odds_too_high", "Home"),
        (request_body(1, "fine", home=price(3_000_001, 1_000_001)), "bad_odds", "finer"),
        (request_body(2, "wrong-command"), "invalid_request", "Command"),
        (request_body(0, "no-command"), "invalid_request", "Command"),
        (request_body(1, ""), "invalid_request", "RequestID"),
        (request_body(1, "bad-game", game="no spaces"), "invalid_request", "GameID"),
        (request_body(1, "velocity", event_velocity=9), "invalid_request", "EventVelocity 9"),
        (request_body(1, "unknown") + b"\xa0\x06\x01", "invalid_request", "numbered 100"),
        (
            odds_api_pb2.CommandRequest(
                request_id="np", provider="acme", command=1
            ).SerializeToString(),
            "invalid_request",
            "Payload",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_every_bad_protobuf_command_is_a_422_in_protobuf(
    proto_server: LiveServer, body: bytes, code: str, reason: str
) -> None:
    response = httpx.post(f"{proto_server.url}/odds", content=body, headers=SEND)
    answer = _refused(response, 422, code)
    assert reason in answer.msg


def test_refusals_of_rights_and_of_missing_markets_in_protobuf(proto_server: LiveServer) -> None:
    url = proto_server.url
    body = request_body(odds_api_pb2.COMMAND_NEW_ODDS, "rights-1")
    no_key = httpx.post(f"{url}/odds", content=body, headers={"Content-Type": PROTO})
    assert _refused(no_key, 401, "unauthenticated").request_id == "rights-1"
    other = odds_api_pb2.CommandRequest.FromString(body)
    other.provider = "beta"
    mismatch = httpx.post(f"{url}/odds", content=other.SerializeToString(), headers=SEND)
    _refused(mismatch, 403, "provider_mismatch")
    missing = httpx.get(f"{url}/odds/00000000-0000-0000-0000-000000000001", headers=WANT)
    assert missing.status_code == 404
    answer = query_answer(missing)
    assert (answer.status, answer.error) == (odds_api_pb2.STATUS_FAIL, "market_not_found")
    assert answer.WhichOneof("data") is None
    bad_page = query_answer(httpx.get(f"{url}/odds", params={"page_size": 1000}, headers=WANT))
    assert bad_page.error == "bad_page"


def test_a_json_body_still_needs_a_json_content_type(proto_server: LiveServer) -> None:
    response = httpx.post(
        f"{proto_server.url}/odds",
        content=b"RequestID=x",
        headers={"X-API-Key": ACME_KEY, "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    # the refusal in the format Accept prefers, as every other refusal of the route
    in_proto = httpx.post(
        f"{proto_server.url}/odds",
        content=b"RequestID=x",
        headers={"X-API-Key": ACME_KEY, "Content-Type": "text/plain", **WANT},
    )
    _refused(in_proto, 415, "unsupported_media_type")
