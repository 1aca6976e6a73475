"""The single writer of each aggregate: commands in, events appended to its stream.

Each aggregate instance (a race, a wallet) has a queue and, while it has work, one task
that drains it. The task takes every command waiting, decides them one after the other
against the state in memory (so the second command of a batch sees the first), and
appends all resulting events in one call with the stream version it expects. Many
commands, one append: the store's group commit then merges batches of different
aggregates into one transaction.

If the append fails, the state in memory is thrown away and reloaded from the log, and
every command of the batch gets the error: nothing is acknowledged that is not stored.
A ``WrongExpectedVersion`` (another process wrote the stream) is retried once after a
reload. In services mode one worker owns each aggregate's partition
(:mod:`oddstream.cluster.leases`); that version check is the fence for the moments two
processes believe they own it (and all there is between embedded processes on one
store).

Aggregates with long histories (wallets) keep snapshots: every ``snapshot_every`` events
the state is written to ``snapshot-<stream>``, and a load reads the latest snapshot and
the events after it.

Request ids: a command may carry one (the caller scopes it: who sent it and what kind of
command it is). It is stored in the metadata of the command's events with a fingerprint
of the command, and the store indexes it per stream, so a retry is recognised however
long ago, and across restarts and snapshots, the first execution was: the answers of
recent commands are kept in memory, older ones are looked up in the log (one indexed
read per batch that holds ids not in memory). A retry answers the original outcome with
``repeated=True`` and writes nothing; the same id with a different command is refused
with :class:`RequestIdReused`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import msgspec

from ..eventstore import (
    ANY,
    AppendResult,
    EventStore,
    NewEvent,
    RecordedEvent,
    WrongExpectedVersion,
)
from ..eventstore.base import REQUEST_ID
from ..eventstore.registry import EventRegistry

log = logging.getLogger(__name__)

S = TypeVar("S")
C = TypeVar("C")

#: Metadata key of the fingerprint of the command a request id was first used for.
REQUEST_FINGERPRINT = "request_fp"
SNAPSHOT_EVENT = "snapshot"


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What a command wrote: its events and where they landed in the log.

    ``repeated`` is true when the command's ``request_id`` had been executed before: the
    answer is the original one and nothing new was written. A command that decided no
    events (an idempotent no-op) answers the stream's current version and position.
    """

    events: tuple[msgspec.Struct, ...]
    stream_version: int
    first_position: int
    last_position: int
    repeated: bool = False


class RequestIdReused(Exception):
    """A request id came back with a command other than the one it was first used for.

    Payment APIs answer this as an error rather than replaying the first answer: the
    client has a bug (or two clients share ids), and neither command's sender should be
    told the other's outcome.
    """

    code = "request_id_reused"

    def __init__(self, what: str = "this request_id") -> None:
        super().__init__(
            f"{what} was used before for a different request; "
            "a retry must repeat the original request exactly, a new request needs a new id"
        )


def fingerprint(command: object) -> str:
    """A digest of a command's kind and every field: equal for an exact retry only."""
    raw = type(command).__qualname__.encode() + b"\0" + msgspec.json.encode(command)
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a request id was answered, and the fingerprint of the command it was for
    (``None`` for events stored before fingerprints were)."""

    outcome: CommandOutcome
    fingerprint: str | None


@dataclass(frozen=True, slots=True)
class AggregateSpec(Generic[S, C]):
    """How to run one kind of aggregate: its stream naming and its pure functions.

    ``decide(state, command)`` returns events or raises a rejection (the caller's typed
    exception); ``evolve(state, event)`` updates the state in place; ``conflict(key)`` is
    the exception a command gets when its stream keeps being written elsewhere.
    """

    prefix: str
    key: Callable[[C], str]
    initial: Callable[[str], S]
    decide: Callable[[S, C], Sequence[msgspec.Struct]]
    evolve: Callable[[S, Any], object]
    conflict: Callable[[str], Exception]
    snapshot_every: int | None = None
    to_snapshot: Callable[[S], dict[str, Any]] | None = None
    from_snapshot: Callable[[dict[str, Any]], S] | None = None
    #: how many recent request ids' answers a loaded aggregate keeps in memory (older
    #: ones are looked up in the log's request index when a retry names them)
    request_window: int = 200
    #: keep every answer while the aggregate is loaded (for aggregates whose streams end,
    #: like races: trimming would cost an index read for every new id of a busy one)
    keep_all_answers: bool = False
    #: idle aggregates kept in memory at most (the least recently used go first) and
    #: for at most ``idle_seconds``; an evicted one is loaded again when next used
    max_cached: int = 10_000
    idle_seconds: float = 300.0

    def stream(self, key: str) -> str:
        """The stream holding the aggregate ``key``."""
        return f"{self.prefix}{key}"


@dataclass(slots=True)
class _Pending(Generic[C]):
    command: C
    metadata: dict[str, Any]
    future: asyncio.Future[CommandOutcome]
    request_id: str | None
    fingerprint: str | None
    legacy_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class _Entry(Generic[S, C]):
    used: float = 0.0
    state: S | None = None
    version: int = 0
    position: int = 0
    snapshot_version: int = 0
    queue: list[_Pending[C]] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    #: request id → the answer it got (rebuilt from the log's metadata on load)
    answered: dict[str, _Answer] = field(default_factory=dict)
    #: ``answered`` holds every request id of the stream's versions from this one on;
    #: ids of earlier versions are looked up in the log
    answered_from: int = 1
    #: dropped from memory once its worker is done (``forget_where`` found it busy)
    forget_when_idle: bool = False
    #: the batch being decided and stored right now
    running: Sequence[_Pending[C]] = ()


class AggregateWriter(Generic[S, C]):
    """Executes commands of one aggregate kind; one writer per instance in this process."""

    def __init__(
        self,
        store: EventStore,
        spec: AggregateSpec[S, C],
        registry: EventRegistry,
        *,
        on_append: Callable[[float], None] | None = None,
    ) -> None:
        """``on_append(seconds)`` is told how long each append took (for metrics)."""
        self._store = store
        self._spec = spec
        self._registry = registry
        self._entries: dict[str, _Entry[S, C]] = {}
        self._on_append = on_append

    async def execute(
        self,
        command: C,
        *,
        request_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        legacy_ids: Sequence[str] = (),
    ) -> CommandOutcome:
        """Decide and store ``command``; raises the aggregate's rejection if refused.

        With a ``request_id``, a command already executed under that id is not decided
        again: the original answer comes back with ``repeated=True``. The id is stored in
        the events' metadata, so this holds across restarts. (A rejected command stores
        nothing, so its retry is decided afresh.) ``legacy_ids`` are the ids an earlier
        version recorded the same request under: a match among events stored without a
        fingerprint (by that version) is the original answer too.
        """
        return await self._enqueue(command, request_id, metadata, tuple(legacy_ids))

    async def execute_many(
        self, commands: Sequence[tuple[C, str | None]]
    ) -> list[CommandOutcome | BaseException]:
        """Execute many ``(command, request_id)`` pairs, each on its own (a refusal is
        returned in its place, not raised). Cheaper than a gather of ``execute``: the
        commands are queued at once, without a task each."""
        futures = [self._enqueue(command, request_id) for command, request_id in commands]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    def _enqueue(
        self,
        command: C,
        request_id: str | None,
        metadata: dict[str, Any] | None = None,
        legacy_ids: tuple[str, ...] = (),
    ) -> asyncio.Future[CommandOutcome]:
        """Queue ``command`` for its aggregate's writer task (started if idle)."""
        key = self._spec.key(command)
        entry = self._use(key)
        meta = dict(metadata or {})
        fp = None
        if request_id is not None:
            fp = fingerprint(command)
            meta[REQUEST_ID] = request_id
            meta[REQUEST_FINGERPRINT] = fp
        future: asyncio.Future[CommandOutcome] = asyncio.get_running_loop().create_future()
        entry.queue.append(_Pending(command, meta, future, request_id, fp, legacy_ids))
        if entry.worker is None:
            entry.worker = asyncio.create_task(self._drain(key, entry))
        return future

    def _use(self, key: str) -> _Entry[S, C]:
        """The aggregate's entry, made the most recently used (created if absent)."""
        entry = self._entries.pop(key, None)
        if entry is None:
            entry = _Entry()
        entry.used = time.monotonic()
        self._entries[key] = entry
        return entry

    def _evict_idle(self) -> None:
        """Drop idle aggregates past ``max_cached`` or idle for ``idle_seconds``, least
        recently used first: their state and recent answers come back from the log (and
        its request index) when they are used again."""
        spec = self._spec
        cutoff = time.monotonic() - spec.idle_seconds
        excess = len(self._entries) - spec.max_cached
        doomed: list[str] = []
        for key, entry in self._entries.items():  # least recently used first
            if len(doomed) >= excess and entry.used > cutoff:
                break  # the rest were used more recently
            if entry.worker is None and not entry.queue:
                doomed.append(key)
        for key in doomed:
            del self._entries[key]

    @property
    def cached(self) -> int:
        """How many aggregates are in memory."""
        return len(self._entries)

    async def state(self, key: str) -> S:
        """The aggregate's current state (loaded from the log if not in memory)."""
        entry = self._use(key)
        if entry.state is None:
            await self._load(key, entry)
        assert entry.state is not None
        return entry.state

    async def committed(self, key: str) -> tuple[S, int, int]:
        """The aggregate as the log holds it — ``(state, version, position of its last
        event)`` — read afresh, never the state in memory, which a batch changes before
        its append is known to be stored."""
        entry: _Entry[S, C] = _Entry()
        await self._load(key, entry)
        assert entry.state is not None
        return entry.state, entry.version, entry.position

    async def recall(
        self, command: C, request_id: str, legacy_ids: Sequence[str] = ()
    ) -> CommandOutcome | None:
        """The answer ``request_id`` (or one of ``legacy_ids``, see :meth:`execute`) got
        before (``repeated=True``), or ``None`` if it is new; raises
        :class:`RequestIdReused` if it was used for another command.

        A read only: for a caller that must know before it acts elsewhere (the cashier
        reserves a stake before the race decides). Nothing is decided or written.
        """
        key = self._spec.key(command)
        entry = self._entries.get(key)
        known = entry.answered if entry is not None else {}
        answer = _answer_for(known, request_id, legacy_ids)
        if answer is None and (entry is None or entry.state is None or entry.answered_from > 1):
            found = await self._look_up(key, [request_id, *legacy_ids])
            answer = _answer_for(found, request_id, legacy_ids)
        if answer is None:
            return None
        _check_same(answer, fingerprint(command))
        return answer.outcome

    async def settled(self, key: str) -> None:
        """Wait until every command of ``key`` taken so far is decided and stored, or
        has failed: then the state in memory holds what the log holds of them (a state
        read before may show a decision whose append is still under way, and may yet
        fail). Commands taken meanwhile are not waited for."""
        entry = self._entries.get(key)
        if entry is None:
            return
        futures = [p.future for p in (*entry.running, *entry.queue)]
        if futures:
            await asyncio.wait(futures)  # never cancels them

    def forget(self, key: str) -> None:
        """Drop the state in memory (it is loaded again on next use)."""
        entry = self._entries.get(key)
        if entry is not None and entry.worker is None:
            del self._entries[key]

    def forget_where(self, chosen: Callable[[str], bool]) -> int:
        """Drop the states in memory whose key ``chosen`` picks (a worker giving up a
        partition): the idle ones now (returns how many), the busy ones as soon as
        their commands are done — never kept to be used again once another process may
        have written their streams."""
        doomed = []
        for key, entry in self._entries.items():
            if not chosen(key):
                continue
            if entry.worker is None and not entry.queue:
                doomed.append(key)
            else:
                entry.forget_when_idle = True
        for key in doomed:
            del self._entries[key]
        return len(doomed)

    # ----------------------------------------------------------------- loading
    async def _load(self, key: str, entry: _Entry[S, C]) -> None:
        spec = self._spec
        stream = spec.stream(key)
        state: S | None = None
        snap_version = 0
        if spec.snapshot_every and spec.from_snapshot is not None:
            found = await self._store.read_stream(snapshot_stream(stream), backwards=True, limit=1)
            if found:
                data = found[0].data
                state = spec.from_snapshot(data["state"])
                snap_version = int(data["version"])
        if state is None:
            state = spec.initial(key)
        version = snap_version
        position = 0
        start = max(1, snap_version - spec.request_window + 1) if snap_version else 1
        answers = _AnswerBuilder(self._registry)
        async for recorded in self._store.scan_stream(stream, start):
            event = answers.add(recorded)
            if recorded.version > snap_version:
                spec.evolve(state, event)
            version = recorded.version
            position = recorded.position
        entry.state = state
        entry.version = version
        entry.position = position
        entry.snapshot_version = snap_version
        entry.answered = answers.build()
        entry.answered_from = start

    async def _look_up(self, key: str, request_ids: list[str]) -> dict[str, _Answer]:
        """The answers the log holds for ``request_ids`` (those it holds)."""
        answers = _AnswerBuilder(self._registry)
        for recorded in await self._store.read_requests(self._spec.stream(key), request_ids):
            answers.add(recorded)
        return answers.build()

    # ----------------------------------------------------------------- writing
    async def _drain(self, key: str, entry: _Entry[S, C]) -> None:
        try:
            while entry.queue:
                batch, entry.queue = entry.queue, []
                entry.running = batch
                try:
                    await self._run_batch(key, entry, batch, retry=True)
                finally:
                    entry.running = ()
                await self._maybe_snapshot(key, entry)
                _trim_answers(self._spec, entry)
        finally:
            entry.worker = None
            if entry.forget_when_idle and not entry.queue and self._entries.get(key) is entry:
                del self._entries[key]
            self._evict_idle()

    async def _run_batch(
        self, key: str, entry: _Entry[S, C], batch: Sequence[_Pending[C]], *, retry: bool
    ) -> None:
        spec = self._spec
        try:
            if entry.state is None:
                await self._load(key, entry)
        except Exception as exc:
            for p in batch:
                _fail(p.future, exc)
            return
        state = entry.state
        assert state is not None
        if entry.answered_from > 1:
            unknown = [
                rid
                for p in batch
                if p.request_id is not None and p.request_id not in entry.answered
                for rid in (p.request_id, *p.legacy_ids)
            ]
            if unknown:
                try:
                    entry.answered.update(await self._look_up(key, unknown))
                except Exception as exc:  # cannot tell a retry from a new request
                    for p in batch:
                        _fail(p.future, exc)
                    return
        accepted: list[tuple[_Pending[C], Sequence[msgspec.Struct]]] = []
        new_events: list[NewEvent] = []
        seen_now: dict[str, _Pending[C]] = {}
        to_new_event = self._registry.to_new_event
        for index, pending in enumerate(batch):
            rid = pending.request_id
            if rid is not None:
                earlier = _answer_for(entry.answered, rid, pending.legacy_ids)
                if earlier is not None:
                    try:
                        _check_same(earlier, pending.fingerprint)
                    except RequestIdReused as exc:
                        _fail(pending.future, exc)
                        continue
                    if not pending.future.done():
                        pending.future.set_result(earlier.outcome)
                    continue
                first = seen_now.get(rid)
                if first is not None:  # the same request twice in one batch: one answer
                    if first.fingerprint != pending.fingerprint:
                        _fail(pending.future, RequestIdReused())
                    else:
                        _chain(first.future, pending.future)
                    continue
                seen_now[rid] = pending
            try:
                events = spec.decide(state, pending.command)
            except Exception as exc:  # a rejection, or a bug: this command only
                _fail(pending.future, exc)
                continue
            try:
                for event in events:
                    spec.evolve(state, event)
                    new_events.append(to_new_event(event, metadata=pending.metadata))
            except Exception as exc:  # the state in memory is now unknown: start over
                entry.state = None
                for p in [*(p for p, _ in accepted), *batch[index:]]:
                    _fail(p.future, exc)
                return
            accepted.append((pending, events))
        if not new_events:  # nothing to store: answer where the stream stands
            for pending, _ in accepted:
                if not pending.future.done():
                    pending.future.set_result(
                        CommandOutcome((), entry.version, entry.position, entry.position)
                    )
            return
        expected = entry.version
        started = time.perf_counter()
        try:
            result: AppendResult = await self._store.append(spec.stream(key), new_events, expected)
            if self._on_append is not None:
                self._on_append(time.perf_counter() - started)
        except WrongExpectedVersion:
            entry.state = None  # someone else wrote the stream: reload and decide again
            if retry:
                await self._run_batch(key, entry, [p for p, _ in accepted], retry=False)
            else:
                for pending, _ in accepted:
                    _fail(pending.future, spec.conflict(key))
            return
        except Exception as exc:
            entry.state = None  # what is in memory was not stored
            for pending, _ in accepted:
                _fail(pending.future, exc)
            return
        entry.version = result.version
        entry.position = result.last_position
        position = result.first_position
        version = expected
        for pending, events in accepted:
            n = len(events)
            if n:
                outcome = CommandOutcome(tuple(events), version + n, position, position + n - 1)
            else:
                outcome = CommandOutcome((), version, position - 1, position - 1)
            position += n
            version += n
            if pending.request_id is not None:
                entry.answered[pending.request_id] = _Answer(
                    dataclasses.replace(outcome, repeated=True), pending.fingerprint
                )
            if not pending.future.done():
                pending.future.set_result(outcome)

    async def _maybe_snapshot(self, key: str, entry: _Entry[S, C]) -> None:
        spec = self._spec
        every = spec.snapshot_every
        if not every or spec.to_snapshot is None or entry.state is None:
            return
        if entry.version - entry.snapshot_version < every:
            return
        data = {"version": entry.version, "state": spec.to_snapshot(entry.state)}
        try:
            await self._store.append(
                snapshot_stream(spec.stream(key)), [NewEvent(SNAPSHOT_EVENT, data)], ANY
            )
        except Exception:  # a snapshot only saves time: the log is complete without it
            log.warning("snapshot of %s failed", key, exc_info=True)
            return
        entry.snapshot_version = entry.version


class _AnswerBuilder:
    """Gathers the answers of request ids from their stored events (a command's events
    are consecutive in its stream and share its request id)."""

    def __init__(self, registry: EventRegistry) -> None:
        self._registry = registry
        #: request id → [events, last version, first position, fingerprint]
        self._items: dict[str, list[Any]] = {}

    def add(self, recorded: RecordedEvent) -> Any:
        """Take one stored event; returns it decoded."""
        event = self._registry.decode(recorded)
        request_id = recorded.metadata.get(REQUEST_ID)
        if request_id is not None:
            item = self._items.get(request_id)
            if item is None:
                fp = recorded.metadata.get(REQUEST_FINGERPRINT)
                self._items[request_id] = [[event], recorded.version, recorded.position, fp]
            else:
                item[0].append(event)
                item[1] = recorded.version
        return event

    def build(self) -> dict[str, _Answer]:
        return {
            rid: _Answer(
                CommandOutcome(tuple(evs), last_version, first, first + len(evs) - 1, True), fp
            )
            for rid, (evs, last_version, first, fp) in self._items.items()
        }


def _trim_answers(spec: AggregateSpec[Any, Any], entry: _Entry[Any, Any]) -> None:
    """Keep the answers of the last ``request_window`` events in memory once there are
    four times as many; older ones stay in the log's request index."""
    if spec.keep_all_answers or len(entry.answered) <= 4 * spec.request_window:
        return
    floor = entry.version - spec.request_window
    entry.answered = {
        rid: a for rid, a in entry.answered.items() if a.outcome.stream_version > floor
    }
    entry.answered_from = max(entry.answered_from, floor + 1)


def _answer_for(
    answered: dict[str, _Answer], request_id: str, legacy_ids: Sequence[str]
) -> _Answer | None:
    """The answer of ``request_id``, else of a legacy id stored by an earlier version
    (without a fingerprint: an id this version stored under another request is not it)."""
    answer = answered.get(request_id)
    if answer is None:
        for legacy in legacy_ids:
            found = answered.get(legacy)
            if found is not None and found.fingerprint is None:
                return found
    return answer


def _check_same(answer: _Answer, fp: str | None) -> None:
    if answer.fingerprint is not None and fp is not None and answer.fingerprint != fp:
        raise RequestIdReused()


def snapshot_stream(stream: str) -> str:
    """The stream holding ``stream``'s snapshots."""
    return f"snapshot-{stream}"


def _chain(source: asyncio.Future[CommandOutcome], target: asyncio.Future[CommandOutcome]) -> None:
    def copy(done: asyncio.Future[CommandOutcome]) -> None:
        if target.done():
            return
        if done.cancelled():
            target.cancel()
        elif done.exception() is not None:
            target.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            target.set_result(dataclasses.replace(done.result(), repeated=True))

    source.add_done_callback(copy)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
