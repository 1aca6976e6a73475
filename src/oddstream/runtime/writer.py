"""The single writer of each aggregate: commands in, events appended to its stream.

Each aggregate instance (a race, a wallet) has a queue, and at most one batch of its
commands being decided or stored at a time. Every command waiting for an aggregate goes
into its next batch, decided one after the other against the state in memory (so the
second command of a batch sees the first), and all the batch's events are appended with
the stream version it expects.

The batches of many aggregates are written together: in one turn of the event loop, one
task (a *round*) takes every aggregate with commands waiting and no batch in flight,
decides each one's batch, and hands them all to the store as one
:meth:`~oddstream.eventstore.EventStore.append_many` call, where each stream keeps its
own expected version and succeeds or fails on its own. Commands that arrive meanwhile
wait for the next round, which may start before this one's commit is answered (a busy
aggregate simply sits it out). Many commands of one aggregate make one append; many
aggregates with one command each make one call and one wait, not a task and an append
call each; the store's group commit then puts what every round (and every other writer)
queued into one transaction.

If an append fails, that aggregate's state in memory is thrown away and reloaded from the
log, and every command of its batch gets the error: nothing is acknowledged that is not
stored. A ``WrongExpectedVersion`` (another process wrote the stream) is retried once
after a reload, for that aggregate alone: the other batches of the round are answered
as they were stored. In services mode one worker owns each aggregate's partition
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
recent commands are kept in memory, older ones are looked up in the log's request index
(one call per round, for the batches that hold ids not in memory). A retry answers the
original outcome with ``repeated=True`` and writes nothing; the same id with a different
command is refused with :class:`RequestIdReused`.
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
    StreamAppend,
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
class _Batch(Generic[S, C]):
    """One aggregate's batch in a round: its commands, then what they decided."""

    key: str
    entry: _Entry[S, C]
    pending: list[_Pending[C]]
    accepted: list[tuple[_Pending[C], Sequence[msgspec.Struct]]] = field(default_factory=list)
    events: list[NewEvent] = field(default_factory=list)


@dataclass(slots=True)
class _Entry(Generic[S, C]):
    used: float = 0.0
    state: S | None = None
    version: int = 0
    position: int = 0
    snapshot_version: int = 0
    queue: list[_Pending[C]] = field(default_factory=list)
    #: a round holds the aggregate (its batch is being decided or stored), or will
    busy: bool = False
    #: request id → the answer it got (rebuilt from the log's metadata on load)
    answered: dict[str, _Answer] = field(default_factory=dict)
    #: ``answered`` holds every request id of the stream's versions from this one on;
    #: ids of earlier versions are looked up in the log
    answered_from: int = 1
    #: dropped from memory once the rounds are done with it (``forget_where`` found it busy)
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
        """``on_append(seconds)`` is told, for each batch stored, how long the append
        that stored it took (for metrics; the batches of a round share one)."""
        self._store = store
        self._spec = spec
        self._registry = registry
        self._entries: dict[str, _Entry[S, C]] = {}
        self._on_append = on_append
        #: aggregates with commands waiting for the next round, in the order they came
        self._ready: dict[str, _Entry[S, C]] = {}
        self._round_due = False
        #: the round scheduled and not yet started (it takes ``_ready`` when it starts)
        self._due: asyncio.Task[None] | None = None
        self._rounds: set[asyncio.Task[None]] = set()

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

    def _committed(
        self,
        state: S | None,
        accepted: Sequence[tuple[_Pending[C], Sequence[msgspec.Struct]]],
        events: Sequence[NewEvent],
        result: AppendResult,
    ) -> None:
        """Called with each batch once it is stored and its commands answered: what a
        subclass delivers after commit (``events`` in order, the positions of
        ``result``; ``accepted`` says which command decided which). Nothing here."""

    def _enqueue(
        self,
        command: C,
        request_id: str | None,
        metadata: dict[str, Any] | None = None,
        legacy_ids: tuple[str, ...] = (),
    ) -> asyncio.Future[CommandOutcome]:
        """Queue ``command`` for its aggregate (in the next round if it is idle)."""
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
        if not entry.busy:
            entry.busy = True
            self._ready[key] = entry
            self._schedule()
        return future

    def _schedule(self) -> None:
        """Make sure a round will take the aggregates now ready (one task per round)."""
        if self._round_due:
            return
        self._round_due = True
        task = asyncio.get_running_loop().create_task(self._round())
        self._due = task
        self._rounds.add(task)
        task.add_done_callback(self._round_done)

    def _round_done(self, task: asyncio.Task[None]) -> None:
        self._rounds.discard(task)
        if task is not self._due:
            return
        # Cancelled before it started: no round would ever be scheduled again, and the
        # commands it was to take would wait forever. They are cancelled with it.
        self._due = None
        self._round_due = False
        ready, self._ready = self._ready, {}
        for key, entry in ready.items():
            for p in entry.queue:
                _abandon(p.future, asyncio.CancelledError())
            entry.queue = []
            entry.busy = False
            if entry.forget_when_idle and self._entries.get(key) is entry:
                del self._entries[key]

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
            if not entry.busy and not entry.queue:
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

    async def holding(self, key: str, holds: Callable[[S], bool]) -> S:
        """The aggregate's state once its commands taken so far are settled: the state
        in memory if ``holds`` it, else the state the log holds now, read afresh.

        For a read that moves money elsewhere on a "not there" (the sweep releases a
        stake when the book holds no such bet): what a book holds it never loses, so a
        "there" from memory is true, but in memory a deposed owner (ownership overlaps
        for a moment, docs/services.md "The fence") misses what the new owner has
        written since; its reads meet no fence, so a "not there" is checked in the log."""
        await self.settled(key)
        state = await self.state(key)
        if holds(state):
            return state
        fresh, _, _ = await self.committed(key)
        return fresh

    def forget(self, key: str) -> None:
        """Drop the state in memory (it is loaded again on next use)."""
        entry = self._entries.get(key)
        if entry is not None and not entry.busy:
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
            if not entry.busy and not entry.queue:
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
        #: the request id of the first event read, when the read starts mid-stream: its
        #: command may have begun before ``start``, so its answer here may be partial
        cut: str | None = None
        async for recorded in self._store.scan_stream(stream, start):
            if start > 1 and recorded.version == start:
                cut = recorded.metadata.get(REQUEST_ID)
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
        if cut is not None:  # looked up in the request index, whole, when asked for
            del entry.answered[cut]
        entry.answered_from = start

    async def _look_up(self, key: str, request_ids: list[str]) -> dict[str, _Answer]:
        """The answers the log holds for ``request_ids`` (those it holds)."""
        answers = _AnswerBuilder(self._registry)
        for recorded in await self._store.read_requests(self._spec.stream(key), request_ids):
            answers.add(recorded)
        return answers.build()

    # ----------------------------------------------------------------- writing
    async def _round(self) -> None:
        """Write the batch of every aggregate ready now, in one append call."""
        self._round_due = False
        self._due = None
        ready, self._ready = self._ready, {}
        batches: list[_Batch[S, C]] = []
        for key, entry in ready.items():
            batch, entry.queue = entry.queue, []
            entry.running = batch
            batches.append(_Batch(key, entry, batch))
        held = dict(ready)
        try:
            await self._write(batches, held, retry=True)
        except BaseException as exc:  # a bug, or the loop shutting down: no caller hangs
            for b in batches:
                if b.key in held:
                    b.entry.state = None
                    for p in b.pending:
                        _abandon(p.future, exc)
            if not isinstance(exc, Exception):
                raise
            log.exception("a round of the %s writer failed", self._spec.prefix)
        finally:
            for key, entry in list(held.items()):
                self._release(key, entry, held)
            self._evict_idle()

    def _release(self, key: str, entry: _Entry[S, C], held: dict[str, _Entry[S, C]]) -> None:
        """The round is done with this aggregate: its next batch goes in a later round."""
        if held.pop(key, None) is None:
            return
        entry.running = ()
        _trim_answers(self._spec, entry)
        if entry.queue:
            self._ready[key] = entry
            self._schedule()
            return
        entry.busy = False
        if entry.forget_when_idle and self._entries.get(key) is entry:
            del self._entries[key]

    def _drop(self, b: _Batch[S, C], exc: BaseException, held: dict[str, _Entry[S, C]]) -> None:
        """Fail every command of ``b`` still unanswered and let its aggregate go."""
        for p in b.pending:
            _fail(p.future, exc)
        self._release(b.key, b.entry, held)

    async def _write(
        self, batches: list[_Batch[S, C]], held: dict[str, _Entry[S, C]], *, retry: bool
    ) -> None:
        """Load, look up, decide and append ``batches`` (a round's, or with ``retry=False``
        those that met a conflict, again), answer every command, and let each aggregate
        go (``_release``) as soon as the round is done with it."""
        spec = self._spec
        # Aggregates not in memory are loaded (together, when there are several).
        loading = [b for b in batches if b.entry.state is None]
        if loading:
            loads = [self._load(b.key, b.entry) for b in loading]
            loaded: list[Any] = (
                await asyncio.gather(*loads, return_exceptions=True)
                if len(loads) > 1
                else [await _outcome_of(loads[0])]
            )
            for b, outcome in zip(loading, loaded, strict=True):
                if isinstance(outcome, BaseException):
                    self._drop(b, outcome, held)
            batches = [b for b in batches if b.key in held]
        # Request ids older than the answers in memory: one lookup for the round.
        asking: dict[str, list[str]] = {}
        for b in batches:
            entry = b.entry
            if entry.answered_from > 1:
                unknown = [
                    rid
                    for p in b.pending
                    if p.request_id is not None and p.request_id not in entry.answered
                    for rid in (p.request_id, *p.legacy_ids)
                ]
                if unknown:
                    asking[spec.stream(b.key)] = unknown
        if asking:
            found = await self._look_up_many(asking)
            for b in batches:
                stream = spec.stream(b.key)
                if stream not in asking:
                    continue
                answers = found[stream]
                if isinstance(answers, BaseException):  # cannot tell a retry from a new one
                    self._drop(b, answers, held)
                else:
                    b.entry.answered.update(answers)
            batches = [b for b in batches if b.key in held]
        # Each batch decided on its own; those with events to store are appended together.
        storing: list[_Batch[S, C]] = []
        for b in batches:
            if not self._decide(b):
                self._release(b.key, b.entry, held)
            elif not b.events:  # nothing to store: answer where the stream stands
                entry = b.entry
                for pending, _ in b.accepted:
                    if not pending.future.done():
                        pending.future.set_result(
                            CommandOutcome((), entry.version, entry.position, entry.position)
                        )
                self._release(b.key, entry, held)
            else:
                storing.append(b)
        if not storing:
            return
        appends = [StreamAppend(spec.stream(b.key), b.events, b.entry.version) for b in storing]
        started = time.perf_counter()
        outcomes: Sequence[AppendResult | BaseException]
        try:
            outcomes = await self._store.append_many(appends)
        except Exception as exc:  # the store is closed, or worse: none is known stored
            outcomes = [exc] * len(storing)
        elapsed = time.perf_counter() - started
        conflicted: list[_Batch[S, C]] = []
        snapshots: list[tuple[_Batch[S, C], dict[str, Any]]] = []
        for b, outcome in zip(storing, outcomes, strict=True):
            entry = b.entry
            if isinstance(outcome, AppendResult):
                _answer(entry, b.accepted, outcome)
                try:
                    self._committed(entry.state, b.accepted, b.events, outcome)
                except Exception:  # delivery only: the batch is stored and answered
                    log.exception("delivery of %s's events after commit failed", b.key)
                if self._on_append is not None:
                    try:
                        self._on_append(elapsed)
                    except Exception:  # a metric only counts: the batch is stored
                        log.exception("on_append of the %s writer failed", spec.prefix)
                try:
                    snapshot = self._snapshot_due(entry)
                except Exception:  # a snapshot only saves time: this one is skipped
                    log.exception("snapshot of %s could not be made", b.key)
                    snapshot = None
                if snapshot is None:
                    self._release(b.key, entry, held)
                else:
                    snapshots.append((b, snapshot))
                continue
            entry.state = None  # what is in memory was not stored
            accepted = [p for p, _ in b.accepted]
            if isinstance(outcome, WrongExpectedVersion) and retry:
                # someone else wrote the stream: this one alone reloads and decides again
                conflicted.append(_Batch(b.key, entry, accepted))
                continue
            error = spec.conflict(b.key) if isinstance(outcome, WrongExpectedVersion) else outcome
            for p in accepted:
                _fail(p.future, error)
            self._release(b.key, entry, held)
        if snapshots:
            await self._store_snapshots(snapshots)
            for b, _ in snapshots:
                self._release(b.key, b.entry, held)
        if conflicted:
            await self._write(conflicted, held, retry=False)

    def _decide(self, b: _Batch[S, C]) -> bool:
        """Decide the batch's commands against the state in memory, answering at once
        those that need no append (retries, refusals); ``False`` if the state had to be
        dropped (every command then has its answer)."""
        spec = self._spec
        entry = b.entry
        state = entry.state
        assert state is not None
        batch = b.pending
        accepted = b.accepted
        new_events = b.events
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
                return False
            accepted.append((pending, events))
        return True

    async def _look_up_many(
        self, asking: dict[str, list[str]]
    ) -> dict[str, dict[str, _Answer] | BaseException]:
        """The answers the log holds for the request ids of each stream. If the one
        call fails, each stream is asked on its own, so that only one at fault fails."""
        try:
            found = await self._store.read_requests_many(asking)
        except Exception as exc:
            if len(asking) == 1:
                return {stream: exc for stream in asking}
            answers: dict[str, dict[str, _Answer] | BaseException] = {}
            for stream, ids in asking.items():
                try:
                    answers[stream] = self._answers(await self._store.read_requests(stream, ids))
                except Exception as one:
                    answers[stream] = one
            return answers
        return {stream: self._answers(found.get(stream, ())) for stream in asking}

    def _answers(self, recorded: Sequence[RecordedEvent]) -> dict[str, _Answer]:
        answers = _AnswerBuilder(self._registry)
        for event in recorded:
            answers.add(event)
        return answers.build()

    def _snapshot_due(self, entry: _Entry[S, C]) -> dict[str, Any] | None:
        """The snapshot to store now (the state just stored), if one is due."""
        spec = self._spec
        every = spec.snapshot_every
        if not every or spec.to_snapshot is None or entry.state is None:
            return None
        if entry.version - entry.snapshot_version < every:
            return None
        return {"version": entry.version, "state": spec.to_snapshot(entry.state)}

    async def _store_snapshots(self, due: list[tuple[_Batch[S, C], dict[str, Any]]]) -> None:
        """Store the round's snapshots in one call (a failed one is only logged: a
        snapshot saves time, the log is complete without it)."""
        stream = self._spec.stream
        appends = [
            StreamAppend(snapshot_stream(stream(b.key)), [NewEvent(SNAPSHOT_EVENT, data)], ANY)
            for b, data in due
        ]
        outcomes: Sequence[AppendResult | BaseException]
        try:
            outcomes = await self._store.append_many(appends)
        except Exception as exc:
            outcomes = [exc] * len(due)
        for (b, data), outcome in zip(due, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("snapshot of %s failed", b.key, exc_info=outcome)
            else:
                b.entry.snapshot_version = data["version"]


def _answer(
    entry: _Entry[Any, Any],
    accepted: list[tuple[_Pending[Any], Sequence[msgspec.Struct]]],
    result: AppendResult,
) -> None:
    """Answer the commands of a stored batch, each with its own events' place."""
    version = entry.version
    entry.version = result.version
    entry.position = result.last_position
    position = result.first_position
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


async def _outcome_of(awaitable: Any) -> Any:
    """What ``awaitable`` returns, or the exception it raises (as ``gather`` would give
    with ``return_exceptions``), without a task."""
    try:
        return await awaitable
    except Exception as exc:
        return exc


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


def _abandon(future: asyncio.Future[Any], exc: BaseException) -> None:
    """Fail ``future`` with ``exc``, or cancel it if ``exc`` is a cancellation."""
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)
