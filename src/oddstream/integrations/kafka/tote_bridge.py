"""The bridge between the ``tote_win_bets`` topic and the tote, both ways.

* **Records in → contributions.** Records produced to ``tote_win_bets`` (the Kafka POC's
  bets: :mod:`.tote_records`) become contributions to the win pool of the race they
  name. A race id not yet scheduled is scheduled on the fly for the topic (a win pool
  with no takeout, runners 1–40, ``contributions_from="tote_win_bets"``), as the POC
  assumed. The step is driven by a **checkpointed subscription** to the topic's stream,
  not by the request: each stored batch becomes one ``AddContributions`` per race
  (request id ``tote_win_bets:<first offset>``, so a batch done twice is answered from
  the log, not made twice), in topic order. The produce request waits (at most
  :data:`ANSWER_TIMEOUT`) until its batch went through, so that what it produced is on
  the boards and in the odds topic when it is answered; its answer never carries an
  error for a record, which is stored whatever the tote makes of it (a Kafka REST
  Proxy reports only whether a record was produced). Records the tote refuses are
  logged, and the race's refusals are part of its ``ContributionsAdded`` event. After
  a crash between "records stored" and "contributions stored", the bridge resumes from
  its checkpoint at start: nothing lost, nothing doubled.
* **Odds out.** ``tote_win_bet_race_runners_odds`` is materialized from the log: the
  rows of one ``ContributionsAdded`` (one per item, exactly the POC's ksqlDB output:
  :mod:`.odds_topic`) are one batch of the topic. Only the service writes that topic:
  the bridge reserves it, so producing to it is refused (403) to every client. The rows
  are a pure function of the log, so after a restart the materializer recomputes the
  sums, skips the rows it wrote before (by the count its own appends carry,
  :data:`ODDS_MARK`, never by the topic's end offset, which records from elsewhere
  would move) and appends the rest.

Both directions are consumers on the one runner (``docs/consumers.md``): records in
(:class:`RecordsToContributions`, a store checkpoint: at least once, and idempotent by
request id) and odds out (:class:`OddsTopicWriter`, no checkpoint: it recomputes the sums
from the log at each start and writes only the rows the topic lacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...consumers import (
    Batch,
    Consumer,
    ConsumerRunner,
    MemoryCheckpoint,
    StartOver,
    StoreCheckpoint,
    Subscription,
)
from ...domain.tote.events import ContributionsAdded, PoolConfig, Runner
from ...domain.tote.pools import PoolType
from ...domain.tote.race import (
    MAX_RUNNERS,
    AddContributions,
    OpenBetting,
    ScheduleRace,
    ToteRejection,
)
from ...eventstore import EventStore, InvalidEvent, RecordedEvent
from ...eventstore.registry import EventRegistry
from ...runtime.codec import registry as default_registry
from ...runtime.race_writer import RACE_STREAM_PREFIX, CommandOutcome, RaceWriter
from .legacy_events import OLD_BET, OLD_BETS
from .odds_topic import OddsTopicStream, race_id_value, row_value
from .rest_proxy import (
    BATCH_EVENT,
    RECORD_TYPES,
    EventStoreTopics,
    RecordError,
    StoredBatch,
    ValueBatch,
    records_of,
    topic_stream,
)
from .tote_records import BETS_TOPIC, ODDS_TOPIC, contribution_commands

log = logging.getLogger(__name__)

#: The checkpoint (global position) of the last ``tote_win_bets`` event made into
#: contributions (a stored name: it stays what the first version called it).
CHECKPOINT = "poc-bets"
_CONTRIBUTIONS_TYPE = "tote.ContributionsAdded"
#: How long a produce request waits for its batch to reach the tote before answering
#: (the records are stored either way; the answer then only comes before the odds).
ANSWER_TIMEOUT = 30.0
_RETRIES = 5
#: how many of the latest refused records :attr:`TotePoolBridge.refusals` keeps
_KEEP_REFUSALS = 1000


def _values(
    event: RecordedEvent, fresh: dict[int, StoredBatch] | None = None
) -> tuple[int, Sequence[Any]]:
    """``(base_offset, values)`` of a topic event, in either format. ``fresh`` holds
    batches this process just stored, by base offset: their values are taken from
    memory instead of decoding the event again (when the event holds the whole batch)."""
    if fresh and event.type == BATCH_EVENT:
        meta = event.metadata
        batch = fresh.get(meta.get("base_offset", -1))
        if batch is not None and len(batch.parts) == 1 and batch.count == meta.get("count"):
            return batch.base_offset, batch.parts[0].values
    data = event.data
    if event.type == BATCH_EVENT:
        return int(data["base_offset"]), data["values"]
    return event.version - 1, [data.get("value")]


class TotePoolBridge:
    """Makes ``tote_win_bets`` records into pool contributions on the tote and keeps the
    odds topic up to date: the two consumers, started and stopped together."""

    def __init__(
        self,
        store: EventStore,
        writer: RaceWriter,
        topics: EventStoreTopics,
        registry: EventRegistry | None = None,
        *,
        checkpoint_seconds: float = 1.0,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        self._topics = topics
        self.records = RecordsToContributions(
            store, writer, registry=registry, answer_timeout=answer_timeout
        )
        self.odds = OddsTopicWriter(store, topics)
        self.runners = (
            ConsumerRunner(
                store, self.records, StoreCheckpoint(every=checkpoint_seconds), batch_size=256
            ),
            ConsumerRunner(store, self.odds, MemoryCheckpoint(), batch_size=256),
        )

    @property
    def refusals(self) -> deque[tuple[int, str]]:
        """The latest records the tote refused, ``(offset, reason)``, oldest first."""
        return self.records.refusals

    async def wait_caught_up(self, timeout: float) -> bool:
        """Whether both consumers reached the head of the log within ``timeout``."""
        results = [await runner.wait_caught_up(timeout) for runner in self.runners]
        return all(results)

    async def start(self) -> None:
        await self._topics.declare(BETS_TOPIC)
        await self._topics.declare(ODDS_TOPIC)
        self._topics.reserve(ODDS_TOPIC, "the POC bridge's odds rows, derived from tote_win_bets")
        self._topics.add_batch_hook(BETS_TOPIC, self.records.on_bets)
        await self.odds.prepare()
        for runner in self.runners:
            await runner.start()

    async def stop(self) -> None:
        self._topics.remove_batch_hook(BETS_TOPIC, self.records.on_bets)
        for runner in self.runners:
            await runner.stop()


class RecordsToContributions(Consumer):
    """``tote_win_bets`` records in, contributions to the tote's pools out."""

    name = CHECKPOINT
    subscription = Subscription(
        stream_prefix=topic_stream(BETS_TOPIC), types=frozenset(RECORD_TYPES)
    )

    def __init__(
        self,
        store: EventStore,
        writer: RaceWriter,
        *,
        registry: EventRegistry | None = None,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        self._store = store
        self._writer = writer
        self._registry = registry or default_registry
        self._answer_timeout = answer_timeout
        self._stream = topic_stream(BETS_TOPIC)
        self._known_races: set[str] = set()
        #: every record below this offset went through the bridge (in this process)
        self._watermark = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        #: the latest records the tote refused, ``(offset, reason)``, oldest first
        self.refusals: deque[tuple[int, str]] = deque(maxlen=_KEEP_REFUSALS)
        #: batches whose producers are waiting, by base offset (their values in memory)
        self._fresh: dict[int, StoredBatch] = {}

    async def on_bets(self, batch: StoredBatch) -> list[RecordError | None] | None:
        """The produce hook: wait until the bridge made the batch into contributions (at
        most the answer timeout), so that the answer comes after the boards and the odds
        topic have them. Never an error: every record of the batch is stored, whatever
        the tote makes of it (refusals are logged and kept in :attr:`refusals`)."""
        end = batch.end_offset
        if self._watermark < end:
            self._fresh[batch.base_offset] = batch
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiter = (end, done)
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(self._answer_timeout):  # not wait_for (3.11)
                    await done
            except TimeoutError:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                log.warning(
                    "tote_win_bets records %d..%d are stored but not on the tote yet "
                    "(they will be, at the latest when the bridge next starts)",
                    batch.base_offset,
                    end - 1,
                )
            finally:
                self._fresh.pop(batch.base_offset, None)
        return None

    async def handle(self, batch: Batch) -> None:
        """Make the batch's records into contributions; a failure raises, and the runner
        gives the batch again (each command's request id makes a repeat a no-op)."""
        events = [e for e in batch.events if e.stream_id == self._stream]
        if not events:
            return
        await self._place(events)
        base, values = _values(events[-1], self._fresh)
        self._watermark = max(self._watermark, base + len(values))
        watermark = self._watermark
        waiting = []
        for end, done in self._waiters:
            if end <= watermark:
                if not done.done():
                    done.set_result(None)
            else:
                waiting.append((end, done))
        self._waiters = waiting

    async def _place(self, events: Sequence[RecordedEvent]) -> None:
        """Make the contributions of ``events`` (in order); refusals are logged."""
        errors: dict[int, RecordError] = {}
        commands: list[AddContributions] = []
        for event in events:
            base, values = _values(event, self._fresh)
            commands += contribution_commands(BETS_TOPIC, base, values, errors)
        unusable: set[str] = set()
        for race_id in dict.fromkeys(c.race_id for c in commands):
            try:
                await self._ensure_race(race_id)
            except InvalidEvent as exc:  # a race id no stream can be named after
                unusable.add(race_id)
                verdict = RecordError(2, f"not a bet: RACE_ID {race_id!r} cannot be used: {exc}")
                for command in commands:
                    if command.race_id == race_id:
                        for offset in command.refs:
                            errors[offset] = verdict
        if unusable:
            commands = [c for c in commands if c.race_id not in unusable]
        attempt = 0
        while commands:
            outcomes = await self._writer.execute_many(
                [(c, f"{c.source}:{c.refs[0]}") for c in commands]
            )
            failed: list[tuple[AddContributions, BaseException]] = []
            for command, outcome in zip(commands, outcomes, strict=True):
                if isinstance(outcome, CommandOutcome):
                    for placed in outcome.events:
                        if isinstance(placed, ContributionsAdded):
                            for offset, code, message in placed.rejected:
                                errors[offset] = RecordError(2, f"{code}: {message}")
                elif isinstance(outcome, ToteRejection | InvalidEvent):  # decided: no retry
                    reason = (
                        f"{outcome.code}: {outcome.message}"
                        if isinstance(outcome, ToteRejection)
                        else f"not a bet: {outcome}"
                    )
                    verdict = RecordError(2, reason)
                    for offset in command.refs:
                        errors[offset] = verdict
                else:
                    failed.append((command, outcome))
            commands = [c for c, _ in failed]
            if not failed:
                break
            attempt += 1
            if attempt >= _RETRIES or self._store.closed:
                # the runner gives the batch again later: nothing is skipped
                raise failed[0][1]
            log.warning("contributions not stored, retrying: %s", failed[0][1])
            await asyncio.sleep(0.05 * 2**attempt)
        if errors:
            first = min(errors)
            log.warning(
                "%d tote_win_bets record(s) stored but not made into contributions; "
                "the first, at offset %d: %s",
                len(errors),
                first,
                errors[first].error,
            )
            self.refusals.extend((offset, errors[offset].error) for offset in sorted(errors))

    async def _ensure_race(self, race_id: str) -> None:
        if race_id in self._known_races:
            return
        state = await self._writer.state(race_id)
        if state.status.value == "unscheduled":
            with contextlib.suppress(ToteRejection):  # another process may have raced us
                await self._writer.execute(
                    ScheduleRace(
                        race_id=race_id,
                        meeting="Kafka POC",
                        venue="tote_win_bets",
                        post_time="",
                        runners=tuple(Runner(n, f"Runner {n}") for n in range(1, MAX_RUNNERS + 1)),
                        pools=(
                            PoolConfig(
                                pool=PoolType.WIN,
                                takeout_bps=0,
                                profile="us",
                                min_stake_cents=1,
                                increment_cents=1,
                            ),
                        ),
                        contributions_from=BETS_TOPIC,
                    ),
                    request_id=f"poc-schedule:{race_id}",
                )
                await self._writer.execute(OpenBetting(race_id), request_id=f"poc-open:{race_id}")
        self._known_races.add(race_id)


class OddsTopicWriter(Consumer):
    """Follows the topic's contributions in log order and appends their odds rows.

    Every append carries :data:`ODDS_MARK` in its events' metadata: the number of rows
    of the computed sequence the topic holds from then on. At start that count comes
    from the last marked event, so rows written by anyone else (records from before the
    topic was reserved, or written to the store directly) never count as the writer's
    own. A topic with no marked event at all was written before marks existed: its rows
    are matched by content (:func:`_legacy_rows`).
    """

    name = "kafka-odds-topic"
    subscription = Subscription(
        stream_prefix=RACE_STREAM_PREFIX,
        types=frozenset({_CONTRIBUTIONS_TYPE, OLD_BETS, OLD_BET}),
    )

    def __init__(self, store: EventStore, topics: EventStoreTopics) -> None:
        self._store = store
        self._topics = topics
        self._progress: _OddsProgress | None = None

    async def prepare(self) -> None:
        """Read how far the topic is (before following: the head now separates the
        rows a legacy topic holds from rows still to write)."""
        written, legacy = await self._odds_progress()
        head = await self._store.head_position() if legacy is not None else 0
        self._progress = _OddsProgress(OddsTopicStream(), written, legacy, head)

    async def reset(self) -> None:
        self._progress = None  # recomputed from the log by the next batch

    async def handle(self, batch: Batch) -> None:
        if self._progress is None:
            await self.prepare()
        progress = self._progress
        assert progress is not None
        stream = progress.stream
        batches: list[list[ValueBatch]] = []
        for recorded in batch.events:
            # The fields are read from the stored JSON directly: a typed decode per
            # event would cost more than the rows.
            data = recorded.data
            if data.get("source", BETS_TOPIC) != BETS_TOPIC:
                continue  # another source's contributions: not the POC's rows
            race_id = data["race_id"]
            if recorded.type != OLD_BET:
                rows = stream.apply_many(race_id, data["runners"], data["amounts_cents"])
            else:
                rows = [row_value(stream.apply(race_id, data["runner"], data["amount_cents"]))]
            if progress.legacy is not None and recorded.position > progress.head:
                progress.legacy = None  # bets made after the start: their rows are new
                progress.written = progress.seen
            if progress.legacy is not None:
                fresh = [r for r in rows if not _take(progress.legacy, race_id, r)]
            elif progress.seen + len(rows) > progress.written:
                # rows the topic holds are not written again
                fresh = rows[max(0, progress.written - progress.seen) :]
            else:
                fresh = []
            if fresh:
                key = race_id_value(race_id)
                batches.append([ValueBatch(fresh, [key] * len(fresh))])
            progress.seen += len(rows)
        if batches:
            try:
                await self._topics.append_value_batches(
                    ODDS_TOPIC, batches, metadata={ODDS_MARK: progress.seen}
                )
            except Exception as exc:
                # the sums moved past rows that were not written: recompute them from the
                # log (the runner starts this consumer over; the marks skip what is there)
                raise StartOver(f"odds rows not written: {exc}") from exc
            progress.written = progress.seen

    async def _odds_progress(self) -> tuple[int, Counter[tuple[Any, ...]] | None]:
        """``(rows written, None)`` from the odds topic's last marked event (0 for an
        empty topic), or ``(0, rows)`` for a topic written before marks existed: the
        rows it holds, by content, for :func:`_take`."""
        odds = topic_stream(ODDS_TOPIC)
        unmarked: list[RecordedEvent] = []
        before: int | None = None
        while True:
            page = await self._store.read_stream(
                odds, from_version=before, backwards=True, limit=64
            )
            for event in page:
                mark = event.metadata.get(ODDS_MARK)
                if type(mark) is int and mark >= 0:
                    return mark, None
                unmarked.append(event)
            if len(page) < 64 or page[-1].version <= 1:
                break
            before = page[-1].version - 1
        if not unmarked:
            return 0, None
        return 0, _legacy_rows(event for event in reversed(unmarked))


@dataclass(slots=True)
class _OddsProgress:
    """The odds writer's sums and how many rows of their sequence the topic holds."""

    stream: OddsTopicStream
    written: int
    legacy: Counter[tuple[Any, ...]] | None
    head: int
    seen: int = 0


#: The odds writer's marker in the metadata of the events it appends: how many rows of
#: the computed sequence the topic holds once that append is stored.
ODDS_MARK = "poc_odds_rows"


def _row_key(key: Any, value: Any) -> tuple[Any, ...] | None:
    """An odds row as a hashable value (``None``: not a row the materializer writes).
    Race ids compare as text: rows written before they were numbers hold ``"0"``."""
    if type(value) is not dict:
        return None
    items = sorted(
        (name, str(v) if name == "race_id" and type(v) is int else v) for name, v in value.items()
    )
    if any(type(v) not in (str, int, float, type(None)) for _, v in items):
        return None
    return (str(key) if type(key) is int else key, *items)


def _legacy_rows(events: Iterable[RecordedEvent]) -> Counter[tuple[Any, ...]]:
    """The rows of unmarked odds events (written before marks existed, by the
    materializer or anyone else), counted by content."""
    rows: Counter[tuple[Any, ...]] = Counter()
    for event in events:
        for record in records_of(ODDS_TOPIC, event):
            found = _row_key(record.key, record.value)
            if found is not None:
                rows[found] += 1
    return rows


def _take(rows: Counter[tuple[Any, ...]], race_id: str, value: dict[str, Any]) -> bool:
    """Whether the topic already holds this row (then it is taken from ``rows``)."""
    found = _row_key(race_id, value)
    if found is None or rows[found] <= 0:
        return False
    rows[found] -= 1
    return True


__all__ = [
    "ANSWER_TIMEOUT",
    "BETS_TOPIC",
    "CHECKPOINT",
    "ODDS_MARK",
    "ODDS_TOPIC",
    "TotePoolBridge",
]
