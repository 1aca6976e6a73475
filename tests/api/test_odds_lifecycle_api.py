"""A market's lifecycle over HTTP (``POST /odds/{external_id}/suspend``, ``/resume``,
``/close``, ``/result``, ``/void``) on SQLite and PostgreSQL: each command's success and
refusals with stable codes, provider permissions, request-id idempotency, the velocity
bus, and bets placed over HTTP settled into the wallets exactly once."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from oddstream.pb import fixedodds_pb2, odds_api_pb2

from . import test_odds_api
from .conftest import LiveServer
from .test_market_bets_api import balance, credit, lifecycle, place, settled_balance
from .test_odds_api import ACME, BETA, INGEST_KEY, create, send

#: the odds tests' server (SQLite and PostgreSQL, keys of providers acme and beta)
odds_server = test_odds_api.odds_server


def events_of(server: LiveServer, market: str, position: int) -> int:
    """How many events the market's log holds once the view includes ``position``."""
    answer = send(server, "GET", f"/odds/{market}/events?min_position={position}")
    assert answer.status_code == 200, answer.text
    return int(answer.headers["X-Total-Count"])


def status_of(server: LiveServer, market: str, position: int) -> str:
    """The market's ``Status`` in its record and in the page of every record, once the
    view includes ``position`` (the two answers must agree)."""
    answer = send(server, "GET", f"/odds/{market}?min_position={position}")
    assert answer.status_code == 200, answer.text
    status: str = answer.json()["Data"]["Status"]
    listed = send(server, "GET", "/odds?page_size=100").json()["Data"]
    assert [r["Status"] for r in listed if r["ExternalID"] == market] in ([status], [])
    return status


def expect(answer: Any, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == code
    assert body["Status"] == "fail"
    assert body["Msg"] == body["message"]
    assert body["message"]


def test_a_market_suspended_resumed_closed_and_resulted(odds_server: LiveServer) -> None:
    server = odds_server
    created = create(server, "life-1", game="g-life", draw=3.2)
    market = created["ExternalID"]
    positions = [created["Position"]]
    assert status_of(server, market, created["Position"]) == "open"
    for command, request_id, body, status in (
        ("suspend", "s-1", {}, "suspended"),
        ("resume", "r-1", {"Payload": {"GameID": "g-life"}}, "open"),
        ("close", "c-1", {"EventVelocity": "low"}, "closed"),
        ("result", "res-1", {"Payload": {"Winners": ["draw"], "GameID": "g-life"}}, "resulted"),
    ):
        answer = lifecycle(server, market, command, request_id, **body)
        assert answer.status_code == 200, answer.text
        got = answer.json()
        assert got["Status"] == "success"
        assert got["RequestID"] == request_id
        assert got["ExternalID"] == market
        assert got["Repeated"] is False
        assert got["Msg"] == f"market {market} {command}{'d' if command[-1] == 'e' else 'ed'}"
        assert got["Position"] > positions[-1]
        positions.append(got["Position"])
        assert status_of(server, market, got["Position"]) == status
    # created, suspended, resumed, closed, resulted (no bets to settle)
    assert events_of(server, market, positions[-1]) == 5
    # a resulted market takes no other command
    for command, body in (
        ("suspend", {}),
        ("resume", {}),
        ("close", {}),
        ("result", {"Payload": {"Winners": ["home"]}}),
        ("void", {}),
    ):
        expect(lifecycle(server, market, command, f"late-{command}", **body), 409, "wrong_status")
    # but it may be deleted (no bets left unsettled): then its status is deleted
    delete = {"RequestID": "del-resulted", "Provider": "acme", "Command": "DeleteOdds"}
    deleted = send(server, "DELETE", f"/odds/{market}", json=delete, headers=ACME)
    assert deleted.status_code == 200, deleted.text
    assert status_of(server, market, deleted.json()["Position"]) == "deleted"
    assert send(server, "GET", f"/odds/{market}").json()["Data"]["Deleted"] is True


def test_each_command_is_refused_in_a_state_that_does_not_allow_it(
    odds_server: LiveServer,
) -> None:
    server = odds_server
    market = create(server, "state-1")["ExternalID"]
    expect(lifecycle(server, market, "resume", "x1"), 409, "wrong_status")  # open
    result = {"Payload": {"Winners": ["home"]}}
    expect(lifecycle(server, market, "result", "x2", **result), 409, "wrong_status")  # open
    assert lifecycle(server, market, "suspend", "x3").status_code == 200
    expect(lifecycle(server, market, "suspend", "x4"), 409, "wrong_status")  # suspended
    assert lifecycle(server, market, "close", "x5").status_code == 200  # from suspended
    expect(lifecycle(server, market, "resume", "x6"), 409, "wrong_status")  # closed
    voided = lifecycle(server, market, "void", "x7", Payload={"Reason": "abandoned"})
    assert voided.status_code == 200, voided.text
    assert voided.json()["Msg"] == f"market {market} voided"
    assert status_of(server, market, voided.json()["Position"]) == "voided"
    expect(lifecycle(server, market, "close", "x8"), 409, "wrong_status")  # voided
    # a deleted market refuses everything
    gone = create(server, "state-2")["ExternalID"]
    delete = {"RequestID": "del", "Provider": "acme", "Command": "DeleteOdds"}
    deleted = send(server, "DELETE", f"/odds/{gone}", json=delete, headers=ACME)
    assert deleted.status_code == 200
    assert status_of(server, gone, deleted.json()["Position"]) == "deleted"
    expect(lifecycle(server, gone, "suspend", "x9"), 409, "market_deleted")
    # void from open, straight away
    other = create(server, "state-3")["ExternalID"]
    assert lifecycle(server, other, "void", "x10").status_code == 200


BAD_RESULTS: list[tuple[str, Any, int, str]] = [
    ("no payload", None, 422, "invalid_request"),
    ("no winners", {}, 422, "invalid_request"),
    ("empty winners", {"Winners": []}, 422, "invalid_request"),
    ("unknown outcome", {"Winners": ["nobody"]}, 422, "invalid_request"),
    ("too many winners", {"Winners": ["home", "away", "draw", "home"]}, 422, "invalid_request"),
    ("a winner twice", {"Winners": ["home", "home"]}, 422, "bad_result"),
    ("a draw on a two-way market", {"Winners": ["draw"]}, 422, "bad_result"),
    ("unknown field", {"Winners": ["home"], "Loser": "away"}, 422, "invalid_request"),
    ("another game", {"Winners": ["home"], "GameID": "g-other"}, 409, "game_mismatch"),
]


@pytest.mark.parametrize(
    ("what", "payload", "status", "code"), BAD_RESULTS, ids=[b[0] for b in BAD_RESULTS]
)
def test_a_bad_result_is_a_4xx_with_a_reason_and_writes_nothing(
    odds_server: LiveServer, what: str, payload: Any, status: int, code: str
) -> None:
    server = odds_server
    market = create(server, "bad-res", game="g-bad")["ExternalID"]
    closed = lifecycle(server, market, "close", "close-1")
    assert closed.status_code == 200
    body = {} if payload is None else {"Payload": payload}
    answer = lifecycle(server, market, "result", "res-bad", **body)
    expect(answer, status, code)
    assert answer.json()["RequestID"] == "res-bad"
    assert events_of(server, market, closed.json()["Position"]) == 2
    # the market can still be resulted (nothing was half written)
    fine = lifecycle(server, market, "result", "res-good", Payload={"Winners": ["away"]})
    assert fine.status_code == 200, fine.text


def test_bad_bodies_paths_and_markets(odds_server: LiveServer) -> None:
    server = odds_server
    market = create(server, "bad-1")["ExternalID"]
    # the Command must be the route's
    answer = lifecycle(server, market, "suspend", "b1")
    assert answer.status_code == 200
    wrong = {"RequestID": "b2", "Provider": "acme", "Command": "CloseOdds"}
    expect(
        send(server, "POST", f"/odds/{market}/resume", json=wrong, headers=ACME),
        422,
        "invalid_request",
    )
    expect(
        lifecycle(server, market, "resume", "b3", Payload={"Reason": "x"}), 422, "invalid_request"
    )
    expect(lifecycle(server, market, "resume", "b4", EventVelocity="warp"), 422, "invalid_request")
    expect(lifecycle(server, market, "resume", "b5", Domain="Bets"), 422, "invalid_request")
    no_id = {"Provider": "acme", "Command": "ResumeOdds"}
    expect(
        send(server, "POST", f"/odds/{market}/resume", json=no_id, headers=ACME),
        422,
        "invalid_request",
    )
    raw = {"content": b"{", "headers": {**ACME, "Content-Type": "application/json"}}
    expect(send(server, "POST", f"/odds/{market}/resume", **raw), 422, "invalid_request")
    text = {"content": b"{}", "headers": {**ACME, "Content-Type": "text/plain"}}
    expect(send(server, "POST", f"/odds/{market}/resume", **text), 415, "unsupported_media_type")
    # a protobuf body without its Command: 422 in protobuf (in JSON when Accept asks)
    proto_headers = {**ACME, "Content-Type": "application/x-protobuf"}
    path = f"/odds/{market}/resume"
    refused = send(server, "POST", path, content=b"\x0a\x01x", headers=proto_headers)
    assert refused.status_code == 422
    message = odds_api_pb2.CommandResponse.FromString(refused.content)
    assert (message.status, message.error) == (odds_api_pb2.STATUS_FAIL, "invalid_request")
    assert message.request_id == "x"
    as_json = {**proto_headers, "Accept": "application/json"}
    expect(send(server, "POST", path, content=b"", headers=as_json), 422, "invalid_request")
    control = lifecycle(server, market, "void", "b6", Payload={"Reason": "a\u202eb"})
    expect(control, 422, "invalid_request")
    assert "Reason" in control.json()["message"]
    expect(lifecycle(server, "not-a-uuid", "close", "b7"), 422, "bad_external_id")
    missing = "00000000-0000-0000-0000-000000000001"
    expect(lifecycle(server, missing, "close", "b8"), 404, "market_not_found")
    # the market is still as the one good command left it
    assert lifecycle(server, market, "resume", "b9").status_code == 200


def test_providers_command_only_their_own_markets(odds_server: LiveServer) -> None:
    server = odds_server
    market = create(server, "perm-1")["ExternalID"]
    for command in ("suspend", "close", "void"):
        answer = send(
            server,
            "POST",
            f"/odds/{market}/{command}",
            json={"RequestID": "p", "Provider": "acme", "Command": f"{command.capitalize()}Odds"},
        )
        expect(answer, 401, "unauthenticated")
        for headers in ({"X-API-Key": INGEST_KEY}, server.customer("alice")):
            expect(lifecycle(server, market, command, "p", headers=headers), 403, "forbidden")
        # beta's key in acme's name, and in its own name on acme's market
        expect(lifecycle(server, market, command, "p", headers=BETA), 403, "provider_mismatch")
        theirs = lifecycle(server, market, command, "p", headers=BETA, provider="beta")
        expect(theirs, 403, "not_owner")
    result = {"Payload": {"Winners": ["home"]}}
    expect(
        lifecycle(server, market, "result", "p", headers=BETA, provider="beta", **result),
        403,
        "not_owner",
    )
    # an admin speaks for any provider, but only the owner's name is the owner's
    expect(
        lifecycle(server, market, "suspend", "adm-1", headers=server.admin, provider="beta"),
        403,
        "not_owner",
    )
    by_admin = lifecycle(server, market, "suspend", "adm-2", headers=server.admin)
    assert by_admin.status_code == 200, by_admin.text
    # acme's own key: the market is still open to it
    assert lifecycle(server, market, "resume", "own-1").status_code == 200


def test_a_request_id_makes_a_lifecycle_command_idempotent(odds_server: LiveServer) -> None:
    server = odds_server
    market = create(server, "idem-1", draw=3.0)["ExternalID"]
    first = lifecycle(server, market, "close", "close-1")
    again = lifecycle(server, market, "close", "close-1")
    assert first.status_code == again.status_code == 200
    assert (first.json()["Repeated"], again.json()["Repeated"]) == (False, True)
    assert first.json()["Position"] == again.json()["Position"]
    assert {**first.json(), "Repeated": True} == again.json()
    # the same id with another body: refused, nothing written
    expect(
        lifecycle(server, market, "close", "close-1", EventVelocity="high"),
        422,
        "request_id_reused",
    )
    expect(
        lifecycle(server, market, "close", "close-1", Payload={"GameID": "g-other"}),
        422,
        "request_id_reused",
    )
    result = {"Payload": {"Winners": ["home", "draw"]}}
    one = lifecycle(server, market, "result", "res-1", **result)
    two = lifecycle(server, market, "result", "res-1", **result)
    assert one.status_code == two.status_code == 200, one.text
    assert two.json()["Repeated"] is True
    assert two.json()["Position"] == one.json()["Position"]
    other = lifecycle(server, market, "result", "res-1", Payload={"Winners": ["away"]})
    expect(other, 422, "request_id_reused")
    # created, closed, resulted: the retries and refusals wrote nothing
    assert events_of(server, market, two.json()["Position"]) == 3
    # a retry of the close after the market moved on still answers its first answer
    late = lifecycle(server, market, "close", "close-1")
    assert late.status_code == 200
    assert late.json()["Repeated"] is True


def test_lifecycle_events_are_published_on_their_velocity_tier(odds_server: LiveServer) -> None:
    server = odds_server

    def published() -> dict[str, float]:
        metrics = send(server, "GET", "/metrics").text
        pattern = r'oddstream_velocity_events_total\{outcome="published",tier="(\w+)"\} ([0-9.]+)'
        return {tier: float(n) for tier, n in re.findall(pattern, metrics)}

    market = create(server, "bus-1", EventVelocity="low")["ExternalID"]
    before = published()
    assert lifecycle(server, market, "suspend", "bus-s", EventVelocity="high").status_code == 200
    assert lifecycle(server, market, "close", "bus-c").status_code == 200  # medium
    voided = lifecycle(server, market, "void", "bus-v", EventVelocity="high")
    assert voided.status_code == 200
    after = published()
    assert after["high"] - before["high"] == 2
    assert after["medium"] - before["medium"] == 1
    assert after["low"] == before["low"]


def test_bets_placed_over_http_are_settled_over_http_exactly_once(
    odds_server: LiveServer,
) -> None:
    server = odds_server
    win = create(server, "e2e-win", game="g-win", home=1.91, away=2.1)["ExternalID"]
    heat = create(server, "e2e-heat", game="g-heat", home=2.5, away=1.62, draw=3)["ExternalID"]
    void = create(server, "e2e-void", game="g-void", home=1.5, away=2.75)["ExternalID"]
    credit(server, "bob", 20_000)
    bob = server.customer("bob")
    bets = {}
    for name, market, outcome, stake, price in (
        ("win", win, "home", 1_000, 1.91),
        ("lose", win, "away", 500, 2.1),
        ("heat-home", heat, "home", 1_001, 2.5),
        ("heat-draw", heat, "draw", 333, 3),
        ("heat-away", heat, "away", 700, 1.62),
        ("void", void, "away", 777, 2.75),
    ):
        answer = place(server, market, bob, outcome=outcome, stake_cents=stake, price=price)
        assert answer.status_code == 201, answer.text
        bets[name] = answer.json()
    staked = 1_000 + 500 + 1_001 + 333 + 700 + 777
    last_bet = max(b["position"] for b in bets.values())
    assert balance(server, "bob", last_bet) == (20_000 - staked, staked)

    for market in (win, heat):
        closed = lifecycle(server, market, "close", f"close-{market}")
        assert closed.status_code == 200, closed.text
        # bets are refused once closed, the stake back in the wallet
        refused = place(server, market, bob, outcome="home", stake_cents=100, price=1.5)
        assert (refused.status_code, refused.json()["error"]) == (409, "market_closed")
    resulted = lifecycle(server, win, "result", "res-win", Payload={"Winners": ["home"]})
    heat_result = {"Payload": {"Winners": ["home", "draw"]}}
    dead_heat = lifecycle(server, heat, "result", "res-heat", **heat_result)
    voided = lifecycle(server, void, "void", "void-1", Payload={"Reason": "abandoned"})
    for answer in (resulted, dead_heat, voided):
        assert answer.status_code == 200, answer.text
    # the win: ⌊1000 × 1.91⌋ = 1910; the dead heat: ⌊1001 × 2.5 / 2⌋ = 1251 and
    # ⌊333 × 3 / 2⌋ = 499 (499.5 rounded down); the void: the 777 back; the rest lost
    expected = (20_000 - staked + 1_910 + 1_251 + 499 + 777, 0)
    assert settled_balance(server, "bob", expected) == expected

    # retried, the result and the void write nothing and pay nothing again
    again = lifecycle(server, win, "result", "res-win", Payload={"Winners": ["home"]})
    assert again.json()["Repeated"] is True
    assert lifecycle(server, void, "void", "void-1", Payload={"Reason": "abandoned"}).json()[
        "Repeated"
    ]
    # a later write to the wallet, read with min_position: every payment before it is in
    # the balance, and there is exactly one of each
    later = send(
        server, "POST", "/wallet/bob/credit", json={"amount_cents": 1}, headers=server.admin
    )
    assert later.status_code == 200, later.text
    assert balance(server, "bob", later.json()["position"]) == (expected[0] + 1, 0)
    statement = send(
        server,
        "GET",
        f"/wallet/bob/transactions?min_position={later.json()['position']}",
        headers=bob,
    ).json()["transactions"]
    kinds = [t["type"] for t in statement]
    assert kinds.count("WinningsCredited") == 3
    assert kinds.count("StakeRefunded") == 1
    assert kinds.count("StakeLost") == 2
    credited = sorted(t["amount_cents"] for t in statement if t["type"] == "WinningsCredited")
    assert credited == [499, 1_251, 1_910]


def test_the_paid_balance_is_read_at_the_settlement_in_the_statement(
    odds_server: LiveServer,
) -> None:
    """The recipe the docs give for the paid balance after a result (its answer's
    ``Position`` precedes the cashier's payouts): the bet's settlement in the wallet's
    statement, then a read at that entry's position."""
    server = odds_server
    market = create(server, "paid-1", game="g-paid", home=2.5, away=1.5)["ExternalID"]
    credit(server, "alice", 5_000)
    alice = server.customer("alice")
    bet = place(server, market, alice, outcome="home", stake_cents=1_000, price=2.5)
    assert bet.status_code == 201, bet.text
    bet_id = bet.json()["bet_id"]
    assert lifecycle(server, market, "close", "paid-close").status_code == 200
    resulted = lifecycle(server, market, "result", "paid-res", Payload={"Winners": ["home"]})
    assert resulted.status_code == 200, resulted.text
    deadline = time.monotonic() + 10
    paid: list[dict[str, Any]] = []
    while not paid and time.monotonic() < deadline:
        statement = send(server, "GET", "/wallet/alice/transactions", headers=alice).json()
        paid = [
            t
            for t in statement["transactions"]
            if t["type"] == "WinningsCredited" and bet_id.endswith(t["bet_id"])
        ]
        time.sleep(0.02)
    assert [t["amount_cents"] for t in paid] == [2_500]  # ⌊1000 × 2.5⌋
    assert paid[0]["position"] > resulted.json()["Position"]
    assert balance(server, "alice", paid[0]["position"]) == (5_000 - 1_000 + 2_500, 0)


def test_request_ids_are_per_command(odds_server: LiveServer) -> None:
    """As the docs say: the recorded id holds the Command, so one RequestID for a close
    and then a result is two requests, each carried out once."""
    server = odds_server
    market = create(server, "per-cmd")["ExternalID"]
    closed = lifecycle(server, market, "close", "one-id")
    resulted = lifecycle(server, market, "result", "one-id", Payload={"Winners": ["away"]})
    assert closed.status_code == resulted.status_code == 200, resulted.text
    assert (closed.json()["Repeated"], resulted.json()["Repeated"]) == (False, False)
    assert resulted.json()["Position"] > closed.json()["Position"]
    # each is still recognised as its own retry
    assert lifecycle(server, market, "close", "one-id").json()["Repeated"] is True


# ------------------------------------------------------------------------- protobuf

PROTO = "application/x-protobuf"
PB_COMMANDS = {
    "suspend": odds_api_pb2.COMMAND_SUSPEND_ODDS,
    "resume": odds_api_pb2.COMMAND_RESUME_ODDS,
    "close": odds_api_pb2.COMMAND_CLOSE_ODDS,
    "result": odds_api_pb2.COMMAND_RESULT_ODDS,
    "void": odds_api_pb2.COMMAND_VOID_ODDS,
}


def pb_request(
    command: str,
    request_id: str,
    *,
    pb_command: int | None = None,
    payload: odds_api_pb2.Payload | None = None,
    **fields: Any,
) -> bytes:
    """A lifecycle ``CommandRequest`` in protobuf, in acme's name."""
    message = odds_api_pb2.CommandRequest(
        request_id=request_id,
        provider="acme",
        command=PB_COMMANDS[command] if pb_command is None else pb_command,  # type: ignore[arg-type]
        **fields,
    )
    if payload is not None:
        message.payload.SetInParent()  # present, even empty
        message.payload.MergeFrom(payload)
    return message.SerializeToString()


def pb_lifecycle(server: LiveServer, market: str, command: str, body: bytes) -> Any:
    """``POST /odds/{market}/<command>`` with a protobuf body: (status, CommandResponse)."""
    answer = send(
        server,
        "POST",
        f"/odds/{market}/{command}",
        content=body,
        headers={**ACME, "Content-Type": PROTO},
    )
    assert answer.headers["content-type"] == PROTO, answer.text
    return answer.status_code, odds_api_pb2.CommandResponse.FromString(answer.content)


def pb_status(server: LiveServer, market: str, position: int) -> str:
    """The market's record's status, read in protobuf once the view includes
    ``position``."""
    answer = send(
        server, "GET", f"/odds/{market}?min_position={position}", headers={"Accept": PROTO}
    )
    record = odds_api_pb2.QueryResponse.FromString(answer.content).record
    return odds_api_pb2.MarketStatus.Name(record.status)


def test_the_lifecycle_in_protobuf(odds_server: LiveServer) -> None:
    """Each lifecycle command with a protobuf body, answered in protobuf, read back in
    protobuf; a JSON retry of a protobuf command is the same request (``Repeated``)."""
    server = odds_server
    market = create(server, "pb-life", game="g-pb", draw=3.2)["ExternalID"]
    outcome = fixedodds_pb2
    steps = [
        ("suspend", None, "MARKET_STATUS_SUSPENDED"),
        ("resume", odds_api_pb2.Payload(game_id="g-pb"), "MARKET_STATUS_OPEN"),
        ("close", odds_api_pb2.Payload(), "MARKET_STATUS_CLOSED"),
        (
            "result",
            odds_api_pb2.Payload(winners=[outcome.OUTCOME_HOME, outcome.OUTCOME_DRAW]),
            "MARKET_STATUS_RESULTED",
        ),
    ]
    last = 0
    for command, payload, status in steps:
        code, answer = pb_lifecycle(
            server, market, command, pb_request(command, f"pb-{command}", payload=payload)
        )
        assert code == 200, answer
        assert answer.status == odds_api_pb2.STATUS_SUCCESS
        assert (answer.request_id, answer.external_id, answer.repeated) == (
            f"pb-{command}",
            market,
            False,
        )
        assert answer.msg == f"market {market} {command}{'d' if command[-1] == 'e' else 'ed'}"
        assert answer.position > last
        last = answer.position
        assert pb_status(server, market, last) == status
    # the result named a dead heat: home and draw, as a JSON body would
    retry = lifecycle(server, market, "result", "pb-result", Payload={"Winners": ["home", "draw"]})
    assert retry.status_code == 200, retry.text
    assert (retry.json()["Repeated"], retry.json()["Position"]) == (True, last)
    expect(
        lifecycle(server, market, "result", "pb-result", Payload={"Winners": ["home"]}),
        422,
        "request_id_reused",
    )
    assert events_of(server, market, last) == 5

    # a void with its reason; its JSON retry is the same request
    other = create(server, "pb-void")["ExternalID"]
    body = pb_request("void", "pb-v", payload=odds_api_pb2.Payload(reason="abandoned"))
    code, voided = pb_lifecycle(server, other, "void", body)
    assert (code, voided.msg) == (200, f"market {other} voided")
    assert pb_status(server, other, voided.position) == "MARKET_STATUS_VOIDED"
    again = lifecycle(server, other, "void", "pb-v", Payload={"Reason": "abandoned"})
    assert again.json()["Repeated"] is True
    expect(lifecycle(server, other, "void", "pb-v"), 422, "request_id_reused")  # default reason
    # without a payload: the default reason, as in JSON
    third = create(server, "pb-void-2")["ExternalID"]
    code, answer = pb_lifecycle(server, third, "void", pb_request("void", "pb-v2"))
    assert code == 200, answer
    assert lifecycle(server, third, "void", "pb-v2").json()["Repeated"] is True
    # the market's state still decides: wrong_status, in protobuf
    code, answer = pb_lifecycle(server, third, "close", pb_request("close", "pb-late"))
    assert (code, answer.status, answer.error) == (409, odds_api_pb2.STATUS_FAIL, "wrong_status")


W = fixedodds_pb2
BAD_PROTOBUF: list[tuple[str, str, bytes, int, str, str]] = [
    ("not protobuf", "suspend", b"\xff\xff\xff\xff", 422, "invalid_request", "not a protobuf"),
    (
        "another route's command",
        "suspend",
        pb_request("suspend", "b", pb_command=odds_api_pb2.COMMAND_CLOSE_ODDS),
        422,
        "invalid_request",
        "Command",
    ),
    (
        "no command",
        "close",
        pb_request("close", "b", pb_command=odds_api_pb2.COMMAND_UNSPECIFIED),
        422,
        "invalid_request",
        "Command",
    ),
    ("no payload", "result", pb_request("result", "b"), 422, "invalid_request", "Payload"),
    (
        "no winners",
        "result",
        pb_request("result", "b", payload=odds_api_pb2.Payload()),
        422,
        "invalid_request",
        "Winners",
    ),
    (
        "an unspecified winner",
        "result",
        pb_request("result", "b", payload=odds_api_pb2.Payload(winners=[0])),
        422,
        "invalid_request",
        "Payload.Winners: 0 is no outcome",
    ),
    (
        "a winner no enum names",
        "result",
        pb_request("result", "b", payload=odds_api_pb2.Payload(winners=[7])),
        422,
        "invalid_request",
        "Payload.Winners: 7 is no outcome",
    ),
    (
        "a winner twice",
        "result",
        pb_request("result", "b", payload=odds_api_pb2.Payload(winners=[W.OUTCOME_AWAY] * 2)),
        422,
        "bad_result",
        "",
    ),
    (
        "a draw on a two-way market",
        "result",
        pb_request("result", "b", payload=odds_api_pb2.Payload(winners=[W.OUTCOME_DRAW])),
        422,
        "bad_result",
        "",
    ),
    (
        "winners on a suspend",
        "suspend",
        pb_request("suspend", "b", payload=odds_api_pb2.Payload(winners=[W.OUTCOME_HOME])),
        422,
        "invalid_request",
        "Winners",
    ),
    (
        "a reason on a close",
        "close",
        pb_request("close", "b", payload=odds_api_pb2.Payload(reason="x")),
        422,
        "invalid_request",
        "Reason",
    ),
    (
        "prices on a resume",
        "resume",
        pb_request(
            "resume",
            "b",
            payload=odds_api_pb2.Payload(
                money_line=odds_api_pb2.MoneyLine(home=W.Odds(num=2, den=1))
            ),
        ),
        422,
        "invalid_request",
        "MoneyLine",
    ),
    (
        "an empty reason",
        "void",
        pb_request("void", "b", payload=odds_api_pb2.Payload(reason="")),
        422,
        "invalid_request",
        "Reason",
    ),
    (
        "a control character in the reason",
        "void",
        pb_request("void", "b", payload=odds_api_pb2.Payload(reason="a\u202eb")),
        422,
        "invalid_request",
        "Reason",
    ),
    (
        "a bad game",
        "close",
        pb_request("close", "b", payload=odds_api_pb2.Payload(game_id="no spaces")),
        422,
        "invalid_request",
        "GameID",
    ),
    (
        "another game",
        "close",
        pb_request("close", "b", payload=odds_api_pb2.Payload(game_id="g-other")),
        409,
        "game_mismatch",
        "",
    ),
    (
        "a field of a newer schema",
        "suspend",
        pb_request("suspend", "b") + b"\xa0\x06\x01",
        422,
        "invalid_request",
        "numbered 100",
    ),
    ("no request id", "suspend", pb_request("suspend", ""), 422, "invalid_request", "RequestID"),
    (
        "a velocity no enum names",
        "suspend",
        pb_request("suspend", "b", event_velocity=9),
        422,
        "invalid_request",
        "EventVelocity 9",
    ),
]


@pytest.mark.parametrize(
    ("what", "command", "body", "status", "code", "reason"),
    BAD_PROTOBUF,
    ids=[b[0] for b in BAD_PROTOBUF],
)
def test_a_bad_protobuf_lifecycle_body_is_a_4xx_with_a_reason_and_writes_nothing(
    odds_server: LiveServer,
    what: str,
    command: str,
    body: bytes,
    status: int,
    code: str,
    reason: str,
) -> None:
    server = odds_server
    created = create(server, "pbbad")  # two-way, game g1
    market = created["ExternalID"]
    if command == "result":
        closed = lifecycle(server, market, "close", "pbbad-close")
        assert closed.status_code == 200, closed.text
    before = events_of(server, market, created["Position"])
    got, answer = pb_lifecycle(server, market, command, body)
    assert (got, answer.status, answer.error) == (status, odds_api_pb2.STATUS_FAIL, code), answer
    assert answer.msg
    assert reason in answer.msg
    # nothing written: a command that is fine comes next, and the log has only it more
    fine = lifecycle(server, market, "void", "pbbad-void")
    assert fine.status_code == 200, fine.text
    assert events_of(server, market, fine.json()["Position"]) == before + 1


def test_a_protobuf_lifecycle_body_is_held_to_the_same_permissions(
    odds_server: LiveServer,
) -> None:
    """The provider in a protobuf body is checked as a JSON body's: no key 401, a key of
    another role 403, beta's key in acme's name ``provider_mismatch``, in its own name
    on acme's market ``not_owner``; each answered in protobuf, nothing written."""
    server = odds_server
    created = create(server, "pb-perm")
    market = created["ExternalID"]
    before = events_of(server, market, created["Position"])
    winners = odds_api_pb2.Payload(winners=[fixedodds_pb2.OUTCOME_HOME])
    for command in PB_COMMANDS:
        payload = winners if command == "result" else None
        as_acme = pb_request(command, "pp", payload=payload)
        as_beta = odds_api_pb2.CommandRequest.FromString(as_acme)
        as_beta.provider = "beta"
        for headers, body, status, code in (
            ({}, as_acme, 401, "unauthenticated"),
            ({"X-API-Key": INGEST_KEY}, as_acme, 403, "forbidden"),
            (BETA, as_acme, 403, "provider_mismatch"),
            (BETA, as_beta.SerializeToString(), 403, "not_owner"),
        ):
            answer = send(
                server,
                "POST",
                f"/odds/{market}/{command}",
                content=body,
                headers={**headers, "Content-Type": PROTO},
            )
            assert answer.headers["content-type"] == PROTO, answer.text
            got = odds_api_pb2.CommandResponse.FromString(answer.content)
            assert (answer.status_code, got.status, got.error) == (
                status,
                odds_api_pb2.STATUS_FAIL,
                code,
            ), (command, got)
    fine = lifecycle(server, market, "void", "pp-void")
    assert fine.status_code == 200, fine.text
    assert events_of(server, market, fine.json()["Position"]) == before + 1
