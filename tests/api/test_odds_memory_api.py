"""The odds read model bounded behind the API (docs/service.md, *Memory*): a market let
go leaves ``GET /odds`` but ``GET /odds/{id}``, its event log and GraphQL still answer
for it, read from its stream; a restarted server starts from the view's snapshot."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from oddstream.eventstore import open_store

from .conftest import LiveServer, live_settings, run_server
from .test_odds_api import ACME, ACME_KEY, create, send


def listing(server: LiveServer, query: str = "") -> tuple[list[str], str]:
    answer = send(server, "GET", f"/odds{query}")
    assert answer.status_code == 200, answer.text
    return [r["ExternalID"] for r in answer.json()["Data"]], answer.headers["X-Total-Count"]


def graphql_record(server: LiveServer, external_id: str) -> Any:
    document = 'query { getOddsByExternalId(external_id: "%s") { external_id deleted } }'
    answer = httpx.post(
        f"{server.url}/api/graphql", json={"query": document % external_id}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["getOddsByExternalId"]


def test_a_market_let_go_still_answers_and_a_restart_starts_from_the_snapshot(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps({"keys": [{"key": ACME_KEY, "role": "provider", "provider": "acme"}]})
    )
    settings = live_settings(tmp_path, api_keys_file=str(keys), keep_finished_markets=1)
    for server in run_server(settings):
        ids = [create(server, f"new-{n}", game=f"g{n}")["ExternalID"] for n in range(3)]
        position = 0
        for n in (0, 1):
            deleted = send(
                server,
                "DELETE",
                f"/odds/{ids[n]}",
                json={"RequestID": f"del-{n}", "Provider": "acme", "Command": "DeleteOdds"},
                headers=ACME,
            )
            assert deleted.status_code == 200, deleted.text
            position = deleted.json()["Position"]
        # the last market deleted stays listed (keep 1); the one before has left
        assert listing(server, f"?min_position={position}") == ([ids[1], ids[2]], "2")
        assert listing(server, "?page_no=2&page_size=1") == ([ids[2]], "2")
        # the cursor: the markets whose ID is above the last one seen
        first = send(server, "GET", "/odds?page_size=1").json()["Data"][0]
        assert first["ExternalID"] == ids[1]
        assert listing(server, f"?after_id={first['ID']}") == ([ids[2]], "2")
        assert listing(server, f"?after_id={first['ID']}&page_no=2") == ([], "2")
        assert listing(server, "?after_id=0&page_size=1") == ([ids[1]], "2")
        document = "query { getOdds(after_id: %d) { total items { external_id } } }"
        answer = httpx.post(
            f"{server.url}/api/graphql", json={"query": document % first["ID"]}, timeout=10
        )
        assert answer.json()["data"]["getOdds"] == {"total": 2, "items": [{"external_id": ids[2]}]}
        for bad in ("-1", "x", str(2**63)):
            refused = send(server, "GET", f"/odds?after_id={bad}")
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"] == "invalid_request"
        answer = httpx.post(f"{server.url}/api/graphql", json={"query": document % -1}, timeout=10)
        assert answer.json()["errors"][0]["extensions"]["code"] == "invalid_request"
        record = send(server, "GET", f"/odds/{ids[0]}")
        assert record.status_code == 200, record.text
        assert record.json()["Data"]["Deleted"] is True
        assert record.json()["Data"]["GameID"] == "g0"
        events = send(server, "GET", f"/odds/{ids[0]}/events")
        assert events.status_code == 200, events.text
        assert events.headers["X-Total-Count"] == "2"  # created, deleted
        assert graphql_record(server, ids[0]) == {"external_id": ids[0], "deleted": True}
        unknown = "00000000-0000-0000-0000-000000000009"
        assert send(server, "GET", f"/odds/{unknown}").status_code == 404
        assert graphql_record(server, unknown) is None

    async def snapshot() -> tuple[int | None, int]:
        store = await open_store(settings.store_url)
        try:
            found = await store.load_snapshot("odds-view")
            return (None if found is None else found.position), await store.head_position()
        finally:
            await store.close()

    taken, head = asyncio.run(snapshot())
    assert taken == head  # written at stop
    for server in run_server(settings):
        consumers = send(server, "GET", "/healthz").json()["store"]["consumers"]
        assert consumers["odds-view"]["position"] == head
        assert listing(server) == ([ids[1], ids[2]], "2")
        assert send(server, "GET", f"/odds/{ids[0]}").json()["Data"]["Deleted"] is True
