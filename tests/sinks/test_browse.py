"""``oddstream browse``: a sink's SQLite file served by Datasette on loopback, read-only.

The command runs as a process of its own, as a user runs it; the tests read a table's
JSON a page at a time, see rows a writer adds meanwhile, and try writes that must fail
(through Datasette's SQL page, and through its write API in-process)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from conftest import need_service
from oddstream.cli import app as cli

ROWS = 250


@pytest.fixture(autouse=True)
def datasette_installed() -> None:
    """The browse extra (``make test`` installs it): without it the tests skip, or fail
    under ``ODDSTREAM_REQUIRE_SERVICES=1``."""
    try:
        import datasette  # noqa: F401
    except ImportError as exc:
        need_service("Datasette", f"{exc}; pip install -e '.[browse]'")


def make_db(path: Path, rows: int = ROWS) -> None:
    """A file as the sink leaves it: WAL mode, a keyed table."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE quotes (quote_id TEXT PRIMARY KEY, total_pence INTEGER)")
        conn.executemany(
            "INSERT INTO quotes VALUES (?, ?)", [(f"q{i:04d}", i * 100) for i in range(rows)]
        )
    conn.close()


def count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM quotes").fetchone()[0])
    finally:
        conn.close()


def start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """``oddstream browse ARGS --port 0`` as a process; its URL, read from what it prints."""
    process = subprocess.Popen(
        [sys.executable, "-m", "oddstream.cli", "browse", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "1000", **(env or {})},
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    found = re.search(r"on (http://127\.0\.0\.1:\d+/)", first)
    if found is None:
        process.kill()
        pytest.fail(f"oddstream browse did not start: {first}{process.stdout.read()}")
    # drained, so that what Datasette logs (a traceback per refused query) never fills the
    # pipe and blocks the server
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return process, found.group(1)


@pytest.fixture
def browse(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    db = tmp_path / "analytics.db"
    make_db(db)
    process, url = start(str(db))
    try:
        yield db, url
    finally:
        process.send_signal(signal.SIGINT)  # as Ctrl-C: it stops by itself
        try:
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
            if process.stdout is not None:
                process.stdout.close()


def get(url: str, **params: Any) -> Any:
    # params only when given: httpx replaces a URL's query with any params, even none
    answer = httpx.get(url, params=params or None, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_table_is_read_as_json_a_page_at_a_time(browse: tuple[Path, str]) -> None:
    db, url = browse
    databases = get(f"{url}-/databases.json")
    assert [d["name"] for d in databases] == ["analytics"]  # no _memory database beside it
    page_url: str | None = f"{url}analytics/quotes.json?_shape=objects&_size=100"
    pages = []
    while page_url and len(pages) < 10:
        page = get(page_url)
        pages.append(page["rows"])
        page_url = page["next_url"]
    assert [len(p) for p in pages] == [100, 100, 50]
    ids = [row["quote_id"] for page in pages for row in page]
    assert ids == [f"q{i:04d}" for i in range(ROWS)]
    assert pages[2][-1] == {"quote_id": f"q{ROWS - 1:04d}", "total_pence": (ROWS - 1) * 100}

    # a sink writing meanwhile: its committed rows are seen (WAL read, not immutable)
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO quotes VALUES ('zz-new', 1)")
    conn.close()
    fresh = get(f"{url}analytics/quotes.json", _shape="objects", quote_id="zz-new")
    assert fresh["rows"] == [{"quote_id": "zz-new", "total_pence": 1}]

    # any one answer is bounded: a larger page is refused, a query's rows are cut
    too_big = httpx.get(f"{url}analytics/quotes.json", params={"_size": 5000}, timeout=10)
    assert too_big.status_code == 400
    capped = get(
        f"{url}analytics.json",
        sql="select a.quote_id from quotes a, quotes b",
        _shape="objects",
    )
    assert len(capped["rows"]) == 1000
    assert capped["truncated"] is True


def test_writes_fail_and_change_nothing(browse: tuple[Path, str]) -> None:
    db, url = browse
    before = count(db)
    plain = httpx.get(
        f"{url}analytics.json", params={"sql": "insert into quotes values ('x', 1)"}, timeout=10
    )
    assert plain.status_code == 400
    assert "Statement must be a SELECT" in plain.json()["error"]
    # Datasette's own check lets a WITH … INSERT through: the read-only connection stops it
    sneaky = httpx.get(
        f"{url}analytics.json",
        params={"sql": "with x as (select 1) insert into quotes values ('x', 1)"},
        timeout=10,
    )
    assert sneaky.status_code == 400
    assert "readonly database" in sneaky.json()["error"]
    assert count(db) == before


async def test_the_write_api_in_process_is_refused(tmp_path: Path) -> None:
    """A plugin or route that asks Datasette for a write gets an error, not a write."""
    from oddstream.integrations.datasette import ReadOnlyRefused, read_only_datasette

    db = tmp_path / "analytics.db"
    make_db(db, rows=3)
    ds = read_only_datasette([db])
    database = ds.get_database("analytics")
    try:
        with pytest.raises(ReadOnlyRefused, match="read-only"):
            await database.execute_write("DELETE FROM quotes")
        rows = await database.execute("SELECT count(*) FROM quotes")
        assert rows.first()[0] == 3
        # a read connection used to write: query_only and mode=ro refuse it
        with pytest.raises(sqlite3.OperationalError, match=r"readonly|query_only"):
            await database.execute_fn(lambda conn: conn.execute("DELETE FROM quotes"))
    finally:
        ds.executor.shutdown(wait=False)
    assert count(db) == 3


def test_immutable_and_a_sinks_connection_url(tmp_path: Path) -> None:
    db = tmp_path / "copy.db"
    make_db(db, rows=7)
    process, url = start(f"jdbc:sqlite:{db}", "--immutable")
    try:
        assert get(f"{url}copy/quotes.json")["filtered_table_rows_count"] == 7
        assert get(f"{url}-/databases.json")[0]["is_mutable"] is False
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        assert process.stdout is not None
        process.stdout.close()


def test_without_a_file_the_quote_tables_are_browsed(tmp_path: Path) -> None:
    """No DB: ODDSTREAM_QUOTE_TABLES_URL's file, else analytics.db beside an SQLite
    store (where serve --demo writes the quote tables)."""
    db = tmp_path / "analytics.db"
    make_db(db, rows=4)
    for env in (
        {"ODDSTREAM_QUOTE_TABLES_URL": f"jdbc:sqlite:{db}"},
        {"ODDSTREAM_QUOTE_TABLES_URL": "", "ODDSTREAM_STORE_URL": f"sqlite:///{tmp_path}/s.db"},
    ):
        process, url = start(env=env)
        try:
            assert get(f"{url}analytics/quotes.json")["filtered_table_rows_count"] == 4
        finally:
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=15) == 0
            assert process.stdout is not None
            process.stdout.close()


def test_refusals_are_messages_with_exit_code_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    text = tmp_path / "notes.db"
    text.write_text("not a database, just some text that is long enough" * 20)

    def refused(*args: str) -> str:
        result = runner.invoke(cli, ["browse", *args], env={"COLUMNS": "300"})
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        return result.output

    assert "file is not a database" in refused(str(text))
    assert "no such file" in refused(str(tmp_path / "missing.db"))
    postgres = refused("jdbc:postgresql://db:5432/analytics?user=a&password=s3cret")
    assert "only SQLite files can be browsed" in postgres
    assert "s3cret" not in postgres
    assert "jdbc:sqlite: needs a file path" in refused("jdbc:sqlite:")

    db = tmp_path / "ok.db"
    make_db(db, rows=1)
    with socket_taken() as port:
        assert f"cannot listen on 127.0.0.1:{port}" in refused(str(db), "--port", str(port))

    # no file given and none to default to; a default that is not there yet
    unset = {"ODDSTREAM_QUOTE_TABLES_URL": "", "COLUMNS": "300"}
    with_pg = runner.invoke(
        cli, ["browse"], env={**unset, "ODDSTREAM_STORE_URL": "postgresql://127.0.0.1:1/x"}
    )
    assert with_pg.exit_code == 1
    assert "no quote tables to default to" in with_pg.output
    empty = tmp_path / "empty"
    empty.mkdir()
    not_yet = runner.invoke(
        cli, ["browse"], env={**unset, "ODDSTREAM_STORE_URL": f"sqlite:///{empty}/s.db"}
    )
    assert not_yet.exit_code == 1
    assert "analytics.db: no such file" in not_yet.output

    # without the extra: the command says how to install it
    monkeypatch.delitem(sys.modules, "oddstream.integrations.datasette", raising=False)
    monkeypatch.setitem(sys.modules, "datasette.app", None)
    assert "pip install 'oddstream[browse]'" in refused(str(db))


@contextlib.contextmanager
def socket_taken() -> Iterator[int]:
    """A port on 127.0.0.1 that something is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_an_answer_s_memory_is_bounded(browse: tuple[Path, str]) -> None:
    """One GET (any web page can make the analyst's browser send it to 127.0.0.1) must not
    make the process build an answer of unbounded size: a made-up value is capped by
    SQLite's length limit, and the rows of one answer by their total size."""
    from oddstream.integrations.datasette import MAX_ANSWER_BYTES, MAX_VALUE_BYTES

    _, url = browse
    too_long = httpx.get(
        f"{url}analytics.json",
        params={"sql": f"select zeroblob({MAX_VALUE_BYTES + 1}) as b"},
        timeout=30,
    )
    assert too_long.status_code == 400, too_long.text[:300]
    assert "too big" in too_long.json()["error"]
    # values within the limit, but too many of them: cut off with the reason, not built
    rows = MAX_ANSWER_BYTES // MAX_VALUE_BYTES + 2
    too_many = httpx.get(
        f"{url}analytics.json",
        params={"sql": f"select zeroblob({MAX_VALUE_BYTES}) from quotes limit {rows}"},
        timeout=30,
    )
    assert too_many.status_code == 400, too_many.text[:300]
    assert "answer too large" in too_many.json()["error"]
    assert len(too_many.content) < 100_000
    # an answer within both limits is served whole
    fits = get(f"{url}analytics.json", sql="select length(zeroblob(1000)) as n from quotes")
    assert len(fits["rows"]) == ROWS


def test_fts3_tokenizer_is_refused(browse: tuple[Path, str]) -> None:
    """SQLite's fts3_tokenizer() (enabled in Debian's build) hands out native pointers and,
    given two arguments, takes one to call: no query may reach it."""
    _, url = browse
    for sql in (
        "select fts3_tokenizer('simple')",
        "select fts3_tokenizer('x', fts3_tokenizer('simple'))",
    ):
        answer = httpx.get(f"{url}analytics.json", params={"sql": sql}, timeout=10)
        assert answer.status_code == 400, answer.text[:300]
        assert "not authorized" in answer.json()["error"]


async def test_a_connection_refuses_attach_and_oversized_values(tmp_path: Path) -> None:
    """The guard is in the connection itself (a plugin's query is held to it too)."""
    from oddstream.integrations.datasette import MAX_VALUE_BYTES, read_only_datasette

    db = tmp_path / "analytics.db"
    make_db(db, rows=3)
    other = tmp_path / "other.db"
    make_db(other, rows=1)
    ds = read_only_datasette([db])
    database = ds.get_database("analytics")
    try:
        with pytest.raises(sqlite3.OperationalError, match="too many attached"):
            await database.execute_fn(
                lambda conn: conn.execute("ATTACH DATABASE ? AS o", (str(other),))
            )
        with pytest.raises(sqlite3.DataError, match="too big"):
            await database.execute_fn(
                lambda conn: conn.execute(f"select zeroblob({MAX_VALUE_BYTES + 1})").fetchall()
            )
    finally:
        ds.executor.shutdown(wait=False)


def test_a_table_page_past_the_limits_is_a_400(tmp_path: Path) -> None:
    """Stored values past the limits: the table's page says why (400), with no 500."""
    from oddstream.integrations.datasette import MAX_ANSWER_BYTES, MAX_VALUE_BYTES

    db = tmp_path / "wide.db"
    many = MAX_ANSWER_BYTES // MAX_VALUE_BYTES + 2
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
        conn.execute("INSERT INTO t VALUES (0, zeroblob(?))", (MAX_VALUE_BYTES + 1,))
        conn.executemany(
            "INSERT INTO t VALUES (?, zeroblob(?))", [(i, MAX_VALUE_BYTES) for i in range(1, many)]
        )
    conn.close()
    process, url = start(str(db))
    try:
        for page, reason in (("wide/t.json", "too big"), ("wide/t.json?id__gt=0", "too large")):
            answer = httpx.get(f"{url}{page}", timeout=30)
            assert answer.status_code == 400, (page, answer.status_code, answer.text[:300])
            assert reason in answer.json()["error"]
        assert get(f"{url}wide/t.json?id=1&_shape=objects")["rows"][0]["id"] == 1
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        assert process.stdout is not None
        process.stdout.close()


def test_another_sites_host_name_is_refused(browse: tuple[Path, str]) -> None:
    """Regression: any Host was answered, so a page of another site whose name it rebinds
    to 127.0.0.1 (DNS rebinding) could read the tables through the analyst's browser."""
    _, url = browse
    rebound = httpx.get(f"{url}analytics/quotes.json", headers={"Host": "evil.example"})
    assert rebound.status_code == 400
    assert "quote" not in rebound.text
    for host in ("localhost", "127.0.0.1"):
        port = url.rstrip("/").rsplit(":", 1)[1]
        ok = httpx.get(f"{url}analytics/quotes.json", headers={"Host": f"{host}:{port}"})
        assert ok.status_code == 200, ok.text[:300]
