"""The Schema Registry's HTTP contract: every call of the reference, every error code,
422 (never 500) for bad input, JSON 404s."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from oddstream.integrations.kafka.schema_registry import (
    SchemaRegistry,
    ensure_tote_subjects,
    schema_registry_router,
)

from .conftest import SR_JSON, record_schema

V1 = record_schema("R", {"name": "a", "type": "int"})
V2 = record_schema("R", {"name": "a", "type": "int"}, {"name": "b", "type": "int", "default": 0})
V3_NO_DEFAULT = record_schema("R", {"name": "a", "type": "int"}, {"name": "c", "type": "string"})
OTHER = record_schema("Other", {"name": "x", "type": "string"})


async def register(sr: httpx.AsyncClient, subject: str, schema: str) -> int:
    r = await sr.post(f"/subjects/{subject}/versions", json={"schema": schema})
    assert r.status_code == 200, r.text
    return int(r.json()["id"])


def error(r: httpx.Response, status: int, code: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code, body
    assert isinstance(body["message"], str)
    return str(body["message"])


# ----------------------------------------------------------------- the POC
async def test_poc_subject_is_id_1_on_a_fresh_store(
    registry: SchemaRegistry, sr: httpx.AsyncClient
) -> None:
    assert await ensure_tote_subjects(registry) == {"tote_win_bets-value": 1}
    assert await ensure_tote_subjects(registry) == {"tote_win_bets-value": 1}
    assert registry.version == 1, "the second call wrote nothing"
    r = await sr.get("/subjects/tote_win_bets-value/versions/latest")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(SR_JSON)
    body = r.json()
    assert body["id"] == 1
    assert body["version"] == 1
    assert body["subject"] == "tote_win_bets-value"
    fields = orjson.loads(body["schema"])["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [
        ("RUNNER_ID", ["null", "int"]),
        ("RACE_ID", ["null", "int"]),
        ("AMOUNT", ["null", "double"]),
    ]


# ----------------------------------------------------------------- registering
async def test_register_and_read_back(sr: httpx.AsyncClient) -> None:
    assert await register(sr, "s-value", V1) == 1
    assert await register(sr, "s-value", V2) == 2
    assert (await sr.get("/subjects")).json() == ["s-value"]
    assert (await sr.get("/subjects/s-value/versions")).json() == [1, 2]
    for ref, version, schema_id in [("1", 1, 1), ("2", 2, 2), ("latest", 2, 2), ("-1", 2, 2)]:
        body = (await sr.get(f"/subjects/s-value/versions/{ref}")).json()
        assert (body["version"], body["id"]) == (version, schema_id)
        assert "schemaType" not in body
    body = (await sr.get("/schemas/ids/2")).json()
    assert set(body) == {"schema"}
    assert orjson.loads(body["schema"]) == orjson.loads(V2)
    raw = await sr.get("/subjects/s-value/versions/1/schema")
    assert orjson.loads(raw.text) == orjson.loads(V1)
    assert orjson.loads((await sr.get("/schemas/ids/1/schema")).text) == orjson.loads(V1)
    assert (await sr.get("/subjects/s-value/versions/1/referencedby")).json() == []
    error(await sr.get("/subjects/s-value/versions/9/referencedby"), 404, 40402)


async def test_same_schema_same_id_everywhere(sr: httpx.AsyncClient) -> None:
    first = await register(sr, "a-value", V1)
    # re-registering answers the existing id, with no new version
    assert await register(sr, "a-value", V1) == first
    assert (await sr.get("/subjects/a-value/versions")).json() == [1]
    # the same schema, written differently, in another subject: same id
    spaced = (
        '{ "fields" : [ {"type": {"type": "int"}, "name": "a"} ], "name": "R", "type": "record" }'
    )
    assert await register(sr, "b-value", spaced) == first
    assert (await sr.get("/subjects/b-value/versions/1")).json()["id"] == first
    assert await register(sr, "c-value", OTHER) == first + 1
    assert (await sr.get(f"/schemas/ids/{first}/subjects")).json() == ["a-value", "b-value"]
    assert (await sr.get(f"/schemas/ids/{first}/versions")).json() == [
        {"subject": "a-value", "version": 1},
        {"subject": "b-value", "version": 1},
    ]


async def test_schema_types_lists_what_is_supported(sr: httpx.AsyncClient) -> None:
    assert (await sr.get("/schemas/types")).json() == ["AVRO"]


@pytest.mark.parametrize("schema_type", ["JSON", "PROTOBUF", "XML", 5])
async def test_other_schema_types_are_refused(sr: httpx.AsyncClient, schema_type: Any) -> None:
    r = await sr.post(
        "/subjects/t/versions", json={"schema": '{"type":"object"}', "schemaType": schema_type}
    )
    error(r, 422, 42201)


async def test_explicit_avro_type_and_empty_references_are_fine(sr: httpx.AsyncClient) -> None:
    r = await sr.post(
        "/subjects/t/versions", json={"schema": V1, "schemaType": "AVRO", "references": []}
    )
    assert r.json() == {"id": 1}
    r = await sr.post(
        "/subjects/t/versions",
        json={"schema": V1, "references": [{"name": "x", "subject": "y", "version": 1}]},
    )
    error(r, 422, 42201)


async def test_incompatible_registration_is_409(sr: httpx.AsyncClient) -> None:
    await register(sr, "c", V1)
    r = await sr.post("/subjects/c/versions", json={"schema": V3_NO_DEFAULT})
    message = error(r, 409, 409)
    assert "READER_FIELD_MISSING_DEFAULT_VALUE" in message
    assert (await sr.get("/subjects/c/versions")).json() == [1]
    # under NONE anything goes
    await sr.put("/config/c", json={"compatibility": "NONE"})
    assert await register(sr, "c", V3_NO_DEFAULT) == 2


# ----------------------------------------------------------------- lookup
async def test_lookup(sr: httpx.AsyncClient) -> None:
    await register(sr, "l", V1)
    await register(sr, "l", V2)
    r = await sr.post("/subjects/l", json={"schema": V1})
    assert r.json() == {
        "subject": "l",
        "version": 1,
        "id": 1,
        "schema": r.json()["schema"],
    }
    error(await sr.post("/subjects/l", json={"schema": OTHER}), 404, 40403)
    error(await sr.post("/subjects/nope", json={"schema": V1}), 404, 40401)
    error(await sr.post("/subjects/l", json={"schema": "{"}), 422, 42201)


# ----------------------------------------------------------------- deleting
async def test_soft_and_permanent_deletes(sr: httpx.AsyncClient) -> None:
    await register(sr, "d", V1)
    await register(sr, "d", V2)
    await register(sr, "d2", V1)
    # a version
    assert (await sr.delete("/subjects/d/versions/1")).json() == 1
    assert (await sr.get("/subjects/d/versions")).json() == [2]
    assert (await sr.get("/subjects/d/versions?deleted=true")).json() == [1, 2]
    error(await sr.get("/subjects/d/versions/1"), 404, 40402)
    assert (await sr.get("/subjects/d/versions/1?deleted=true")).json()["id"] == 1
    error(await sr.delete("/subjects/d/versions/1"), 404, 40406)
    error(await sr.delete("/subjects/d/versions/2?permanent=true"), 404, 40407)
    assert (await sr.delete("/subjects/d/versions/1?permanent=true")).json() == 1
    error(await sr.get("/subjects/d/versions/1?deleted=true"), 404, 40402)
    error(await sr.delete("/subjects/d/versions/7"), 404, 40402)
    # the id stays resolvable: ids are never reused
    assert (await sr.get("/schemas/ids/1")).status_code == 200
    # the subject
    error(await sr.delete("/subjects/d?permanent=true"), 404, 40405)
    assert (await sr.delete("/subjects/d")).json() == [2]
    assert (await sr.get("/subjects")).json() == ["d2"]
    assert (await sr.get("/subjects?deleted=true")).json() == ["d", "d2"]
    assert (await sr.get("/subjects?deletedOnly=true")).json() == ["d"]
    error(await sr.get("/subjects/d/versions"), 404, 40401)
    error(await sr.get("/subjects/d/versions/latest"), 404, 40401)
    error(await sr.delete("/subjects/d"), 404, 40404)
    # registering again after a soft delete: same id, a new version
    assert await register(sr, "d", V2) == 2
    assert (await sr.get("/subjects/d/versions")).json() == [3]
    assert (await sr.delete("/subjects/d/versions/latest")).json() == 3
    assert (await sr.delete("/subjects/d?permanent=true")).json() == [2, 3]
    assert (await sr.get("/subjects?deleted=true")).json() == ["d2"]
    error(await sr.delete("/subjects/d"), 404, 40401)
    error(await sr.delete("/subjects/nope/versions/1"), 404, 40401)


# ----------------------------------------------------------------- compatibility
async def test_compatibility_endpoint(sr: httpx.AsyncClient) -> None:
    await register(sr, "k", V1)
    url = "/compatibility/subjects/k/versions/latest"
    assert (await sr.post(url, json={"schema": V2})).json() == {"is_compatible": True}
    assert (await sr.post(url, json={"schema": V3_NO_DEFAULT})).json() == {"is_compatible": False}
    verbose = (await sr.post(url + "?verbose=true", json={"schema": V3_NO_DEFAULT})).json()
    assert verbose["is_compatible"] is False
    assert any("READER_FIELD_MISSING_DEFAULT_VALUE" in m for m in verbose["messages"])
    assert any("BACKWARD" in m for m in verbose["messages"])
    ok = (await sr.post(url + "?verbose=true", json={"schema": V2})).json()
    assert ok == {"is_compatible": True, "messages": []}
    assert (await sr.post("/compatibility/subjects/k/versions/1", json={"schema": V2})).json()[
        "is_compatible"
    ]
    error(await sr.post("/compatibility/subjects/k/versions/9", json={"schema": V2}), 404, 40402)
    error(
        await sr.post("/compatibility/subjects/no/versions/latest", json={"schema": V2}), 404, 40401
    )
    error(await sr.post("/compatibility/subjects/k/versions/x", json={"schema": V2}), 422, 42202)
    error(await sr.post(url, json={"schema": "nope"}), 422, 42201)
    # without a version: what registering would check; an unknown subject is compatible
    r = await sr.post("/compatibility/subjects/new/versions", json={"schema": V1})
    assert r.json() == {"is_compatible": True}


async def test_compatibility_endpoint_follows_the_subject_level(sr: httpx.AsyncClient) -> None:
    await register(sr, "lv", V2)
    # FORWARD: the old schema must read the new; dropping b (with default) is fine,
    # adding c without default is fine too
    await sr.put("/config/lv", json={"compatibility": "FORWARD"})
    r = await sr.post("/compatibility/subjects/lv/versions/latest", json={"schema": V3_NO_DEFAULT})
    assert r.json() == {"is_compatible": True}
    await sr.put("/config/lv", json={"compatibility": "FULL"})
    r = await sr.post("/compatibility/subjects/lv/versions/latest", json={"schema": V3_NO_DEFAULT})
    assert r.json() == {"is_compatible": False}


async def test_transitive_levels_check_every_version(sr: httpx.AsyncClient) -> None:
    v3 = record_schema("R", {"name": "a", "type": "int"}, {"name": "b", "type": "int"})
    await sr.put("/config/tr", json={"compatibility": "BACKWARD"})
    await register(sr, "tr", V1)
    await register(sr, "tr", V2)
    # v3 reads V2 (which has b) but not V1 (which lacks b, and v3's b has no default)
    assert (await sr.post("/compatibility/subjects/tr/versions", json={"schema": v3})).json()[
        "is_compatible"
    ]
    await sr.put("/config/tr", json={"compatibility": "BACKWARD_TRANSITIVE"})
    r = await sr.post("/compatibility/subjects/tr/versions?verbose=true", json={"schema": v3})
    assert r.json()["is_compatible"] is False
    assert any("version 1" in m for m in r.json()["messages"])
    error(await sr.post("/subjects/tr/versions", json={"schema": v3}), 409, 409)
    await sr.put("/config/tr", json={"compatibility": "BACKWARD"})
    assert await register(sr, "tr", v3) == 3


# ----------------------------------------------------------------- config
async def test_config(sr: httpx.AsyncClient) -> None:
    assert (await sr.get("/config")).json() == {"compatibilityLevel": "BACKWARD"}
    assert (await sr.put("/config", json={"compatibility": "full"})).json() == {
        "compatibility": "FULL"
    }
    assert (await sr.get("/config")).json() == {"compatibilityLevel": "FULL"}
    error(await sr.get("/config/s"), 404, 40408)
    assert (await sr.get("/config/s?defaultToGlobal=true")).json() == {"compatibilityLevel": "FULL"}
    assert (await sr.put("/config/s", json={"compatibility": "NONE"})).json() == {
        "compatibility": "NONE"
    }
    assert (await sr.get("/config/s")).json() == {"compatibilityLevel": "NONE"}
    assert (await sr.get("/config/s?defaultToGlobal=true")).json() == {"compatibilityLevel": "NONE"}
    # a subject with only a config is not listed
    assert (await sr.get("/subjects")).json() == []
    assert (await sr.delete("/config/s")).json() == {"compatibilityLevel": "NONE"}
    error(await sr.get("/config/s"), 404, 40408)
    error(await sr.delete("/config/s"), 404, 40408)
    assert (await sr.delete("/config")).json() == {"compatibilityLevel": "FULL"}
    assert (await sr.get("/config")).json() == {"compatibilityLevel": "BACKWARD"}


@pytest.mark.parametrize(
    "body",
    [
        {"compatibility": "SIDEWAYS"},
        {"compatibility": ""},
        {"compatibility": 3},
        {"compatibility": None},
        {},
        ["BACKWARD"],
        "BACKWARD",
    ],
)
async def test_invalid_levels_are_42203(sr: httpx.AsyncClient, body: Any) -> None:
    error(await sr.put("/config", json=body), 422, 42203)
    error(await sr.put("/config/x", json=body), 422, 42203)


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"",
        b"not json",
        b"[1, 2]",
        b'"schema"',
        b"{}",
        b'{"schema": 5}',
        b'{"schema": null}',
        b'{"schema": {"type": "int"}}',
        b'{"schema": "{"}',
        b'{"schema": "{\\"type\\": \\"record\\"}"}',
        b'{"schema": "\\"nosuchtype\\""}',
        b'{"schema": "\\"int\\"", "schemaType": []}',
        b'{"schema": "\\"int\\"", "references": "x"}',
        b"\xff\xfe",
    ],
)
async def test_bad_schema_bodies_are_42201(sr: httpx.AsyncClient, content: bytes) -> None:
    error(await sr.post("/subjects/x/versions", content=content), 422, 42201)
    error(await sr.post("/subjects/x", content=content), 422, 42201)
    error(await sr.post("/compatibility/subjects/x/versions/latest", content=content), 422, 42201)


@pytest.mark.parametrize(
    "version", ["abc", "0", "-2", "1.5", "2147483648", "99999999999999999999999", "%20", "1e3"]
)
async def test_bad_versions_are_42202(sr: httpx.AsyncClient, version: str) -> None:
    await register(sr, "v", V1)
    error(await sr.get(f"/subjects/v/versions/{version}"), 422, 42202)
    error(await sr.delete(f"/subjects/v/versions/{version}"), 422, 42202)
    r = await sr.post(f"/compatibility/subjects/v/versions/{version}", json={"schema": V1})
    error(r, 422, 42202)


async def test_largest_version_is_valid_but_not_found(sr: httpx.AsyncClient) -> None:
    await register(sr, "v", V1)
    error(await sr.get("/subjects/v/versions/2147483647"), 404, 40402)


@pytest.mark.parametrize("subject", ["%00x", "a%09b", "%20", "x%7F"])
async def test_invalid_subjects_are_refused(sr: httpx.AsyncClient, subject: str) -> None:
    error(await sr.post(f"/subjects/{subject}/versions", json={"schema": V1}), 422, 42208)
    error(await sr.put(f"/config/{subject}", json={"compatibility": "NONE"}), 422, 42208)


async def test_subjects_with_odd_characters(sr: httpx.AsyncClient) -> None:
    for subject in ["with space", "slash/inside", "ünïcode", "dots.and-dashes_"]:
        quoted = httpx.URL(f"/subjects/{subject}/versions").raw_path.decode()
        r = await sr.post(quoted.replace("slash/inside", "slash%2Finside"), json={"schema": V1})
        assert r.status_code == 200, (subject, r.text)
    names = (await sr.get("/subjects")).json()
    assert set(names) == {"with space", "slash/inside", "ünïcode", "dots.and-dashes_"}
    assert (await sr.get("/subjects/slash%2Finside/versions/latest")).json()["version"] == 1


@pytest.mark.parametrize("schema_id", ["0", "999", "abc", "-1", "1.0", "99999999999999999999"])
async def test_unknown_schema_ids_are_40403(sr: httpx.AsyncClient, schema_id: str) -> None:
    error(await sr.get(f"/schemas/ids/{schema_id}"), 404, 40403)


async def test_not_found_codes(sr: httpx.AsyncClient) -> None:
    error(await sr.get("/subjects/nope/versions"), 404, 40401)
    error(await sr.get("/subjects/nope/versions/1"), 404, 40401)
    error(await sr.delete("/subjects/nope"), 404, 40401)
    await register(sr, "yes", V1)
    error(await sr.get("/subjects/yes/versions/2"), 404, 40402)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("GET", "/mode"),
        ("GET", "/contexts"),
        ("GET", "/schemas/guids/abc"),
        ("PUT", "/subjects"),
        ("PATCH", "/config"),
        ("POST", "/schemas/types"),
        ("DELETE", "/schemas/ids/1"),
    ],
)
async def test_unknown_routes_and_methods_are_json_404(
    sr: httpx.AsyncClient, method: str, path: str
) -> None:
    r = await sr.request(method, path)
    assert r.status_code == 404
    assert r.json() == {"error_code": 404, "message": "HTTP 404 Not Found"}


async def test_unknown_query_parameters_are_ignored(sr: httpx.AsyncClient) -> None:
    r = await sr.post("/subjects/q/versions?normalize=False&foo=bar&x", json={"schema": V1})
    assert r.json() == {"id": 1}
    r = await sr.get("/subjects/q/versions/latest?format=resolved&whatever=1")
    assert r.json()["id"] == 1
    r = await sr.get("/schemas/ids/1?subject=q&fetchMaxId=false&bogus=%ff")
    assert r.status_code == 200
    r = await sr.get("/config?defaultToGlobal=true&zzz=1")
    assert r.status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.schemaregistry.v1+json",
        "application/vnd.schemaregistry+json",
        "application/json",
        "application/json; charset=utf-8",
        None,
    ],
)
async def test_accepted_content_types(sr: httpx.AsyncClient, content_type: str | None) -> None:
    request = httpx.Request(
        "POST",
        "http://sr/subjects/ct/versions",
        content=orjson.dumps({"schema": V1}),
        headers={} if content_type is None else {"Content-Type": content_type},
    )
    r = await sr.send(request)  # a bare request: without the client's default headers
    assert r.status_code == 200, r.text


async def test_other_content_types_are_415(sr: httpx.AsyncClient) -> None:
    r = await sr.post(
        "/subjects/ct/versions",
        content=orjson.dumps({"schema": V1}),
        headers={"Content-Type": "text/plain"},
    )
    error(r, 415, 415)


async def test_bodies_over_the_limit_are_413(sr: httpx.AsyncClient) -> None:
    big = orjson.dumps({"schema": V1, "pad": "x" * (1 << 20)})
    error(await sr.post("/subjects/big/versions", content=big), 413, 413)

    async def chunks():  # no Content-Length: counted while streaming
        for _ in range(20):
            yield b" " * 65536

    error(await sr.post("/subjects/big/versions", content=chunks()), 413, 413)
    assert (await sr.get("/subjects")).json() == []


async def test_store_failures_are_5xx_json(registry: SchemaRegistry, sr: httpx.AsyncClient) -> None:
    await registry.store.close()
    r = await sr.post("/subjects/x/versions", json={"schema": V1})
    error(r, 500, 50001)


async def test_the_router_mounts_on_another_app(registry: SchemaRegistry) -> None:
    from fastapi import FastAPI

    app = FastAPI()
    app.include_router(schema_registry_router(registry))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://main") as client:
        r = await client.post("/subjects/m/versions", json={"schema": V1})
        assert r.json() == {"id": 1}
        # errors are still Confluent-shaped without the dedicated app's handlers
        error(await client.get("/subjects/m/versions/abc"), 422, 42202)
        error(await client.post("/subjects/m/versions", content=b"{"), 422, 42201)


async def test_non_ascii_digits_in_ids_are_not_found(sr: httpx.AsyncClient) -> None:
    # "²".isdigit() is True in Python, but int("²") fails: found by schemathesis
    for path in (
        "/schemas/ids/%C2%B2",
        "/schemas/ids/%C2%B2/versions",
        "/subjects/x/versions/%C2%B2",
    ):
        response = await sr.get(path)
        assert response.status_code in (404, 422), (path, response.text)
