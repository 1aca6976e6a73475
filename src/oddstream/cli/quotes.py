"""``oddstream import quotes FILE.ndjson`` (quote events into the log, with a progress
bar and a summary) and ``oddstream dlq list|show|replay`` (the dead-letter store). They
open the event store themselves, as ``replay`` does."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..application.quotes import SOURCE, Message, QuoteIngest, Summary, ndjson_lines
from ..domain.deadletters import DeadLetter, PayloadError, Resolved, restore
from ..domain.quotes.errors import TOO_BIG
from ..eventstore import EventStore, open_store
from ..runtime.deadletters import DeadLetterError, DeadLetterStore, Replayer
from .common import StoreOption, _fail, _settings, app, console

import_app = typer.Typer(help="Load events from files into the log.", no_args_is_help=True)
dlq_app = typer.Typer(help="The dead-letter store: list, show and replay.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(dlq_app, name="dlq")

_FILE = typer.Argument(..., exists=True, dir_okay=False, help="NDJSON: an event a line")
_PAYLOAD = typer.Option(None, exists=True, dir_okay=False, help="Replay this fixed payload instead")

#: lines read and ingested at a time (one pass of reads and one group commit each)
CHUNK_LINES = 500
#: a chunk ends early once its lines take this many bytes (memory: a file may hold
#: lines near the log's 1 MiB event limit)
CHUNK_BYTES = 8 * 1024 * 1024
#: the most of one line that is read (the service's default body limit): a longer line
#: can be no event; the rest of it is skipped and the line dead-lettered ``too_big``
MAX_LINE = 16 * 1024 * 1024


async def _open(store: str | None) -> EventStore:
    settings = _settings(store_url=store)
    return await open_store(settings.store_url, **settings.store_options())


@import_app.command("quotes")
def import_quotes(
    file: Path = _FILE,
    store: str | None = StoreOption,
) -> None:
    """Ingest a file of quote events, a line each, as POST /quotes/events does: valid
    events into the log, the others into the dead-letter store. Prints a summary:
    stored, repeated and dead-lettered by reason. Running it again stores nothing new."""
    size = file.stat().st_size

    async def run() -> Summary:
        s = await _open(store)
        total = Summary(0, 0, 0, {})
        try:
            ingest = QuoteIngest(s)
            with (
                file.open("rb") as handle,
                Progress(
                    TextColumn("quotes"),
                    BarColumn(),
                    TextColumn("{task.fields[events]:,} events"),
                    TimeRemainingColumn(),
                    console=console,
                ) as progress,
            ):
                task = progress.add_task("import", total=size, events=0)
                line_no, index, done = 1, 0, 0
                while True:
                    lines, read = _chunk(handle)
                    if not lines:
                        break
                    messages = _messages(lines, line_no, index)
                    line_no += len(lines)
                    outcomes = await ingest.ingest(messages, via="import") if messages else []
                    index += len(messages)
                    done += read
                    total = total.add(Summary.of(outcomes))
                    progress.update(task, completed=done, events=index)
        finally:
            await s.close()
        return total

    summary = asyncio.run(run())
    console.print(
        f"stored {summary.stored:,}, repeated {summary.repeated:,}, "
        f"dead-lettered {summary.dead_lettered:,}"
    )
    for reason, count in summary.by_reason.items():
        console.print(f"  {reason}: {count:,}")
    if summary.dead_lettered:
        console.print(f"see them with: oddstream dlq list --source {SOURCE}")


def _chunk(handle: Any) -> tuple[list[bytes], int]:
    """The next lines (at most :data:`CHUNK_LINES`, and about :data:`CHUNK_BYTES`) and
    how many bytes were read for them: of a line longer than :data:`MAX_LINE`, only
    its first ``MAX_LINE + 1`` bytes are kept (no newline at their end says so)."""
    lines: list[bytes] = []
    read = taken = 0
    while len(lines) < CHUNK_LINES and taken < CHUNK_BYTES:
        line = handle.readline(MAX_LINE + 1)
        if not line:
            break
        read += len(line)
        if _cut(line):
            while True:  # skip the rest of it, a piece at a time
                rest = handle.readline(1 << 20)
                read += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
        taken += len(line)
        lines.append(line)
    return lines, read


def _cut(line: bytes) -> bool:
    return len(line) > MAX_LINE and not line.endswith(b"\n")


def _messages(lines: list[bytes], line_no: int, index: int) -> list[Message]:
    """The messages of a chunk's lines, numbered from ``line_no`` and ``index``."""
    messages: list[Message] = []
    for number, line in enumerate(lines, start=line_no):
        if _cut(line):
            problem = (
                f"the line is longer than {MAX_LINE:,} bytes: only its first {MAX_LINE:,} "
                "bytes were read"
            )
            found = [Message(index, line[:MAX_LINE], number, problem, TOO_BIG)]
        else:
            found = list(ndjson_lines(line, first_line=number, first_index=index))
        messages += found
        index += len(found)
    return messages


@dlq_app.command("list")
def dlq_list(
    source: str | None = typer.Option(None, help="Only this source's letters (e.g. quotes)"),
    all_: bool = typer.Option(False, "--all", help="Resolved letters too"),
    store: str | None = StoreOption,
) -> None:
    """Dead letters, oldest first: open ones (with --all, resolved ones too)."""

    async def run() -> list[DeadLetter]:
        s = await _open(store)
        try:
            return await DeadLetterStore(s).letters(source, payloads=False)
        finally:
            await s.close()

    try:
        letters = asyncio.run(run())
    except ValueError as exc:
        _fail(escape(str(exc)))
    shown = [x for x in letters if all_ or x.status == "open"]
    table = Table("id", "source", "status", "reason", "path", "received", "bytes")
    for x in shown:
        table.add_row(
            x.letter_id[:8],
            x.source,
            x.status,
            x.reason,
            escape(x.path),
            x.letter.received_at,
            str(x.letter.payload_bytes),
        )
    console.print(table)
    console.print(f"{len(shown)} of {len(letters)} dead letters")


@dlq_app.command("show")
def dlq_show(
    letter_id: str = typer.Argument(..., help="A letter's id, or its first 6+ characters"),
    store: str | None = StoreOption,
) -> None:
    """A dead letter as JSON: why, where, the payload as received, every replay."""

    async def run() -> DeadLetter:
        s = await _open(store)
        try:
            return await DeadLetterStore(s).get(letter_id)
        finally:
            await s.close()

    try:
        letter = asyncio.run(run())
    except DeadLetterError as exc:
        _fail(escape(str(exc)))
    console.print_json(json.dumps(_letter_json(letter)))


@dlq_app.command("replay")
def dlq_replay(
    letter_id: str = typer.Argument(..., help="A letter's id, or its first 6+ characters"),
    payload: Path | None = _PAYLOAD,
    store: str | None = StoreOption,
) -> None:
    """Take a dead letter's payload (or a fixed one) in again through its source — the
    quote ingest, or a sink's connector (its record written into the connector's table,
    once): a success resolves the letter; a refusal keeps it open with the new reason
    (exit 1)."""
    fixed = payload.read_bytes() if payload is not None else None

    async def run() -> DeadLetter:
        s = await _open(store)
        try:
            letters = DeadLetterStore(s)
            letter = await letters.get(letter_id)
            replayers: dict[str, Replayer] = {SOURCE: QuoteIngest(s, letters).replay}
            if letter.source != SOURCE and letter.status == "open":  # a sink's letter
                from ..integrations.kafka.sink_replay import sink_replayer

                replayers[letter.source] = await sink_replayer(s, letter)
            return await letters.replay(letter, replayers, fixed)
        finally:
            await s.close()

    try:
        letter = asyncio.run(run())
    except (DeadLetterError, PayloadError) as exc:
        _fail(escape(str(exc)))
    last = letter.attempts[-1]
    if isinstance(last, Resolved):
        where = f" ({last.target})" if last.target else ""
        console.print(f"resolved: {letter.letter_id} {last.outcome}{where}")
        return
    console.print(
        f"[red]still refused:[/] {letter.letter_id} {letter.reason} at "
        f"{escape(letter.path)}: {escape(letter.message)}"
    )
    raise typer.Exit(1)


def _letter_json(letter: DeadLetter) -> dict[str, Any]:
    kept = letter.letter
    try:
        raw = restore(kept.payload, kept.payload_encoding)
        text = raw.decode("utf-8")
    except (PayloadError, UnicodeDecodeError):
        text = None
    return {
        "letter_id": letter.letter_id,
        "source": letter.source,
        "status": letter.status,
        "reason": letter.reason,
        "path": letter.path,
        "message": letter.message,
        "received_at": kept.received_at,
        "context": kept.context,
        "first_refusal": {"reason": kept.reason, "path": kept.path, "message": kept.message},
        "payload_bytes": kept.payload_bytes,
        "payload_sha256": kept.payload_sha256,
        "payload_truncated": kept.payload_truncated,
        "payload_encoding": kept.payload_encoding,
        # as text when it is UTF-8, else as kept (base64)
        "payload": text if text is not None else kept.payload,
        "attempts": [
            {"kind": type(a).__name__, **{k: getattr(a, k) for k in a.__struct_fields__}}
            for a in letter.attempts
        ],
    }
