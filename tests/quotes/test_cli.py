"""``oddstream import quotes`` on a generated file, and ``oddstream dlq``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from typer.testing import CliRunner

from domain.quotes.samples import PRODUCTS_UPDATED, QUOTE_STARTED
from oddstream.cli import app as cli
from oddstream.eventstore import open_store
from oddstream.runtime.deadletters import DeadLetterStore

runner = CliRunner()


def _generate(path: Path, quotes: int) -> None:
    start, update = json.loads(QUOTE_STARTED), json.loads(PRODUCTS_UPDATED)
    lines = []
    for i in range(quotes):
        lines += [json.dumps({**start, "id": f"g{i}"}), json.dumps({**update, "quoteId": f"g{i}"})]
    lines.insert(3, '{"quoteId": "ghost", "products": []}')
    lines.insert(5, "{not json")
    lines.insert(7, "")
    path.write_text("\n".join(lines) + "\n")


def _letters(url: str) -> list:
    async def run() -> list:
        s = await open_store(url)
        try:
            return await DeadLetterStore(s).letters("quotes")
        finally:
            await s.close()

    return asyncio.run(run())


def test_import_then_list_show_and_replay_dead_letters(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/cli.db"
    data = tmp_path / "quotes.ndjson"
    _generate(data, 700)  # more than one chunk of lines
    first = runner.invoke(cli, ["import", "quotes", str(data), "--store", url])
    assert first.exit_code == 0, first.output
    assert "1,402 events" in first.output  # the progress bar's last state
    assert "stored 1,400, repeated 0, dead-lettered 2" in first.output
    assert "invalid_json: 1" in first.output
    assert "unknown_quote: 1" in first.output
    again = runner.invoke(cli, ["import", "quotes", str(data), "--store", url])
    assert "stored 0, repeated 1,400, dead-lettered 2" in again.output

    listed = runner.invoke(cli, ["dlq", "list", "--source", "quotes", "--store", url])
    assert listed.exit_code == 0, listed.output
    assert "unknown_quote" in listed.output
    assert "2 of 2 dead letters" in listed.output
    ghost = next(x for x in _letters(url) if x.reason == "unknown_quote")
    shown = runner.invoke(cli, ["dlq", "show", ghost.letter_id[:8], "--store", url])
    assert shown.exit_code == 0, shown.output
    body = json.loads(shown.output)
    assert body["payload"] == '{"quoteId": "ghost", "products": []}'
    assert body["context"]["via"] == "import"

    refused = runner.invoke(cli, ["dlq", "replay", ghost.letter_id, "--store", url])
    assert refused.exit_code == 1
    assert "unknown_quote" in refused.output
    bad_fix = tmp_path / "bad.json"
    bad_fix.write_text('{"quoteId": "g1", "products": [{"id": "p"}]}')
    failed = runner.invoke(
        cli, ["dlq", "replay", ghost.letter_id, "--payload", str(bad_fix), "--store", url]
    )
    assert failed.exit_code == 1
    assert "missing_field" in failed.output
    assert next(x for x in _letters(url) if x.letter_id == ghost.letter_id).reason == (
        "missing_field"
    )
    fix = tmp_path / "fix.json"
    fix.write_text('{"quoteId": "g1", "products": []}')
    fixed = runner.invoke(
        cli, ["dlq", "replay", ghost.letter_id, "--payload", str(fix), "--store", url]
    )
    assert fixed.exit_code == 0, fixed.output
    assert "resolved" in fixed.output
    assert "stored (quote-g1@" in fixed.output
    open_now = runner.invoke(cli, ["dlq", "list", "--store", url])
    assert "1 of 2 dead letters" in open_now.output
    missing = runner.invoke(cli, ["dlq", "show", "ffffffff", "--store", url])
    assert missing.exit_code == 1
    assert "no dead letter" in missing.output


def test_importing_again_stores_nothing_when_a_quotes_events_span_chunks(
    tmp_path: Path, monkeypatch
):
    monkeypatch.setattr("oddstream.cli.quotes.CHUNK_LINES", 2)
    start, update = json.loads(QUOTE_STARTED), json.loads(PRODUCTS_UPDATED)
    a = json.dumps({**update, "quoteId": "s", "products": []})
    b = json.dumps({**update, "quoteId": "s"})
    data = tmp_path / "quotes.ndjson"
    # chunks: [start, a] [b, a] [b]: each update is a change of the quote
    data.write_text("\n".join([json.dumps({**start, "id": "s"}), a, b, a, b]) + "\n")
    url = f"sqlite:///{tmp_path}/cli.db"
    first = runner.invoke(cli, ["import", "quotes", str(data), "--store", url])
    assert "stored 5, repeated 0, dead-lettered 0" in first.output, first.output
    again = runner.invoke(cli, ["import", "quotes", str(data), "--store", url])
    assert "stored 0, repeated 5, dead-lettered 0" in again.output, again.output


def test_a_line_too_long_is_read_only_in_part_and_dead_lettered(tmp_path: Path, monkeypatch):
    # a file is no request: no body limit bounded its lines, and one line without a
    # newline was read whole (a multi-gigabyte export, into memory at once)
    monkeypatch.setattr("oddstream.cli.quotes.MAX_LINE", 256 * 1024)
    start, update = json.loads(QUOTE_STARTED), json.loads(PRODUCTS_UPDATED)
    huge = '{"quoteId": "t", "pad": "' + "x" * (3 << 20) + '"}'
    lines = [json.dumps({**start, "id": "t"}), huge, json.dumps({**update, "quoteId": "t"})]
    data = tmp_path / "quotes.ndjson"
    data.write_text("\n".join(lines) + "\n")
    url = f"sqlite:///{tmp_path}/cli.db"
    done = runner.invoke(cli, ["import", "quotes", str(data), "--store", url])
    assert "stored 2, repeated 0, dead-lettered 1" in done.output, done.output
    assert "too_big: 1" in done.output
    (letter,) = _letters(url)
    assert letter.letter.payload_bytes == 256 * 1024  # what was read of it
    assert (letter.reason, letter.path) == ("too_big", "$")
    assert "only its first 262,144 bytes were read" in letter.message
