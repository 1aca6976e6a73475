"""The Kafka POC's topics on the tote.

* Records produced to ``tote_win_bets`` (Avro ``RUNNER_ID``, ``RACE_ID``, ``AMOUNT``,
  field names in any case) become bets through the compatibility path: a race id not yet
  scheduled is created on the fly as a compatibility race (a win pool with no takeout,
  runners 1–40), as the POC assumed, and a negative amount withdraws stake.
* ``tote_win_bet_race_runners_odds`` is materialized from the log: one row per
  ``CompatBetPlaced`` in log order, exactly the POC's ksqlDB output. The rows are a pure
  function of the log, so after a restart the materializer recomputes the sums, skips
  the rows the topic already holds and appends the rest: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from typing import Any

from ..compat.rest_proxy import EventStoreTopics, ProducedRecord, RecordError, TopicRecord
from ..domain.tote.compat import CompatOddsStream
from ..domain.tote.events import PoolConfig, Runner
from ..domain.tote.pools import PoolType
from ..domain.tote.race import (
    MAX_RUNNERS,
    OpenBetting,
    PlaceCompatBet,
    ScheduleRace,
    ToteRejection,
)
from ..eventstore import EventStore, StoreClosed
from ..eventstore.registry import EventRegistry
from .codec import registry as default_registry
from .race_writer import RACE_STREAM_PREFIX, RaceWriter

log = logging.getLogger(__name__)

BETS_TOPIC = "tote_win_bets"
ODDS_TOPIC = "tote_win_bet_race_runners_odds"
_COMPAT_BET_TYPE = "tote.CompatBetPlaced"


def _field(value: dict[str, Any], name: str) -> Any:
    for key, item in value.items():
        if key.lower() == name:
            return item
    return None


def parse_bet(value: Any) -> tuple[str, int, int]:
    """``(race_id, runner, amount_cents)`` from a POC record, or ValueError saying why."""
    if not isinstance(value, dict):
        raise ValueError("the record's value is not an object")
    race, runner, amount = (_field(value, n) for n in ("race_id", "runner_id", "amount"))
    if isinstance(race, bool) or not isinstance(race, int | str) or race in ("", None):
        raise ValueError("RACE_ID is missing or not an int")
    if isinstance(runner, bool) or not isinstance(runner, int):
        raise ValueError("RUNNER_ID is missing or not an int")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount):
        raise ValueError("AMOUNT is missing or not a number")
    cents = round(amount * 100)
    if cents == 0:
        raise ValueError("AMOUNT is zero (the POC's flush bets are not needed here)")
    return str(race), runner, cents


class PocBridge:
    """Routes ``tote_win_bets`` into compat bets and keeps the odds topic up to date."""

    def __init__(
        self,
        store: EventStore,
        writer: RaceWriter,
        topics: EventStoreTopics,
        registry: EventRegistry | None = None,
    ) -> None:
        self._store = store
        self._writer = writer
        self._topics = topics
        self._registry = registry or default_registry
        self._known_races: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._topics.declare(BETS_TOPIC)
        await self._topics.declare(ODDS_TOPIC)
        self._topics.add_hook(BETS_TOPIC, self.on_bets)
        self._task = asyncio.create_task(self._materialize(), name="poc-odds")

    async def stop(self) -> None:
        self._topics.remove_hook(BETS_TOPIC, self.on_bets)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreClosed):
                await self._task

    # ------------------------------------------------------------------ bets in
    async def on_bets(self, topic: str, records: Sequence[TopicRecord]) -> list[RecordError | None]:
        """The produce hook: one compat bet per record (idempotent by topic offset)."""
        parsed: list[tuple[str, int, int] | ValueError] = []
        for record in records:
            try:
                parsed.append(parse_bet(record.value))
            except ValueError as exc:
                parsed.append(exc)
        for race_id in {p[0] for p in parsed if not isinstance(p, ValueError)}:
            await self._ensure_race(race_id)
        outcomes = await self._writer.execute_many(
            [
                (
                    PlaceCompatBet(
                        race_id=p[0],
                        bet_id=f"{topic}-{record.offset}",
                        runner=p[1],
                        amount_cents=p[2],
                    ),
                    f"{topic}:{record.offset}",
                )
                for record, p in zip(records, parsed, strict=True)
                if not isinstance(p, ValueError)
            ]
        )
        results = iter(outcomes)
        verdicts: list[RecordError | None] = []
        for p in parsed:
            if isinstance(p, ValueError):
                verdicts.append(RecordError(2, f"not a bet: {p}"))
                continue
            outcome = next(results)
            if isinstance(outcome, ToteRejection):
                verdicts.append(RecordError(2, f"{outcome.code}: {outcome.message}"))
            elif isinstance(outcome, BaseException):
                verdicts.append(RecordError(1, f"not stored as a bet: {outcome}"))
            else:
                verdicts.append(None)
        return verdicts

    async def _ensure_race(self, race_id: str) -> None:
        if race_id in self._known_races:
            return
        state = await self._writer.state(race_id)
        if state.status.value == "unscheduled":
            with contextlib.suppress(ToteRejection):  # another batch may have raced us
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
                        compat=True,
                    ),
                    request_id=f"poc-schedule:{race_id}",
                )
                await self._writer.execute(OpenBetting(race_id), request_id=f"poc-open:{race_id}")
        self._known_races.add(race_id)

    # ------------------------------------------------------------------ odds out
    async def _materialize(self) -> None:
        stream = CompatOddsStream()
        written = await self._topics.end_offset(ODDS_TOPIC)
        seen = 0
        queue: asyncio.Queue[tuple[str, int, int]] = asyncio.Queue()

        async def follow() -> None:
            # The fields are read from the stored JSON directly: this runs for every
            # POC bet, and a typed decode per event cost more than the row itself.
            async for recorded in self._store.subscribe_all(
                stream_prefix=RACE_STREAM_PREFIX, types=[_COMPAT_BET_TYPE]
            ):
                data = recorded.data
                queue.put_nowait((data["race_id"], data["runner"], data["amount_cents"]))

        follower = asyncio.create_task(follow())
        try:
            while True:
                bets = [await queue.get()]
                while not queue.empty() and len(bets) < 5000:
                    bets.append(queue.get_nowait())
                rows: list[ProducedRecord] = []
                for race_id, runner, amount in bets:
                    row = stream.apply(race_id, runner, amount)
                    seen += 1
                    if seen > written:  # rows the topic already holds are not written again
                        rows.append(
                            ProducedRecord(
                                value={
                                    "race_id": row.race_id,
                                    "runner_id": row.runner_id,
                                    "runner_pool_amount": row.runner_pool_amount,
                                    "race_pool_amount": row.race_pool_amount,
                                    "odds": row.odds,
                                },
                                key=row.race_id,
                            )
                        )
                if rows:
                    await self._topics.append(ODDS_TOPIC, rows)
                    written += len(rows)
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, StoreClosed):
                await follower
