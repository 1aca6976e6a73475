"""The fixed-odds markets over HTTP in the odds service's shapes: commands, queries,
idempotency, provider permissions, refusals, and replay (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from oddstream.api.auth import KeyConfigError, KeyRing
from oddstream.application.access import Principal, authorize_wallet
from oddstream.application.errors import ApiError
from oddstream.application.odds import MAX_PAGE_SIZE, record_json
from oddstream.domain.fixedodds import MoneyLine, Odds
from oddstream.domain.fixedodds.market import MarketStatus
from oddstream.eventstore import open_store
from oddstream.projections.odds_view import OddsRecord, OddsView

from .conftest import LiveServer, live_settings, run_server

ACME_KEY = "acme-provider-key-7Qx2Lm9Zr4"
BETA_KEY = "beta-provider-key-3Vn8Kw1Yt6"
INGEST_KEY = "ingest-feed-key-5Hd0Pj7Xc2"
ACME = {"X-API-Key": ACME_KEY}
BETA = {"X-API-Key": BETA_KEY}


@pytest.fixture(params=["sqlite", "postgres"])
def odds_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {"key": ACME_KEY, "role": "provider", "provider": "acme"},
                    {"key": BETA_KEY, "role": "provider", "provider": "beta"},
                    {"key": INGEST_KEY, "role": "ingest"},
                ]
            }
        )
    )
    overrides: dict[str, Any] = {"api_keys_file": str(keys)}
    if request.param == "postgres":
        overrides["store_url"] = request.getfixturevalue("pg_url")
        overrides["pg_schema"] = request.getfixturevalue("pg_schema")
    settings = live_settings(tmp_path, **overrides)
    request.node.odds_settings = settings
    yield from run_server(settings)


def command(
    kind: str,
    request_id: str,
    *,
    provider: str = "acme",
    game: str = "g1",
    home: Any = 1.91,
    away: Any = 1.91,
    draw: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    line = {"Home": home, "Away": away}
    if draw is not None:
        line["Draw"] = draw
    return {
        "RequestID": request_id,
        "Provider": provider,
        "Command": kind,
        "Domain": "Odds",
        "EventVelocity": "medium",
        "Payload": {"GameID": game, "MoneyLine": line},
        **extra,
    }


def raw(body: str) -> dict[str, Any]:
    """A request with a JSON body written by hand (numbers exactly as given)."""
    return {"content": body.encode(), "headers": {**ACME, "Content-Type": "application/json"}}


def send(server: LiveServer, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", timeout=10, **kw)


def create(server: LiveServer, request_id: str, **kw: Any) -> dict[str, Any]:
    answer = send(server, "POST", "/odds", json=command("NewOdds", request_id, **kw), headers=ACME)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_metrics_count_the_events_published_on_the_velocity_bus(odds_server: LiveServer) -> None:
    server = odds_server
    create(server, "new-high", EventVelocity="high")
    create(server, "new-low", game="football:g2", EventVelocity="low")
    metrics = send(server, "GET", "/metrics").text
    for tier, count in (("high", 1), ("medium", 0), ("low", 1)):
        sample = f'oddstream_velocity_events_total{{outcome="published",tier="{tier}"}} {count}.0'
        assert sample in metrics
        assert f'oddstream_velocity_events_total{{outcome="dropped",tier="{tier}"}} 0.0' in metrics


def test_a_market_created_updated_read_and_deleted(odds_server: LiveServer) -> None:
    server = odds_server
    created = create(server, "new-1", draw=3.4)
    external_id = created["ExternalID"]
    assert uuid.UUID(external_id)
    assert str(uuid.UUID(external_id)) == external_id
    assert created["RequestID"] == "new-1"
    assert created["Status"] == "success"
    assert created["Repeated"] is False
    assert external_id in created["Msg"]

    body = '{"RequestID":"up-1","Provider":"acme","Command":"UpdateOdds","Domain":"Odds",'
    body += '"Payload":{"GameID":"g1","MoneyLine":{"Home":2.05,"Away":1.8,"Draw":3.25}}}'
    updated = send(server, "PATCH", f"/odds/{external_id}", **raw(body))
    assert updated.status_code == 200, updated.text
    assert updated.json()["Status"] == "success"

    read = send(server, "GET", f"/odds/{external_id}?min_position={updated.json()['Position']}")
    assert read.status_code == 200, read.text
    answer = read.json()
    assert set(answer) == {"RequestID", "Status", "Msg", "Data"}
    assert answer["Status"] == "success"
    record = answer["Data"]
    assert set(record) == {
        "ID",
        "ExternalID",
        "GameID",
        "MoneyLine",
        "Deleted",
        "CreatedAt",
        "UpdatedAt",
        "Status",
    }
    assert record["Status"] == "open"
    assert record["ExternalID"] == external_id
    assert record["GameID"] == "g1"
    assert record["MoneyLine"] == {"Home": 2.05, "Away": 1.8, "Draw": 3.25}
    assert record["Deleted"] is False
    assert record["UpdatedAt"] > record["CreatedAt"]
    assert record["ID"] == created["Position"]  # the MarketCreated's place in the log

    deleted = send(
        server,
        "DELETE",
        f"/odds/{external_id}",
        json={"RequestID": "del-1", "Provider": "acme", "Command": "DeleteOdds"},
        headers=ACME,
    )
    assert deleted.status_code == 200, deleted.text
    position = deleted.json()["Position"]
    after = send(server, "GET", f"/odds/{external_id}?min_position={position}").json()["Data"]
    assert after["Deleted"] is True
    assert after["Status"] == "deleted"
    assert after["MoneyLine"] == record["MoneyLine"]

    events = send(server, "GET", f"/odds/{external_id}/events?min_position={position}")
    assert events.status_code == 200, events.text
    log = events.json()["Data"]
    assert [set(e) for e in log] == [{"ID", "OddsID", "EventID", "CreatedAt"}] * 3
    assert [e["OddsID"] for e in log] == [record["ID"]] * 3
    assert [e["ID"] for e in log] == [created["Position"], updated.json()["Position"], position]
    assert events.headers["X-Total-Count"] == "3"
    second = send(server, "GET", f"/odds/{external_id}/events?page_no=2&page_size=2").json()
    assert second["Data"] == log[2:]

    again = send(
        server,
        "PATCH",
        f"/odds/{external_id}",
        json=command("UpdateOdds", "up-2", home=2.5),
        headers=ACME,
    )
    assert again.status_code == 409
    assert again.json()["error"] == "market_deleted"
    assert again.json()["Status"] == "fail"
    assert again.json()["RequestID"] == "up-2"


def test_prices_are_read_exactly_from_the_json_digits(odds_server: LiveServer) -> None:
    server = odds_server
    body = '{"RequestID":"exact-1","Provider":"acme","Command":"NewOdds","Domain":"Odds",'
    body += '"Payload":{"GameID":"g9","MoneyLine":{"Home":1.000001,"Away":10001,"Draw":2.123456}}}'
    created = send(server, "POST", "/odds", **raw(body))
    assert created.status_code == 201, created.text
    got = send(
        server,
        "GET",
        f"/odds/{created.json()['ExternalID']}?min_position=" + str(created.json()["Position"]),
    )
    text = got.text
    assert '"Home":1.000001' in text
    assert '"Away":10001' in text
    assert '"Draw":2.123456' in text
    # a price a float would round to an allowed one is refused: its digits are read
    tiny = body.replace("exact-1", "exact-2").replace("1.000001", "1.0000000000000000001")
    refused = send(server, "POST", "/odds", **raw(tiny))
    assert refused.status_code == 422
    assert refused.json()["Status"] == "fail"
    over = body.replace("exact-1", "exact-3").replace("10001", "10001.0000000000000001")
    refused = send(server, "POST", "/odds", **raw(over))
    assert refused.status_code == 422
    assert refused.json()["error"] == "bad_odds"


def test_a_request_id_makes_a_command_idempotent(odds_server: LiveServer) -> None:
    server = odds_server
    first = create(server, "same-1")
    again = create(server, "same-1")
    assert again["ExternalID"] == first["ExternalID"]
    assert again["Position"] == first["Position"]
    assert again["Repeated"] is True
    listed = send(server, "GET", f"/odds?min_position={first['Position']}").json()
    assert [r["ExternalID"] for r in listed["Data"]] == [first["ExternalID"]]
    # the same id with another request: refused, nothing written
    other = send(
        server, "POST", "/odds", json=command("NewOdds", "same-1", game="g2"), headers=ACME
    )
    assert other.status_code == 422
    assert other.json()["error"] == "request_id_reused"
    assert other.json()["Status"] == "fail"
    other = send(
        server,
        "POST",
        "/odds",
        json=command("NewOdds", "same-1", EventVelocity="high"),
        headers=ACME,
    )
    assert other.status_code == 422
    assert other.json()["error"] == "request_id_reused"
    path = f"/odds/{first['ExternalID']}"
    update = command("UpdateOdds", "up-same", home=2.2)
    one = send(server, "PATCH", path, json=update, headers=ACME).json()
    two = send(server, "PATCH", path, json=update, headers=ACME).json()
    assert (one["Repeated"], two["Repeated"]) == (False, True)
    assert one["Position"] == two["Position"]
    events = send(server, "GET", f"{path}/events?min_position={two['Position']}").json()
    assert len(events["Data"]) == 2
    # another provider's id space: beta's "same-1" is a market of its own
    beta = send(
        server, "POST", "/odds", json=command("NewOdds", "same-1", provider="beta"), headers=BETA
    )
    assert beta.status_code == 201
    assert beta.json()["ExternalID"] != first["ExternalID"]


def test_providers_change_only_their_own_markets(odds_server: LiveServer) -> None:
    server = odds_server
    market = create(server, "own-1")["ExternalID"]
    path = f"/odds/{market}"
    theirs = command("UpdateOdds", "steal-1", provider="beta", home=5)
    answer = send(server, "PATCH", path, json=theirs, headers=BETA)
    assert answer.status_code == 403
    assert answer.json()["error"] == "not_owner"
    # a provider key speaking for another provider
    answer = send(server, "PATCH", path, json=command("UpdateOdds", "x", home=5), headers=BETA)
    assert answer.status_code == 403
    assert answer.json()["error"] == "provider_mismatch"
    answer = send(server, "POST", "/odds", json=command("NewOdds", "x"), headers=BETA)
    assert answer.status_code == 403
    assert answer.json()["error"] == "provider_mismatch"
    # no key, a key of another role, an unknown key
    body = command("UpdateOdds", "y", home=5)
    assert send(server, "PATCH", path, json=body).status_code == 401
    for headers in ({"X-API-Key": INGEST_KEY}, server.customer("alice")):
        answer = send(server, "PATCH", path, json=body, headers=headers)
        assert answer.status_code == 403
        assert answer.json()["error"] == "forbidden"
    delete = {"RequestID": "d", "Provider": "beta", "Command": "DeleteOdds"}
    answer = send(server, "DELETE", path, json=delete, headers=BETA)
    assert answer.status_code == 403
    assert answer.json()["error"] == "not_owner"
    # an admin may speak for any provider, but the market is still its owner's
    admin = send(
        server, "PATCH", path, json=command("UpdateOdds", "adm", home=2.5), headers=server.admin
    )
    assert admin.status_code == 200, admin.text
    position = admin.json()["Position"]
    record = send(server, "GET", f"{path}?min_position={position}").json()["Data"]
    assert record["MoneyLine"]["Home"] == 2.5


BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("not json", "{", 422, "invalid_request"),
    ("an array", "[]", 422, "invalid_request"),
    ("no RequestID", {"Provider": "acme", "Command": "NewOdds"}, 422, "invalid_request"),
    (
        "wrong command",
        {**command("NewOdds", "b1"), "Command": "UpdateOdds"},
        422,
        "invalid_request",
    ),
    ("wrong domain", {**command("NewOdds", "b2"), "Domain": "Bets"}, 422, "invalid_request"),
    ("bad velocity", {**command("NewOdds", "b3"), "EventVelocity": "warp"}, 422, "invalid_request"),
    ("unknown field", {**command("NewOdds", "b4"), "Extra": 1}, 422, "invalid_request"),
    ("price as string", command("NewOdds", "b5", home="1.91"), 422, "invalid_request"),
    ("price of 1", command("NewOdds", "b6", home=1), 422, "invalid_request"),
    ("negative price", command("NewOdds", "b7", away=-3), 422, "invalid_request"),
    ("price as bool", command("NewOdds", "b8", home=True), 422, "invalid_request"),
    ("too fine", command("NewOdds", "b9", home=1.1234567), 422, "bad_odds"),
    ("bad game", command("NewOdds", "b10", game="g 1"), 422, "invalid_request"),
    ("long request id", command("NewOdds", "r" * 201), 422, "invalid_request"),
]


@pytest.mark.parametrize(
    ("what", "body", "status", "code"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
def test_every_bad_command_is_a_4xx_with_a_reason(
    server: LiveServer, tmp_path: Path, what: str, body: Any, status: int, code: str
) -> None:
    kw: dict[str, Any] = (
        {"content": body.encode(), "headers": {**server.admin, "Content-Type": "application/json"}}
        if isinstance(body, str)
        else {"json": body, "headers": server.admin}
    )
    answer = send(server, "POST", "/odds", **kw)
    assert answer.status_code == status, answer.text
    got = answer.json()
    assert got["error"] == code
    assert got["Status"] == "fail"
    assert got["Msg"] == got["message"]
    assert got["message"]


def test_bad_paths_queries_and_states_are_4xx(server: LiveServer) -> None:
    admin = server.admin
    market = send(server, "POST", "/odds", json=command("NewOdds", "s1"), headers=admin).json()
    path = f"/odds/{market['ExternalID']}"
    cases = [
        ("GET", "/odds/not-a-uuid", None, 422, "bad_external_id"),
        ("GET", f"/odds/{market['ExternalID'].upper()}", None, 422, "bad_external_id"),
        ("GET", f"/odds/{uuid.uuid4()}", None, 404, "market_not_found"),
        ("GET", f"/odds/{uuid.uuid4()}/events", None, 404, "market_not_found"),
        ("GET", f"/odds?page_size={MAX_PAGE_SIZE + 1}", None, 422, "bad_page"),
        ("GET", "/odds?page_size=0", None, 422, "bad_page"),
        ("GET", "/odds?page_no=0", None, 422, "bad_page"),
        ("GET", "/odds?page_no=abc", None, 422, "invalid_request"),
        ("GET", "/odds?min_position=-1", None, 422, "invalid_request"),
        ("GET", f"/odds?min_position={2**62}", None, 409, "position_not_reached"),
        ("PATCH", f"/odds/{uuid.uuid4()}", command("UpdateOdds", "u1"), 404, "market_not_found"),
        ("PATCH", "/odds/nope", command("UpdateOdds", "u2"), 422, "bad_external_id"),
        ("PATCH", path, command("UpdateOdds", "u3", draw=3.0), 409, "bad_money_line"),
        ("PATCH", path, command("UpdateOdds", "u4", game="g2"), 409, "game_mismatch"),
        ("PATCH", path, command("NewOdds", "u5"), 422, "invalid_request"),
    ]
    for method, where, body, status, code in cases:
        answer = send(server, method, where, json=body, headers=admin)
        assert answer.status_code == status, (method, where, answer.text)
        got = answer.json()
        assert (got["error"], got["Status"]) == (code, "fail"), got
    plain = send(
        server, "POST", "/odds", content=b"{}", headers={**admin, "Content-Type": "text/plain"}
    )
    assert plain.status_code == 415
    assert plain.json()["Status"] == "fail"
    unchanged = send(server, "PATCH", path, json=command("UpdateOdds", "u6"), headers=admin)
    assert unchanged.status_code == 200
    assert unchanged.json()["Position"] > market["Position"]  # recorded all the same


def test_pages_of_markets_are_bounded_and_in_order(server: LiveServer) -> None:
    made = [
        send(
            server,
            "POST",
            "/odds",
            json=command("NewOdds", f"p{i}", game=f"g{i}"),
            headers=server.admin,
        ).json()
        for i in range(5)
    ]
    last = made[-1]["Position"]
    page = send(server, "GET", f"/odds?page_no=2&page_size=2&min_position={last}")
    assert page.status_code == 200
    assert page.headers["X-Total-Count"] == "5"
    assert [r["ExternalID"] for r in page.json()["Data"]] == [m["ExternalID"] for m in made[2:4]]
    # the message names the page's size as a size, not as a count of pages
    assert page.json()["Msg"] == "page 2 (2 a page): 2 of 5 markets"
    assert send(server, "GET", "/odds?page_no=9").json()["Data"] == []
    assert page.json()["RequestID"] == page.headers["X-Correlation-ID"]


async def test_replaying_the_log_answers_the_same(
    odds_server: LiveServer, request: pytest.FixtureRequest
) -> None:
    server = odds_server
    markets = [create(server, f"r{i}", game=f"g{i}", draw=3.1 if i % 2 else None) for i in range(4)]
    update = send(
        server,
        "PATCH",
        f"/odds/{markets[1]['ExternalID']}",
        json=command("UpdateOdds", "r-up", game="g1", home=2.75, draw=3.3),
        headers=ACME,
    ).json()
    delete = send(
        server,
        "DELETE",
        f"/odds/{markets[2]['ExternalID']}",
        json={
            "RequestID": "r-del",
            "Provider": "acme",
            "Command": "DeleteOdds",
            "Payload": {"GameID": "g2"},
        },
        headers=ACME,
    ).json()
    position = max(update["Position"], delete["Position"])
    live = send(server, "GET", f"/odds?min_position={position}").json()["Data"]
    settings = request.node.odds_settings
    store = await open_store(settings.store_url, **settings.store_options())
    try:
        view = OddsView(store)
        await view.rebuild()
        replayed = [record_json(r) for r in view.page(1, MAX_PAGE_SIZE)]
    finally:
        await store.close()
    # the same records as the live projection (prices as the JSON numbers it writes)
    assert json.loads(msgspec.json.Encoder(decimal_format="number").encode(replayed)) == live
    assert live[2]["Deleted"] is True
    assert live[1]["MoneyLine"]["Home"] == 2.75


def test_the_odds_routes_are_in_the_openapi_document(server: LiveServer) -> None:
    document = send(server, "GET", "/openapi.json").json()
    paths = document["paths"]
    assert set(paths["/odds"]) == {"get", "post"}
    assert set(paths["/odds/{external_id}"]) == {"get", "patch", "delete"}
    assert "get" in paths["/odds/{external_id}/events"]
    for action in ("suspend", "resume", "close", "result", "void"):
        assert set(paths[f"/odds/{{external_id}}/{action}"]) == {"post"}
    schemas = document["components"]["schemas"]
    assert schemas["ResultOddsRequest"]["properties"]["Command"] == {"enum": ["ResultOdds"]}
    winners = schemas["ResultPayloadIn"]["properties"]["Winners"]
    assert (winners["minItems"], winners["maxItems"]) == (1, 3)
    # a winner named twice is refused (422 bad_result): the document must say so
    assert winners["uniqueItems"] is True
    assert "pattern" in schemas["VoidPayloadIn"]["properties"]["Reason"]  # free text
    assert schemas["MoneyLineIn"]["properties"]["Home"]["type"] == "number"
    assert schemas["NewOddsRequest"]["properties"]["Command"] == {"enum": ["NewOdds"]}
    record = paths["/odds/{external_id}"]["get"]["responses"]["200"]["content"]
    record = record["application/json"]["schema"]["properties"]["Data"]
    assert record["properties"]["Status"]["enum"] == [
        "open",
        "suspended",
        "closed",
        "resulted",
        "voided",
        "deleted",
    ]
    # an additional field: the record's required fields are the issue's
    assert record["required"] == [
        "ID",
        "ExternalID",
        "GameID",
        "MoneyLine",
        "Deleted",
        "CreatedAt",
        "UpdatedAt",
    ]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"key": ACME_KEY, "role": "provider"}, "needs a provider id"),
        ({"key": ACME_KEY, "role": "provider", "provider": "a b"}, "needs a provider id"),
        ({"key": ACME_KEY, "role": "provider", "provider": 7}, "a provider is a string"),
        ({"key": ACME_KEY, "role": "ingest", "provider": "acme"}, "only a provider key"),
    ],
)
def test_provider_keys_are_checked_when_read(
    tmp_path: Path, entry: dict[str, Any], reason: str
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [entry]}))
    with pytest.raises(KeyConfigError, match=reason):
        KeyRing.from_settings(live_settings(tmp_path, api_keys_file=str(keys)))


def test_a_provider_key_uses_no_wallet() -> None:
    principal = Principal("provider", provider="acme")
    with pytest.raises(ApiError, match="odds commands") as refused:
        authorize_wallet(principal, "alice")
    assert refused.value.status == 403


def test_a_deeply_nested_or_out_of_range_body_is_a_422_naming_its_request_id(
    server: LiveServer,
) -> None:
    """The RequestID of a refusal is read without building the rest of the body: nesting
    too deep to skip is a 422 (it was a 500), and a number out of range elsewhere does not
    hide the RequestID."""
    nested = "[" * 100_000 + "]" * 100_000
    head = '{"RequestID":"deep-1","Provider":"acme","Command":"%s","Extra":'
    for method, path, kind in (
        ("POST", "/odds", "NewOdds"),
        ("PATCH", f"/odds/{uuid.uuid4()}", "UpdateOdds"),
    ):
        body = (head % kind) + nested + "}"
        answer = send(
            server,
            method,
            path,
            content=body.encode(),
            headers={**server.admin, "Content-Type": "application/json"},
        )
        assert answer.status_code == 422, answer.text
        assert (answer.json()["error"], answer.json()["Status"]) == ("invalid_request", "fail")
    body = json.dumps(command("NewOdds", "range-1")).replace('"Away": 1.91', '"Away": 1e999999')
    answer = send(
        server,
        "POST",
        "/odds",
        content=body.encode(),
        headers={**server.admin, "Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["RequestID"] == "range-1"


def test_a_retried_update_that_changed_nothing_cannot_bring_old_prices_back(
    odds_server: LiveServer,
) -> None:
    """An update to the prices a market has is recorded too, so its RequestID is known:
    its retry after a later update is a repeat, not the old prices again."""
    server = odds_server
    market = create(server, "noop-1", home=2.5, away=1.6)["ExternalID"]
    path = f"/odds/{market}"
    same = command("UpdateOdds", "noop-same", home=2.5, away=1.6)
    first = send(server, "PATCH", path, json=same, headers=ACME)
    assert first.status_code == 200, first.text
    assert first.json()["Repeated"] is False
    later_body = command("UpdateOdds", "noop-later", home=3)
    later = send(server, "PATCH", path, json=later_body, headers=ACME)
    assert later.status_code == 200, later.text
    retry = send(server, "PATCH", path, json=same, headers=ACME)
    assert retry.status_code == 200, retry.text
    assert retry.json()["Repeated"] is True
    assert retry.json()["Position"] == first.json()["Position"]
    record = send(server, "GET", f"{path}?min_position={later.json()['Position']}").json()["Data"]
    assert record["MoneyLine"]["Home"] == 3
    # and the id is taken: another body under it is a reuse
    reused = command("UpdateOdds", "noop-same", home=4, away=1.6)
    answer = send(server, "PATCH", path, json=reused, headers=ACME)
    assert answer.status_code == 422
    assert answer.json()["error"] == "request_id_reused"


def test_record_times_are_utc_with_microseconds_so_their_text_sorts_as_they_do() -> None:
    """A time on a whole second was written without its fraction (``…:00Z``), which
    sorts after ``…:00.500000Z`` as text; and a time in another zone kept its offset."""
    whole = datetime(2026, 11, 29, 20, 43, 1, tzinfo=UTC)
    later = whole + timedelta(microseconds=500_000)
    line = MoneyLine(home=Odds.from_decimal("2"), away=Odds.from_decimal("2"))
    record = OddsRecord(
        id=1,
        external_id=str(uuid.UUID(int=1)),
        game_id="g1",
        provider="acme",
        money_line=line,
        deleted=False,
        created_at=whole,
        updated_at=later.astimezone(timezone(timedelta(hours=2))),
        version=2,
        position=7,
        status=MarketStatus.OPEN,
    )
    got = record_json(record)
    assert got["CreatedAt"] == "2026-11-29T20:43:01.000000Z"
    assert got["UpdatedAt"] == "2026-11-29T20:43:01.500000Z"
    assert got["CreatedAt"] < got["UpdatedAt"]
