"""The single writer of each race: commands in, events appended to ``race-<id>``.

Each race has a queue and, while it has work, one task that drains it. The task takes
every command waiting, decides them one after the other against the race's state in
memory (so the second bet of a batch sees the first), and appends all resulting events
in one call with the stream version it expects. Many commands, one append: the store's
group commit then merges batches of different races into one transaction.

If the append fails, the state in memory is thrown away and reloaded from the log, and
every command of the batch gets the error: nothing is acknowledged that is not stored.
A ``WrongExpectedVersion`` (another process wrote the race) is retried once after a
reload; ownership of a race by one process at a time is the runtime's job in services
mode.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..domain.tote.events import RaceEvent
from ..domain.tote.race import RaceCommand, RaceState, ToteRejection, decide, evolve
from ..eventstore import (
    AppendResult,
    EventStore,
    NewEvent,
    WrongExpectedVersion,
)
from ..eventstore.registry import EventRegistry
from .codec import registry as default_registry

RACE_STREAM_PREFIX = "race-"


def race_stream(race_id: str) -> str:
    return f"{RACE_STREAM_PREFIX}{race_id}"


#: Metadata key of the client's request id; the answers are rebuilt from it on load.
REQUEST_ID = "request_id"


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What a command wrote: its events and where they landed in the log.

    ``repeated`` is true when the command's ``request_id`` had been executed before: the
    answer is the original one and nothing new was written.
    """

    events: tuple[msgspec.Struct, ...]
    stream_version: int
    first_position: int
    last_position: int
    repeated: bool = False


@dataclass(slots=True)
class _Pending:
    command: RaceCommand
    metadata: dict[str, Any]
    future: asyncio.Future[CommandOutcome]
    request_id: str | None


@dataclass(slots=True)
class _Race:
    state: RaceState | None = None
    version: int = 0
    queue: list[_Pending] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    #: request id → the answer it got (rebuilt from the log's metadata on load)
    answered: dict[str, CommandOutcome] = field(default_factory=dict)


class RaceWriter:
    """Executes race commands; one writer per race in this process."""

    def __init__(
        self,
        store: EventStore,
        registry: EventRegistry | None = None,
        *,
        on_append: Callable[[float], None] | None = None,
    ) -> None:
        """``on_append(seconds)`` is told how long each append took (for metrics)."""
        self._store = store
        self._registry = registry or default_registry
        self._races: dict[str, _Race] = {}
        self._on_append = on_append

    async def execute(
        self,
        command: RaceCommand,
        *,
        request_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> CommandOutcome:
        """Decide and store ``command``; raises :class:`ToteRejection` if refused.

        With a ``request_id``, a command already executed under that id is not decided
        again: the original answer comes back with ``repeated=True``. The id is stored in
        the events' metadata, so this holds across restarts. (A rejected command stores
        nothing, so its retry is decided afresh.)
        """
        return await self._enqueue(command, request_id, metadata)

    async def execute_many(
        self, commands: Sequence[tuple[RaceCommand, str | None]]
    ) -> list[CommandOutcome | BaseException]:
        """Execute many ``(command, request_id)`` pairs, each on its own (a refusal is
        returned in its place, not raised). Cheaper than a gather of ``execute``: the
        commands are queued at once, without a task each."""
        futures = [self._enqueue(command, request_id) for command, request_id in commands]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    def _enqueue(
        self,
        command: RaceCommand,
        request_id: str | None,
        metadata: dict[str, Any] | None = None,
    ) -> asyncio.Future[CommandOutcome]:
        """Queue ``command`` for its race's writer task (started if idle)."""
        race_id = command.race_id
        race = self._races.get(race_id)
        if race is None:
            race = self._races[race_id] = _Race()
        meta = dict(metadata or {})
        if request_id is not None:
            meta[REQUEST_ID] = request_id
        future: asyncio.Future[CommandOutcome] = asyncio.get_running_loop().create_future()
        race.queue.append(_Pending(command, meta, future, request_id))
        if race.worker is None:
            race.worker = asyncio.create_task(self._drain(race_id, race))
        return future

    async def state(self, race_id: str) -> RaceState:
        """The race's current state (loaded from the log if not in memory)."""
        race = self._races.setdefault(race_id, _Race())
        if race.state is None:
            await self._load(race_id, race)
        assert race.state is not None
        return race.state

    async def _load(self, race_id: str, race: _Race) -> None:
        state = RaceState()
        version = 0
        stream = race_stream(race_id)
        answered: dict[str, list[Any]] = {}
        async for recorded in self._read_stream_all(stream):
            event = self._registry.decode(recorded)
            evolve(state, event)  # type: ignore[arg-type]
            version = recorded.version
            request_id = recorded.metadata.get(REQUEST_ID)
            if request_id is not None:
                entry = answered.get(request_id)
                if entry is None:
                    answered[request_id] = [[event], recorded.version, recorded.position]
                else:
                    entry[0].append(event)
                    entry[1] = recorded.version
        if state.race_id == "":
            state.race_id = race_id
        race.state = state
        race.version = version
        race.answered = {
            rid: CommandOutcome(tuple(evs), last_version, first, first + len(evs) - 1, True)
            for rid, (evs, last_version, first) in answered.items()
        }

    async def _read_stream_all(self, stream: str) -> Any:
        after = 0
        while True:
            page = await self._store.read_stream(stream, from_version=after + 1, limit=5000)
            for recorded in page:
                yield recorded
            if len(page) < 5000:
                return
            after = page[-1].version

    async def _drain(self, race_id: str, race: _Race) -> None:
        try:
            while race.queue:
                batch, race.queue = race.queue, []
                await self._run_batch(race_id, race, batch, retry=True)
        finally:
            race.worker = None

    async def _run_batch(
        self, race_id: str, race: _Race, batch: Sequence[_Pending], *, retry: bool
    ) -> None:
        try:
            if race.state is None:
                await self._load(race_id, race)
        except Exception as exc:
            for p in batch:
                _fail(p.future, exc)
            return
        state = race.state
        assert state is not None
        accepted: list[tuple[_Pending, list[RaceEvent]]] = []
        new_events: list[NewEvent] = []
        seen_now: dict[str, _Pending] = {}
        for index, pending in enumerate(batch):
            rid = pending.request_id
            if rid is not None:
                earlier = race.answered.get(rid)
                if earlier is not None:
                    if not pending.future.done():
                        pending.future.set_result(earlier)
                    continue
                if rid in seen_now:  # the same request twice in one batch: one answer
                    _chain(seen_now[rid].future, pending.future)
                    continue
                seen_now[rid] = pending
            try:
                events = decide(state, pending.command)
            except Exception as exc:  # a rejection, or a bug: this command only
                _fail(pending.future, exc)
                continue
            try:
                for event in events:
                    evolve(state, event)
                    new_events.append(self._registry.to_new_event(event, metadata=pending.metadata))
            except Exception as exc:  # the state in memory is now unknown: start over
                race.state = None
                for p in [*(p for p, _ in accepted), *batch[index:]]:
                    _fail(p.future, exc)
                return
            accepted.append((pending, events))
        if not accepted:
            return
        expected = race.version
        started = time.perf_counter()
        try:
            result: AppendResult = await self._store.append(
                race_stream(race_id), new_events, expected
            )
            if self._on_append is not None:
                self._on_append(time.perf_counter() - started)
        except WrongExpectedVersion:
            race.state = None  # someone else wrote the race: reload and decide again
            if retry:
                await self._run_batch(race_id, race, [p for p, _ in accepted], retry=False)
            else:
                for pending, _ in accepted:
                    _fail(
                        pending.future,
                        ToteRejection("conflict", f"race {race_id} is being written elsewhere"),
                    )
            return
        except Exception as exc:
            race.state = None  # what is in memory was not stored
            for pending, _ in accepted:
                _fail(pending.future, exc)
            return
        race.version = result.version
        position = result.first_position
        version = expected
        for pending, events in accepted:
            n = len(events)
            outcome = CommandOutcome(tuple(events), version + n, position, position + n - 1)
            position += n
            version += n
            if pending.request_id is not None:
                race.answered[pending.request_id] = dataclasses.replace(outcome, repeated=True)
            if not pending.future.done():
                pending.future.set_result(outcome)


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
