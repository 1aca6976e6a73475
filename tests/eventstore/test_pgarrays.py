"""The pre-encoded binary arrays round-trip through PostgreSQL exactly."""

from __future__ import annotations

import uuid

import psycopg

from oddstream.eventstore import pgarrays


async def test_arrays_round_trip(pg_url: str) -> None:
    conn = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    pgarrays.register(conn)
    try:
        ids = [uuid.uuid4() for _ in range(3)]
        cur = await conn.execute(
            "SELECT %b::int8[], %b::int4[], %b::bool[], %b::text[], %b::bytea[], %b::uuid[], "
            "%b::jsonb[], %b::int8[]",
            (
                pgarrays.Int8Array.of([1, -(2**62), 2**62]),
                pgarrays.Int4Array.of([0, -5, 2**31 - 1]),
                pgarrays.BoolArray.of([True, False]),
                pgarrays.TextArray.of(["a", "é 漢", "", "a"]),
                pgarrays.ByteaArray.of([b"\x00\x01", b""]),
                pgarrays.UuidArray.of([i.bytes for i in ids]),
                pgarrays.JsonbArray.of([b'{"k": [1, 2]}', b"{}"]),
                pgarrays.Int8Array.of([]),
            ),
        )
        row = await cur.fetchone()
    finally:
        await conn.close()
    assert row == (
        [1, -(2**62), 2**62],
        [0, -5, 2**31 - 1],
        [True, False],
        ["a", "é 漢", "", "a"],
        [b"\x00\x01", b""],
        ids,
        [{"k": [1, 2]}, {}],
        [],
    )
