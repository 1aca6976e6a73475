"""A log stub for timing and threading checks of the quote ingest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oddstream.eventstore import AppendResult, StreamAppend


class EmptyLog:
    """A log with no quote in it that takes every append (as an event store does), so
    only the ingest's own work is exercised."""

    async def read_stream(self, *_: Any, **__: Any) -> list[Any]:
        return []

    async def read_requests(self, *_: Any, **__: Any) -> list[Any]:
        return []

    async def append_many(self, appends: Sequence[StreamAppend]) -> list[AppendResult]:
        return [AppendResult(a.stream_id, 1, i + 1, i + 1) for i, a in enumerate(appends)]
