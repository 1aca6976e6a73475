"""PostgreSQL: a table named without a schema is the connection's current schema's (the
first of its search_path, ``currentSchema`` in the URL), never a catalog table it
shadows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from oddstream.sinks import JdbcSink, SchemaMismatch, parse_config
from oddstream.sinks.schema import SinkRecord, from_connect_json

from .conftest import SCHEMA


@pytest.fixture
def schema(pg_url: str) -> Iterator[str]:
    name = f"sinkrisks_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
        try:
            yield name
        finally:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def jdbc(pg_url: str, **params: str) -> str:
    base = "jdbc:" + pg_url.replace("postgresql://postgres@", "postgresql://")
    query = "&".join(f"{k}={v}" for k, v in {"user": "postgres", **params}.items())
    return f"{base}?{query}"


def records(n: int) -> list[SinkRecord]:
    schema = from_connect_json(SCHEMA)
    return [SinkRecord("t", {"id": i, "name": f"n{i}"}, schema) for i in range(n)]


def config(url: str, table: str, **extra: Any) -> Any:
    return parse_config(
        {
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "connection.url": url,
            "topics": "t",
            "table.name.format": table,
            "auto.create": "true",
            "pk.mode": "record_value",
            "pk.fields": "id",
            **extra,
        }
    )


@pytest.mark.parametrize("mode", ["insert", "upsert"])
def test_a_table_named_as_a_catalog_table_is_the_current_schemas(
    pg_url: str, schema: str, mode: str
) -> None:
    url = jdbc(pg_url, currentSchema=schema)
    with JdbcSink(f"s-{mode}", config(url, "pg_class", **{"insert.mode": mode})) as sink:
        sink.write(records(3), after=0, position=1)
        if mode == "upsert":  # a key written again: through the staging table
            sink.write(records(3)[2:], after=1, position=2)
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(f'SELECT id FROM "{schema}"."pg_class" ORDER BY id').fetchall()
        offsets = conn.execute(f'SELECT name FROM "{schema}".oddstream_sink_offsets').fetchall()
    assert [r[0] for r in rows] == [0, 1, 2]
    assert offsets == [(f"s-{mode}",)]


def test_a_search_path_of_no_existing_schema_is_refused(pg_url: str) -> None:
    url = jdbc(pg_url, currentSchema=f"absent_{uuid.uuid4().hex[:8]}")
    with pytest.raises(SchemaMismatch, match="search_path names no schema"):
        JdbcSink("s", config(url, "t")).open()
