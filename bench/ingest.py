"""How the quote ingest's own work grows with a request's size (it must be linear).

A call of ``n`` messages (each the sample ``QuoteStarted`` with its own id, or a
``QuoteProductsUpdated`` of an unknown quote) goes through ``QuoteIngest.ingest`` over a
log stub that takes every append, so only the ingest's work (decoding, grouping,
deciding) is timed. For n = 1,000, 5,000 and 10,000 (the request limit), best of 3:
seconds and microseconds per message; ``growth`` is the per-message time at the limit
over that at 1,000 (1.0 is linear; the quadratic grouping it once had gave about 5).

Run ``.venv/bin/python bench/ingest.py``. Results go to ``bench/results/ingest.json``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from domain.quotes.samples import QUOTE_STARTED  # noqa: E402
from oddstream.application.quotes import QuoteIngest, ndjson_lines  # noqa: E402
from quotes.stubs import EmptyLog  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ingest.json"
SIZES = (1_000, 5_000, 10_000)


def _bodies(n: int) -> dict[str, bytes]:
    start = json.loads(QUOTE_STARTED)
    return {
        "QuoteStarted": b"\n".join(json.dumps({**start, "id": f"s{i}"}).encode() for i in range(n)),
        "unknown quote": b"\n".join(b'{"quoteId": "q%d", "products": []}' % i for i in range(n)),
    }


async def _time(body: bytes) -> float:
    messages = list(ndjson_lines(body))
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        await QuoteIngest(EmptyLog()).ingest(messages)  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - began)
    return best


async def main() -> None:
    rows: list[dict[str, Any]] = []
    for n in SIZES:
        for kind, body in _bodies(n).items():
            seconds = await _time(body)
            rows.append(
                {"kind": kind, "messages": n, "seconds": round(seconds, 3),
                 "us_per_message": round(seconds / n * 1e6, 1)}
            )  # fmt: skip
    growth = {}
    for kind in ("QuoteStarted", "unknown quote"):
        per = {r["messages"]: r["us_per_message"] for r in rows if r["kind"] == kind}
        growth[kind] = round(per[SIZES[-1]] / per[SIZES[0]], 2)
    table = Table(title="quote ingest: own work per call (log stubbed), best of 3")
    for column in ("kind", "messages", "seconds", "µs/message"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["kind"], f"{r['messages']:,}", f"{r['seconds']:.3f}",
                      f"{r['us_per_message']:.1f}")  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"growth (µs/message at {SIZES[-1]:,} ÷ at {SIZES[0]:,}): {growth}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"cases": rows, "growth": growth,
             "when": datetime.now(UTC).isoformat(timespec="seconds")},
            indent=2,
        ) + "\n"
    )  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
