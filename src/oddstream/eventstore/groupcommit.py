"""The single writer with group commit, shared by the adapters.

Callers queue jobs and await their futures. One task takes whatever has queued up and
hands it to the adapter as one group: appends that arrive while a commit is running share
the next transaction (and so its fsync), and each still succeeds or fails on its own.
:meth:`GroupCommitter.append_many` queues several such appends at once behind one future
(a caller with many streams to write pays for one wait, not one per stream). Projection
writes go through the same queue, one transaction each, so they keep their order
relative to appends.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .base import SqlStatement
from .envelope import AppendResult
from .errors import EventStoreError, StoreUnavailable
from .prepare import PreparedPart

#: Upper bounds of one group; a single larger append still goes alone.
MAX_GROUP_EVENTS = 50_000
MAX_GROUP_BYTES = 64 << 20


#: An append's outcome: its results, one a part, or the error it failed with.
Outcome = list[AppendResult] | BaseException
_UNSETTLED: Any = object()


class _Many:
    """The outcomes of the appends of one :meth:`GroupCommitter.append_many` call,
    answered together once the last of them is settled."""

    __slots__ = ("future", "left", "outcomes")

    def __init__(self, future: asyncio.Future[list[Outcome]], n: int) -> None:
        self.future = future
        self.outcomes: list[Outcome] = [_UNSETTLED] * n
        self.left = n

    def settle(self, index: int, outcome: Outcome) -> None:
        if self.outcomes[index] is not _UNSETTLED:
            return
        self.outcomes[index] = outcome
        self.left -= 1
        if not self.left and not self.future.done():
            self.future.set_result(self.outcomes)


@dataclass(slots=True)
class AppendJob:
    """One append (one or more parts, all or nothing), answered through its own future
    or as one of the appends of an :meth:`GroupCommitter.append_many` call."""

    parts: list[PreparedPart]
    future: asyncio.Future[list[AppendResult]] | None
    n_events: int
    n_bytes: int
    many: _Many | None = None
    index: int = 0

    @property
    def done(self) -> bool:
        """Whether this job has its outcome (or its caller stopped waiting)."""
        if self.many is not None:
            return self.many.outcomes[self.index] is not _UNSETTLED or self.many.future.done()
        assert self.future is not None
        return self.future.done()

    def settle(self, outcome: Outcome) -> None:
        if self.many is not None:
            self.many.settle(self.index, outcome)
            return
        assert self.future is not None
        if self.future.done():
            return
        if isinstance(outcome, BaseException):
            self.future.set_exception(outcome)
        else:
            self.future.set_result(outcome)


@dataclass(slots=True)
class ProjectionJob:
    name: str
    position: int
    statements: list[SqlStatement]
    expected: int | None
    future: asyncio.Future[None]

    def settle(self, error: BaseException | None) -> None:
        if self.future.done():
            return
        if error is None:
            self.future.set_result(None)
        else:
            self.future.set_exception(error)


WriteAppends = Callable[[list[AppendJob]], Awaitable[None]]
WriteProjection = Callable[[ProjectionJob], Awaitable[None]]


class GroupCommitter:
    """Queues writes and runs them one group at a time on the event loop.

    ``write_appends`` settles every job it is given (a result or an error each), or
    raises if the group as a whole failed and nothing of it was committed: a store error
    then goes to every job, anything else makes the committer retry the appends one by
    one. ``write_projection`` settles its job or raises. No caller waits forever.
    """

    def __init__(
        self,
        write_appends: WriteAppends,
        write_projection: WriteProjection,
        *,
        max_group_events: int = MAX_GROUP_EVENTS,
    ) -> None:
        self._write_appends = write_appends
        self._write_projection = write_projection
        self._max = max_group_events
        self._jobs: deque[AppendJob | ProjectionJob] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="es-writer")

    async def append(self, parts: list[PreparedPart]) -> list[AppendResult]:
        future: asyncio.Future[list[AppendResult]] = asyncio.get_running_loop().create_future()
        self._jobs.append(AppendJob(parts, future, *_size(parts)))
        self._wake.set()
        return await future

    async def append_many(self, requests: list[list[PreparedPart]]) -> list[Outcome]:
        """Queue every request as an append of its own (each all or nothing, each
        succeeding or failing alone, as if queued one after the other) and wait for all
        of them: their outcomes in the order given."""
        if not requests:
            return []
        future: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        many = _Many(future, len(requests))
        jobs = self._jobs
        for index, parts in enumerate(requests):
            jobs.append(AppendJob(parts, None, *_size(parts), many, index))
        self._wake.set()
        return await future

    async def project(
        self, name: str, position: int, statements: list[SqlStatement], expected: int | None
    ) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._jobs.append(ProjectionJob(name, position, statements, expected, future))
        self._wake.set()
        await future

    async def stop(self) -> None:
        """Commit what is queued, then end the writer."""
        self._stopping = True
        self._wake.set()
        await self._task

    async def _run(self) -> None:
        jobs = self._jobs
        while True:
            await self._wake.wait()
            self._wake.clear()
            while jobs:
                if isinstance(jobs[0], ProjectionJob):
                    job = jobs.popleft()
                    assert isinstance(job, ProjectionJob)
                    await self._guard([job], self._write_projection(job))
                else:
                    group: list[AppendJob] = []
                    events = size = 0
                    while jobs and isinstance(jobs[0], AppendJob):
                        head = jobs[0]
                        if group and (
                            events + head.n_events > self._max
                            or size + head.n_bytes > MAX_GROUP_BYTES
                        ):
                            break
                        jobs.popleft()
                        group.append(head)
                        events += head.n_events
                        size += head.n_bytes
                    await self._append_group(group)
                # Let the tasks just served queue their next writes before the next group.
                await asyncio.sleep(0)
            if self._stopping:
                return

    async def _append_group(self, group: list[AppendJob]) -> None:
        """Commit a group; if the database refuses it as a whole for a reason that is
        not a store error (a constraint, a value the driver cannot send), commit its
        appends one by one, so that only the one at fault fails."""
        try:
            await self._write_appends(group)
        except EventStoreError as exc:
            for job in group:
                job.settle(exc)
        except Exception as exc:
            pending = [job for job in group if not job.done]
            if len(pending) > 1:
                for job in pending:
                    await self._append_group([job])
            else:
                for job in pending:
                    job.settle(StoreUnavailable(f"the append failed: {exc!r}"))

    @staticmethod
    async def _guard(group: list[Any], write: Awaitable[None]) -> None:
        try:
            await write
        except Exception as exc:  # a bug or driver failure must not strand callers
            for job in group:
                job.settle(exc)


def _size(parts: list[PreparedPart]) -> tuple[int, int]:
    """An append's events and encoded bytes (what bounds a group)."""
    n_bytes = 0
    for p in parts:
        for d, m in zip(p.data, p.metadata, strict=True):
            n_bytes += len(d) + len(m)
    return sum(len(p) for p in parts), n_bytes
