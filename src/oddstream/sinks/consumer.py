"""A JDBC sink run as a consumer of the log: records in batches, rows and position in one
transaction of the target, failures told apart.

:class:`SinkConsumer` follows what a :class:`RecordSource` reads from the log (the REST
Proxy's topics: ``integrations/kafka/sink_source.py``), turns each event into records and
writes them with :class:`~oddstream.sinks.writer.JdbcSink` on a thread of its own (the
writer is synchronous). Its position lives in the target's offsets table: it is a
:class:`~oddstream.consumers.SinkCheckpoint` consumer, and a start resumes from what the
target holds.

**The cursor.** One event of the log may hold many records (a REST Proxy batch), and a
batch that fails because of one record is split until the record is found, the good
parts committed. So the position stored in the target is finer than the log's: the
cursor ``P << 20 | k`` means "every event up to log position ``P`` is written, and the
first ``k`` records of the event at ``P + 1``". A whole batch ends at ``k = 0``; an
event written in part is named by its own position (``P + 1``), not as "the next event
with records", which would name another event once ``topics`` changed. The cursors
only grow, which is all :meth:`JdbcSink.write` needs.

**Failures.** A write that fails because the target is unavailable
(:func:`~oddstream.sinks.failures.is_transient`) raises :class:`TargetUnavailable`: the
runner gives the batch again after :meth:`SinkConsumer.retry_delay` (``max.retries``
tries ``retry.backoff.ms`` apart, then doubling up to a minute, for ever), from what the
target holds. Any other failure is a record's: the batch is bisected (good halves
written) down to the record, the target probed (unreachable now: transient after all),
and the record is dead-lettered (``errors.tolerance=all``) or the sink stops
(:class:`~oddstream.consumers.Halt`, ``none``) with the trace in :attr:`failure_trace`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

from ..consumers import Batch, Consumer, Halt, Subscription
from ..eventstore import CheckpointConflict, RecordedEvent
from ..runtime.deadletters import DeadLetterStore, Refusal
from .config import JdbcSinkConfig
from .errors import NotTransactional, PositionConflict, RecordError, SinkError
from .failures import TargetUnavailable, describe, is_transient, reason_of
from .schema import SinkRecord
from .worker import DaemonThreadExecutor
from .writer import JdbcSink, WriteResult

log = logging.getLogger(__name__)

T = TypeVar("T")

CURSOR_BITS = 20
#: the most records one event may hold for a sink (a log event is at most 1 MiB)
MAX_RECORDS_PER_EVENT = (1 << CURSOR_BITS) - 1
#: where the doubling back-off stops once ``max.retries`` quick tries are spent
MAX_RETRY_DELAY = 60.0
#: the dead-letter source of a sink with ``errors.tolerance=all`` and no DLQ topic
DEFAULT_DLQ_SOURCE = "sinks"
#: how long :meth:`SinkConsumer.close` lets a call in flight finish before breaking its
#: connection, and then waits for the thread to let go of it
CLOSE_GRACE = 2.0
CLOSE_AFTER_BREAK = 3.0


def encode_cursor(position: int, done: int = 0) -> int:
    """The target's stored value for "events up to ``position`` written, and ``done``
    records of the next"."""
    if not 0 <= done <= MAX_RECORDS_PER_EVENT:
        raise ValueError(f"records written of an event: 0..{MAX_RECORDS_PER_EVENT}")
    return (position << CURSOR_BITS) | done


def decode_cursor(cursor: int) -> tuple[int, int]:
    """``(position, done)`` of a stored cursor."""
    return cursor >> CURSOR_BITS, cursor & MAX_RECORDS_PER_EVENT


Letter = Callable[[int], tuple[bytes, Mapping[str, str]]]


@dataclass(frozen=True, slots=True)
class EventItems:
    """The records one event holds for the sink, in order: ``records[i]`` is the
    ``i``-th, or ``None`` when it cannot be one (``refusals[i]`` says why).

    ``letter(i)`` answers the ``i``-th record's dead letter: its payload (the record as
    stored) and context (where it was: topic, offset, log position). It is made only
    for a record that is dead-lettered, and the records of an event are one object, not
    one each: a page of the log holds up to a million records, and every object kept
    per record until its batch is written is one more for the garbage collector to
    walk, again and again, while the page is in memory."""

    records: Sequence[SinkRecord | None]
    refusals: Mapping[int, Refusal]
    letter: Letter


def _no_letter(index: int) -> tuple[bytes, Mapping[str, str]]:
    raise IndexError(index)


#: an event holding nothing for the sink
NO_ITEMS = EventItems((), {}, _no_letter)


class RecordSource(Protocol):
    """What a sink reads from the log: which events (``subscription``) and the records
    each holds for this sink (:data:`NO_ITEMS` for an event of a topic it does not
    follow)."""

    subscription: Subscription

    async def items(self, event: RecordedEvent) -> EventItems:
        """The event's records for the sink, in order."""
        ...


class _Pending:
    """Records to write (in one batch, or bisected), in order, and where each came from:
    ``spans[s]`` = (the event's items, its log position, the index of its first record
    here), its first record at ``starts[s]`` of ``records``."""

    __slots__ = ("floor", "records", "spans", "starts")

    def __init__(self) -> None:
        self.records: list[SinkRecord | None] = []
        self.spans: list[tuple[EventItems, int, int]] = []
        self.starts: list[int] = []
        #: the cursor of the last record is at least this (the page's end)
        self.floor = 0

    def __len__(self) -> int:
        return len(self.records)

    def add(self, items: EventItems, position: int, start: int, end: int) -> None:
        """Records ``start`` to ``end`` (exclusive) of the event at ``position``."""
        self.starts.append(len(self.records))
        self.spans.append((items, position, start))
        self.records.extend(items.records[start:end])

    def where(self, j: int) -> tuple[EventItems, int, int]:
        """``(items, position, index)``: record ``j`` is ``items.records[index]`` of the
        event at ``position``."""
        s = bisect_right(self.starts, j) - 1
        items, position, start = self.spans[s]
        return items, position, start + j - self.starts[s]

    def cursor(self, j: int) -> int:
        """The target's cursor once records up to ``j`` are written."""
        items, position, index = self.where(j)
        if index == len(items.records) - 1:
            cursor = encode_cursor(position)
        else:
            cursor = encode_cursor(position - 1, index + 1)
        return max(cursor, self.floor) if j == len(self.records) - 1 else cursor

    def refused(self) -> list[tuple[int, Refusal]]:
        """The records the source refused: their index here and why, in order."""
        out: list[tuple[int, Refusal]] = []
        ends = [*self.starts[1:], len(self.records)]
        for (items, _, start), first, end in zip(self.spans, self.starts, ends, strict=True):
            refusals = items.refusals
            if not refusals:
                continue
            stop = start + end - first
            if len(refusals) <= end - first:
                found = sorted((i, r) for i, r in refusals.items() if start <= i < stop)
            else:
                # a part of an event with more refusals than records here (one split
                # across batches): look at this part only, not at every refusal of the
                # event again for each part (quadratic in the event's records)
                records = items.records
                found = [(i, refusals[i]) for i in range(start, stop) if records[i] is None]
            out.extend((first + i - start, refusal) for i, refusal in found)
        return out


class SinkConsumer(Consumer):
    """Runs a :class:`JdbcSink` (the connector ``connector``) on the consumer runner.

    Use it with :class:`~oddstream.consumers.SinkCheckpoint` and
    ``ConsumerRunner(..., batch_size=config.batch_size, retry_load=True)`` (the target
    may be down at start). ``dead_letters`` is needed with ``errors.tolerance=all``.
    Call :meth:`close` after the runner stopped.
    """

    def __init__(
        self,
        connector: str,
        config: JdbcSinkConfig,
        source: RecordSource,
        dead_letters: DeadLetterStore | None = None,
        *,
        sink: JdbcSink | None = None,
    ) -> None:
        if config.errors_tolerance == "all" and dead_letters is None:
            raise ValueError("errors.tolerance=all needs a dead-letter store")
        self.connector = connector
        self.name = f"sink-{connector}"
        self.config = config
        self.source = source
        self.subscription = source.subscription
        self.dead_letters = dead_letters
        self.dlq_source = config.dlq_topic or DEFAULT_DLQ_SOURCE
        self.sink = sink or JdbcSink(connector, config)
        # a daemon thread: one blocked on a database that does not answer never holds up
        # the process's exit (the writer's deadline is what ends its call)
        self._executor = DaemonThreadExecutor(f"sink-{connector}"[:30])
        self._cursor = 0  # what the target holds, as last read or written
        #: rows written (inserted, upserted, updated) and deleted since started
        self.rows_written = 0
        self.rows_deleted = 0
        #: records dead-lettered since started
        self.dead_lettered = 0
        #: why the sink stopped (``errors.tolerance=none``): summary and trace
        self.failure_trace: str | None = None
        #: the last time the target was unavailable: what the driver said
        self.last_unavailable: str | None = None
        #: the log position the target held when this sink first read it (``None``:
        #: none, it started from the beginning; a re-created connector's earlier life)
        self.started_from: int | None = None
        self._read_start = False

    # ----------------------------------------------------------------- the thread
    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def close(self) -> None:
        """Close the connection to the target (after the runner stopped), in a bounded
        time: a call still in flight (a write the stopped runner abandoned) is given
        :data:`CLOSE_GRACE` seconds, then its connection is broken
        (:meth:`JdbcSink.interrupt`: the database may not be answering at all)."""
        closing = asyncio.ensure_future(self._call(self.sink.close))
        await asyncio.wait({closing}, timeout=CLOSE_GRACE)
        if not closing.done():
            self.sink.interrupt()
            await asyncio.wait({closing}, timeout=CLOSE_AFTER_BREAK)
        if closing.done():
            with contextlib.suppress(Exception):
                closing.result()
        else:
            closing.cancel()
        self._executor.shutdown(wait=False)

    async def _drop_connection(self) -> None:
        with contextlib.suppress(Exception):
            await self._call(self.sink.close)

    async def _raise_if_unavailable(self, exc: Exception) -> None:
        """A transient failure of the target (down, unreachable, restarting) becomes
        :class:`TargetUnavailable` (the runner backs off and retries), after dropping
        the connection it broke; any other error is left to the caller."""
        if is_transient(exc):
            await self._drop_connection()
            self.last_unavailable = describe(exc)
            raise TargetUnavailable(f"target unavailable: {describe(exc)}") from exc

    # ----------------------------------------------------------------- position
    async def stored_position(self) -> int | None:
        """The log position the target holds (:class:`SinkCheckpoint`); ``None`` when it
        holds none (the sink starts from the beginning)."""
        try:
            raw = await self._call(self.sink.stored_position)
        except NotTransactional as exc:
            raise Halt(f"sink {self.connector}: {exc}") from exc
        except Exception as exc:
            await self._raise_if_unavailable(exc)
            raise
        self._cursor = raw or 0
        found = None if raw is None else decode_cursor(raw)[0]
        if not self._read_start:
            self.started_from, self._read_start = found, True
        return found

    @property
    def start_known(self) -> bool:
        """Whether :attr:`started_from` is known (the target was read once)."""
        return self._read_start

    @property
    def cursor(self) -> tuple[int, int]:
        """``(P, k)`` the target holds, as last seen: every event up to log position
        ``P`` written, and the first ``k`` records of the event at ``P + 1``."""
        return decode_cursor(self._cursor)

    async def resume_from(self, position: int) -> bool:
        # the runner has just reloaded the cursor (stored_position): everything is in
        # the target, nothing to reload
        return True

    def retry_delay(self, failures: int) -> float | None:
        """``max.retries`` tries ``retry.backoff.ms`` apart, then doubling up to a
        minute: an unavailable target is waited for, never given up on."""
        base = self.config.retry_backoff_ms / 1000
        if failures <= self.config.max_retries:
            return base
        grown = max(base, 0.1) * 2 ** min(failures - self.config.max_retries, 16)
        return min(grown, max(base, MAX_RETRY_DELAY))

    # ----------------------------------------------------------------- batches
    async def handle(self, batch: Batch) -> None:
        position, done = decode_cursor(self._cursor)
        pending = _Pending()
        # a page of the log is ``batch.size`` *events*, and one REST Proxy event holds
        # up to ~1 MiB of records: written (and bisected) ``batch.size`` records at a
        # time, so that the records made, the rows and the transaction stay bounded
        limit = self.config.batch_size
        for event in batch.events:
            if event.position <= position:
                continue  # written before (a batch given again after a partial write)
            found = await self.source.items(event)
            count = len(found.records)
            if not count:
                continue
            if count > MAX_RECORDS_PER_EVENT:
                raise SinkError(
                    f"event at {event.position} holds {count} records; a sink takes "
                    f"at most {MAX_RECORDS_PER_EVENT} from one event"
                )
            # the records written of this very event (``done`` names the event at
            # ``position + 1`` only: another event's records are all to write)
            start = done if event.position == position + 1 else 0
            while start < count:
                end = min(count, start + limit - len(pending))
                pending.add(found, event.position, start, end)
                start = end
                if len(pending) >= limit:
                    await self._write_items(pending)
                    pending = _Pending()
        if not pending:
            return  # nothing for this sink: the cursor stays (a restart reads past it again)
        pending.floor = encode_cursor(batch.position)
        await self._write_items(pending)

    async def _write_items(self, pending: _Pending) -> None:
        good = 0  # the first record not yet written nor dead-lettered
        for j, refusal in pending.refused():
            if good < j:
                await self._span(pending, good, j)
            await self._poison(pending, j, refusal, None)
            good = j + 1
        if good < len(pending):
            await self._span(pending, good, len(pending))
        end = pending.cursor(len(pending) - 1)
        if self._cursor < end:  # the last records were dead-lettered: move past them
            await self._write([], end)

    async def _span(self, pending: _Pending, lo: int, hi: int) -> None:
        """Write records ``lo`` to ``hi`` (exclusive) of ``pending``, none of them
        refused by the source; on a record's failure, find it (bisecting) and write
        the rest."""
        records = cast(list[SinkRecord], pending.records[lo:hi])
        try:
            await self._write(records, pending.cursor(hi - 1))
            return
        except (TargetUnavailable, CheckpointConflict):
            raise
        except NotTransactional as exc:  # the table's fault, not a record's
            raise Halt(f"sink {self.connector}: {exc}") from exc
        except Exception as exc:
            failure = exc
        if hi - lo == 1:
            await self._probe(failure)
            await self._poison(pending, lo, None, failure)
            return
        index = failure.index if isinstance(failure, RecordError) else None
        if index is not None and 0 <= index < hi - lo:
            # the writer named the record (found while making rows, before any SQL)
            if index:
                await self._span(pending, lo, lo + index)
            await self._poison(pending, lo + index, None, failure)
            if lo + index + 1 < hi:
                await self._span(pending, lo + index + 1, hi)
            return
        middle = lo + (hi - lo) // 2
        await self._span(pending, lo, middle)
        await self._span(pending, middle, hi)

    async def _write(self, records: Sequence[SinkRecord], end: int) -> WriteResult:
        after = self._cursor
        try:
            result = await self._call(lambda: self.sink.write(records, after=after, position=end))
        except PositionConflict as exc:
            raise CheckpointConflict(
                self.name,
                decode_cursor(exc.expected)[0],
                None if exc.stored is None else decode_cursor(exc.stored)[0],
            ) from exc
        except Exception as exc:
            await self._raise_if_unavailable(exc)
            raise
        if result.already_written and result.position > end:
            # another instance wrote past this batch: follow on from what it wrote
            raise CheckpointConflict(
                self.name, decode_cursor(end)[0], decode_cursor(result.position)[0]
            )
        self._cursor = end
        self.rows_written += result.rows
        self.rows_deleted += result.deleted
        self.last_unavailable = None
        return result

    async def _probe(self, failure: BaseException) -> None:
        """A record failed alone: make sure the target is there and still holds this
        sink's cursor (else it was not the record's fault: the target is unavailable,
        or another writer of the sink moved the cursor, and the write failed on that —
        a unique violation of the offsets row two writers inserted on a fresh target)."""
        try:
            stored = await self._call(self.sink.stored_position)
        except Exception as exc:
            await self._drop_connection()
            self.last_unavailable = describe(exc)
            raise TargetUnavailable(
                f"target unavailable: {describe(exc)} (after {describe(failure)})"
            ) from failure
        if (stored or 0) != self._cursor:
            raise CheckpointConflict(
                self.name,
                decode_cursor(self._cursor)[0],
                None if stored is None else decode_cursor(stored)[0],
            ) from failure

    async def _poison(
        self, pending: _Pending, j: int, refusal: Refusal | None, exc: BaseException | None
    ) -> None:
        """Record ``j`` of ``pending`` can never be written: dead-letter it, or stop
        the sink."""
        if refusal is None:
            assert exc is not None
            refusal = Refusal(reason_of(exc), "", describe(exc))
        items, _, index = pending.where(j)
        payload, origin = items.letter(index)
        where = ", ".join(f"{k}={v}" for k, v in origin.items())
        summary = f"record ({where}) cannot be written: {refusal.reason}: {refusal.message}"
        if self.config.errors_tolerance != "all":
            trace = "".join(traceback.format_exception(exc)) if exc is not None else ""
            self.failure_trace = f"{summary}\n{trace}".rstrip()
            raise Halt(summary)
        assert self.dead_letters is not None
        context = {
            **origin,
            "connector": self.connector,
            "error": type(exc).__name__ if exc is not None else refusal.reason,
        }
        await self.dead_letters.record(self.dlq_source, payload, refusal, context=context)
        self.dead_lettered += 1
        log.warning("sink %s: dead-lettered to %s: %s", self.connector, self.dlq_source, summary)


__all__ = [
    "CURSOR_BITS",
    "DEFAULT_DLQ_SOURCE",
    "MAX_RECORDS_PER_EVENT",
    "NO_ITEMS",
    "EventItems",
    "RecordSource",
    "SinkConsumer",
    "TargetUnavailable",
    "decode_cursor",
    "encode_cursor",
]
