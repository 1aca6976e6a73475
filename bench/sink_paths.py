"""Which write path the SQL sinks use: ours (``oddstream.sinks.JdbcSink``) and SQLAlchemy
Core side by side with each driver's fastest plain bulk method, on the three databases.

For each database and mode (insert; upsert into a table holding half the keys) the same
20,000 decoded records are written in batches of ``--batch`` rows, one transaction per
batch, by:

- ``limit``: a hand-written loop with nothing else: tuples from the records, then COPY
  (PostgreSQL; upsert: COPY into a temporary table and one INSERT … ON CONFLICT from it),
  ``executemany`` (SQLite), PyMySQL's multi-row INSERT (MariaDB; upsert: … ON DUPLICATE
  KEY UPDATE);
- ``ours``: ``JdbcSink.write`` (layout, key dedupe, value adapters, the offsets row);
- ``sqlalchemy``: SQLAlchemy Core's ``insert()`` (and its dialects' upsert constructs)
  executed with the list of rows (its "insertmanyvalues" / executemany).

Rows per second is the best of ``--repeat`` rounds, the paths taking turns in each.
Needs the local PostgreSQL and MariaDB (``make services``); SQLAlchemy is a
benchmark-only dependency (``.[bench]``). Results: ``bench/results/sink_paths.json``.

    python bench/sink_paths.py [--rows 20000] [--batch 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, package_version, write_results
from oddstream.sinks import JdbcSink, SinkRecord, from_avro, parse_config

PG = {"host": "127.0.0.1", "port": 5432, "dbname": "test", "user": "postgres"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}
RESULTS = Path(__file__).resolve().parent / "results" / "sink_paths.json"

SCHEMA = from_avro(
    {
        "type": "record",
        "name": "bet",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "race", "type": "string"},
            {"name": "runner", "type": "int"},
            {"name": "stake_cents", "type": "long"},
            {"name": "odds", "type": "double"},
            {"name": "customer", "type": ["null", "string"], "default": None},
            {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        ],
    }
)
COLS = list(SCHEMA.names)
#: a plain bulk load of row tuples (one transaction), and what closes its connection
Loader = Callable[[list[tuple[Any, ...]]], None]
Closer = Callable[[], None]


def records(n: int, topic: str) -> list[SinkRecord]:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [
        SinkRecord(
            topic,
            {
                "id": i,
                "race": f"race-{i % 97}",
                "runner": i % 12,
                "stake_cents": 100 + i,
                "odds": 1.5 + (i % 40) / 10,
                "customer": f"c{i % 1000}" if i % 3 else None,
                "placed_at": base + dt.timedelta(milliseconds=i),
            },
            SCHEMA,
        )
        for i in range(n)
    ]


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def naive_utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None)


# --- the databases ------------------------------------------------------------------------


class Db:
    name: str
    url: str

    def connect(self) -> Any: ...
    def ddl(self, table: str) -> str: ...
    def plain_loader(self, table: str, cols: list[str], upsert: bool) -> tuple[Loader, Closer]:
        """The driver's fastest plain bulk load of row tuples (``cols`` in order), one
        transaction per call: the limit both sink benchmarks compare with."""
        raise NotImplementedError

    def row(self, value: dict[str, Any]) -> tuple[Any, ...]:
        """A record value of :func:`records` as this database's plain load takes it."""
        return (*(value[c] for c in COLS[:-1]), naive_utc(value["placed_at"]))

    def quote(self, name: str) -> str:
        return f'"{name}"'

    def drop(self, table: str) -> None:
        conn = self.connect()
        cur = conn.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {self.quote(table)}")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS oddstream_sink_offsets "
            "(name VARCHAR(255) NOT NULL PRIMARY KEY, position BIGINT NOT NULL)"
        )
        cur.execute("DELETE FROM oddstream_sink_offsets WHERE name LIKE 'bench-%%'")
        conn.commit()
        conn.close()

    def create(self, table: str) -> None:
        conn = self.connect()
        conn.cursor().execute(self.ddl(table))
        conn.commit()
        conn.close()


class Sqlite(Db):
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"jdbc:sqlite:{path}"

    def connect(self) -> Any:
        return sqlite3.connect(self.path)

    def ddl(self, table: str) -> str:
        return (
            f'CREATE TABLE "{table}" ("id" INTEGER NOT NULL, "race" TEXT NOT NULL, '
            '"runner" INTEGER NOT NULL, "stake_cents" INTEGER NOT NULL, "odds" REAL NOT NULL, '
            '"customer" TEXT NULL, "placed_at" NUMERIC NOT NULL, PRIMARY KEY ("id"))'
        )

    def plain_loader(self, table: str, cols: list[str], upsert: bool) -> tuple[Loader, Closer]:
        conn = sqlite3.connect(self.path, isolation_level=None)
        sql = f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(cols))})'
        if upsert:
            sets = ", ".join(f'"{c}" = excluded."{c}"' for c in cols[1:])
            sql += f' ON CONFLICT ("id") DO UPDATE SET {sets}'

        def load(rows: list[tuple[Any, ...]]) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")

        return load, conn.close

    def row(self, value: dict[str, Any]) -> tuple[Any, ...]:
        placed = naive_utc(value["placed_at"]).isoformat(sep=" ", timespec="milliseconds")
        return (*(value[c] for c in COLS[:-1]), placed)

    def sqlalchemy_url(self) -> str:
        return f"sqlite:///{self.path}"


class Postgres(Db):
    name = "postgres"
    url = "jdbc:postgresql://127.0.0.1:5432/test?user=postgres"

    def connect(self) -> Any:
        return psycopg.connect(**PG)

    def ddl(self, table: str) -> str:
        return (
            f'CREATE TABLE "{table}" ("id" BIGINT NOT NULL, "race" TEXT NOT NULL, '
            '"runner" INT NOT NULL, "stake_cents" BIGINT NOT NULL, '
            '"odds" DOUBLE PRECISION NOT NULL, "customer" TEXT NULL, '
            '"placed_at" TIMESTAMP NOT NULL, PRIMARY KEY ("id"))'
        )

    def plain_loader(self, table: str, cols: list[str], upsert: bool) -> tuple[Loader, Closer]:
        conn = self.connect()
        names = ", ".join(f'"{c}"' for c in cols)
        sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in cols[1:])

        def load(rows: list[tuple[Any, ...]]) -> None:
            with conn.cursor() as cur:
                target = f'"{table}"'
                if upsert:
                    target = "stage"
                    cur.execute(
                        f'CREATE TEMP TABLE stage ON COMMIT DROP AS SELECT * FROM "{table}" '
                        "WITH NO DATA"
                    )
                with cur.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                if upsert:
                    cur.execute(
                        f'INSERT INTO "{table}" ({names}) SELECT {names} FROM stage '
                        f'ON CONFLICT ("id") DO UPDATE SET {sets}'
                    )
            conn.commit()

        return load, conn.close

    def sqlalchemy_url(self) -> str:
        return "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class Mariadb(Db):
    name = "mariadb"
    url = "jdbc:mariadb://127.0.0.1:3306/test?user=root"

    def connect(self) -> Any:
        return pymysql.connect(**MY)

    def quote(self, name: str) -> str:
        return f"`{name}`"

    def ddl(self, table: str) -> str:
        return (
            f"CREATE TABLE `{table}` (`id` BIGINT NOT NULL, `race` TEXT NOT NULL, "
            "`runner` INT NOT NULL, `stake_cents` BIGINT NOT NULL, `odds` DOUBLE NOT NULL, "
            "`customer` TEXT NULL, `placed_at` DATETIME(3) NOT NULL, PRIMARY KEY (`id`)) "
            "ENGINE=InnoDB"
        )

    def plain_loader(self, table: str, cols: list[str], upsert: bool) -> tuple[Loader, Closer]:
        conn = self.connect()
        names = ", ".join(f"`{c}`" for c in cols)
        sql = f"INSERT INTO `{table}` ({names}) VALUES ({', '.join(['%s'] * len(cols))})"
        if upsert:
            sql += " ON DUPLICATE KEY UPDATE " + ", ".join(
                f"`{c}` = VALUES(`{c}`)" for c in cols[1:]
            )
        cur = conn.cursor()

        def load(rows: list[tuple[Any, ...]]) -> None:
            conn.begin()
            cur.executemany(sql, rows)  # PyMySQL sends one multi-row INSERT per ~1 MB
            conn.commit()

        return load, conn.close

    def sqlalchemy_url(self) -> str:
        return "mysql+pymysql://root@127.0.0.1:3306/test"


# --- the paths ------------------------------------------------------------------------------


def ours(db: Db, table: str, recs: list[SinkRecord], batch: int, upsert: bool) -> None:
    config = parse_config(
        {
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector",
            "connection.url": db.url,
            "topics": table,
            "insert.mode": "upsert" if upsert else "insert",
            "pk.mode": "record_value",
            "pk.fields": "id",
            "batch.size": str(batch),
        }
    )
    with JdbcSink(f"bench-{table}", config) as sink:
        position = 0
        for part in chunks(recs, batch):
            sink.write(part, after=position, position=position + len(part))
            position += len(part)


def sqlalchemy_path(db: Db, table: str, recs: list[SinkRecord], batch: int, upsert: bool) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(db.sqlalchemy_url())
    meta = sa.MetaData()
    t = sa.Table(
        table,
        meta,
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("race", sa.Text),
        sa.Column("runner", sa.Integer),
        sa.Column("stake_cents", sa.BigInteger),
        sa.Column("odds", sa.Float),
        sa.Column("customer", sa.Text),
        # SQLite: the ISO text the other paths store (its DateTime type would write the
        # same text from a datetime, through a processor of its own)
        sa.Column("placed_at", sa.Text if db.name == "sqlite" else sa.DateTime),
    )
    if upsert and db.name == "postgres":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(t)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"], set_={c: stmt.excluded[c] for c in COLS[1:]}
        )
    elif upsert and db.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(t)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"], set_={c: stmt.excluded[c] for c in COLS[1:]}
        )
    elif upsert:
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        stmt = mysql_insert(t)
        stmt = stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in COLS[1:]})
    else:
        stmt = sa.insert(t)
    with engine.connect() as conn:
        for part in chunks(recs, batch):
            rows = []
            for r in part:
                assert r.value is not None
                row = dict(r.value)
                placed = naive_utc(row["placed_at"])
                row["placed_at"] = (
                    placed.isoformat(sep=" ", timespec="milliseconds")
                    if db.name == "sqlite"
                    else placed
                )
                rows.append(row)
            with conn.begin():
                conn.execute(stmt, rows)
    engine.dispose()


def limit(db: Db, table: str, recs: list[SinkRecord], batch: int, upsert: bool) -> None:
    load, close = db.plain_loader(table, COLS, upsert)
    for part in chunks(recs, batch):
        load([db.row(r.value) for r in part if r.value is not None])
    close()


PATHS: dict[str, Callable[[Db, str, list[SinkRecord], int, bool], None]] = {
    "limit": limit,
    "ours": ours,
    "sqlalchemy": sqlalchemy_path,
}


def measure_once(db: Db, path: str, mode: str, rows: int, batch: int) -> float:
    table = f"bench_sink_{uuid.uuid4().hex[:10]}"
    recs = records(rows, table)
    db.create(table)
    try:
        if mode == "upsert":  # half the keys already there
            limit(db, table, recs[: rows // 2], batch, upsert=False)
        start = time.perf_counter()
        PATHS[path](db, table, recs, batch, mode == "upsert")
        elapsed = time.perf_counter() - start
    finally:
        db.drop(table)
    return rows / elapsed


def measure(db: Db, mode: str, rows: int, batch: int, repeat: int) -> dict[str, float]:
    """The best rows/s of each path; the paths take turns in each round, so that other
    work on the machine (it is shared) weighs on all of them alike."""
    best = dict.fromkeys(PATHS, 0.0)
    for _ in range(repeat):
        for path in PATHS:
            best[path] = max(best[path], measure_once(db, path, mode, rows, batch))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dbs: list[Db] = [Sqlite(Path(tmp) / "sink.db"), Postgres(), Mariadb()]
        cases = []
        print(f"{args.rows} rows, batches of {args.batch}, best of {args.repeat} (rows/s)")
        head = ("db", "mode", "limit", "ours", "ratio", "sqlalchemy", "ratio")
        print("{:9} {:7} {:>9} {:>9} {:>6} {:>11} {:>6}".format(*head))
        for db in dbs:
            for mode in ("insert", "upsert"):
                got = measure(db, mode, args.rows, args.batch, args.repeat)
                case = {
                    "db": db.name,
                    "mode": mode,
                    "limit_rows_per_s": round(got["limit"]),
                    "ours_rows_per_s": round(got["ours"]),
                    "ratio": round(got["ours"] / got["limit"], 3),
                    "sqlalchemy_rows_per_s": round(got["sqlalchemy"]),
                    "sqlalchemy_ratio": round(got["sqlalchemy"] / got["limit"], 3),
                }
                cases.append(case)
                print(
                    f"{db.name:9} {mode:7} {case['limit_rows_per_s']:>9} "
                    f"{case['ours_rows_per_s']:>9} {case['ratio']:>6.2f} "
                    f"{case['sqlalchemy_rows_per_s']:>11} {case['sqlalchemy_ratio']:>6.2f}"
                )
    if not args.no_write:
        write_results(
            RESULTS,
            {
                "machine": machine(
                    psycopg=package_version("psycopg"),
                    pymysql=package_version("pymysql"),
                    sqlalchemy=package_version("sqlalchemy"),
                    sqlite=sqlite3.sqlite_version,
                ),
                "rows": args.rows,
                "batch": args.batch,
                "cases": cases,
            },
        )


if __name__ == "__main__":
    main()
