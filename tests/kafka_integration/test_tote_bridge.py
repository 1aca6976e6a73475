"""The POC's topics on the tote, batch by batch.

* ``AddContributions`` decides each bet as ``PlaceCompatBet`` would (a property over
  random record sequences: same race states, boards, odds rows and verdicts);
* the bridge answers per-record verdicts in a batch, makes one ``ContributionsAdded`` per
  race per batch, and one odds batch per ``ContributionsAdded``;
* the crash gap: records stored with no bridge running become bets exactly once when a
  bridge starts, also when some of them had been turned into bets already;
* the tote view replays the new event into the right boards.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oddstream.domain.tote.board import odds_board
from oddstream.domain.tote.events import ContributionsAdded, PoolConfig, Runner
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import (
    AddContributions,
    OpenBetting,
    RaceState,
    ScheduleRace,
    ScratchRunner,
    ToteRejection,
    decide,
    evolve,
)
from oddstream.eventstore import EventStore
from oddstream.integrations.kafka.odds_topic import OddsTopicStream, race_id_value, row_value
from oddstream.integrations.kafka.rest_proxy import (
    EventStoreTopics,
    ProducedRecord,
    RecordError,
    records_of,
    topic_stream,
)
from oddstream.integrations.kafka.tote_bridge import CHECKPOINT, TotePoolBridge
from oddstream.integrations.kafka.tote_records import (
    BETS_TOPIC,
    ODDS_TOPIC,
    contribution_commands,
    parse_bet,
)
from oddstream.projections.tote_view import ToteView
from oddstream.runtime.race_writer import RaceWriter, race_stream

WIN = PoolType.WIN


def value(race: Any, runner: Any, amount: Any) -> dict[str, Any]:
    return {"RUNNER_ID": runner, "RACE_ID": race, "AMOUNT": amount}


def compat_race(race_id: str, scratched: tuple[int, ...] = (), source: str = "t") -> RaceState:
    """A race scheduled as the bridge schedules them, taking contributions from ``source``."""
    state = RaceState()
    command = ScheduleRace(
        race_id=race_id,
        meeting="Kafka POC",
        venue="tote_win_bets",
        post_time="",
        runners=tuple(Runner(n, f"Runner {n}") for n in range(1, 41)),
        pools=(PoolConfig(pool=WIN, takeout_bps=0, min_stake_cents=1, increment_cents=1),),
        contributions_from=source,
    )
    for c in (command, OpenBetting(race_id), *(ScratchRunner(race_id, r) for r in scratched)):
        for event in decide(state, c):  # type: ignore[arg-type]
            evolve(state, event)
    return state


# ----------------------------------------------------------------- the pure property
records_strategy = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from([1, 2, "3"]),
            st.integers(0, 42),  # 0, 41 and 42 are not runners
            st.one_of(st.integers(-60, 60), st.sampled_from([0.5, -0.25, 12.34, 0.001])),
        ).map(lambda t: value(*t)),
        st.just({"RUNNER_ID": 1, "AMOUNT": 5}),  # no race: not a bet
        st.just("not an object"),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(records=records_strategy, cuts=st.lists(st.integers(0, 60), max_size=8))
def test_batches_decide_like_single_bets(records: list[Any], cuts: list[int]) -> None:
    """Random POC records through the per-record path (one ``AddContributions`` each) and the
    batched path (random batches, ``AddContributions`` per race per batch): the same race
    states and boards, the same odds rows per race, the same verdict for every record."""

    def fresh() -> dict[str, RaceState]:
        return {r: compat_race(r, scratched=(5,) if r == "2" else ()) for r in ("1", "2", "3")}

    # per record
    single = fresh()
    single_odds = OddsTopicStream()
    single_rows: list[dict[str, Any]] = []
    single_verdicts: dict[int, str | None] = {}
    for offset, record in enumerate(records):
        try:
            race_id, runner, cents = parse_bet(record)
        except ValueError as exc:
            single_verdicts[offset] = f"not a bet: {exc}"
            continue
        state = single[race_id]
        try:
            events = decide(
                state,
                AddContributions(
                    race_id=race_id,
                    source="t",
                    refs=(offset,),
                    runners=(runner,),
                    amounts_cents=(cents,),
                ),
            )
        except ToteRejection as exc:
            single_verdicts[offset] = f"{exc.code}: {exc.message}"
            continue
        if events[0].rejected:  # type: ignore[union-attr]
            ((_, code, message),) = events[0].rejected  # type: ignore[union-attr]
            single_verdicts[offset] = f"{code}: {message}"
            continue
        single_verdicts[offset] = None
        for event in events:
            evolve(state, event)
        single_rows.append(row_value(single_odds.apply(race_id, runner, cents)))

    # batched
    batched = fresh()
    batched_odds = OddsTopicStream()
    batched_rows: list[dict[str, Any]] = []
    batched_verdicts: dict[int, str | None] = dict.fromkeys(range(len(records)))
    bounds = sorted({0, len(records), *(c for c in cuts if c < len(records))})
    compat_events = 0
    for start, end in itertools.pairwise(bounds):
        errors: dict[int, RecordError] = {}
        for command in contribution_commands("t", start, records[start:end], errors):
            state = batched[command.race_id]
            (event,) = decide(state, command)
            assert isinstance(event, ContributionsAdded)
            evolve(state, event)
            compat_events += 1
            for offset, code, message in event.rejected:
                batched_verdicts[offset] = f"{code}: {message}"
            batched_rows += batched_odds.apply_many(
                event.race_id, event.runners, event.amounts_cents
            )
        for offset, error in errors.items():
            batched_verdicts[offset] = error.error

    assert batched_verdicts == single_verdicts
    for race_id in single:
        a, b = single[race_id], batched[race_id]
        assert a.pools[WIN].stakes == b.pools[WIN].stakes
        assert a.pools[WIN].gross == b.pools[WIN].gross
        assert odds_board(a) == odds_board(b)
        # per race the odds rows are the same, in bet order (a batch groups its rows by
        # race, so only the interleaving of different races can differ)
        shown = race_id_value(race_id)
        assert [r for r in single_rows if r["race_id"] == shown] == [
            r for r in batched_rows if r["race_id"] == shown
        ]
    assert len(single_rows) == len(batched_rows)


def test_a_batch_refuses_bets_one_by_one_and_whole_batches_at_once() -> None:
    state = compat_race("r", scratched=(7,))
    command = AddContributions(
        race_id="r",
        source="t",
        refs=(10, 11, 12, 13, 14, 15, 16),
        runners=(1, 41, 7, 1, 2, 1, 1),
        amounts_cents=(500, 100, 100, -400, -1, -101, 0),
    )
    (event,) = decide(state, command)
    assert isinstance(event, ContributionsAdded)
    # zero is accepted (the POC's close-off records): recorded, changing nothing
    assert (event.refs, event.runners, event.amounts_cents) == (
        (10, 13, 16),
        (1, 1, 1),
        (500, -400, 0),
    )
    assert [(o, code) for o, code, _ in event.rejected] == [
        (11, "unknown_runner"),
        (12, "scratched_runner"),
        (14, "bad_amount"),
        (15, "bad_amount"),
    ]
    assert "which holds 100" in event.rejected[3][2]  # it saw the batch's own bets
    evolve(state, event)
    assert state.pools[WIN].stakes[(1,)] == 100
    assert state.pools[WIN].gross == 100

    plain = RaceState()
    for e in decide(plain, ScheduleRace(**{**_schedule_fields("p"), "contributions_from": None})):
        evolve(plain, e)
    for bad in (plain, RaceState(race_id="x")):
        with pytest.raises(ToteRejection) as refused:
            decide(bad, command)
        assert refused.value.code == "no_contributions"
    closed = compat_race("c")
    closed.status = closed.status.CLOSED
    with pytest.raises(ToteRejection) as refused:
        decide(closed, command)
    assert refused.value.code == "betting_closed"
    ragged = AddContributions(race_id="r", source="t", refs=(1,), runners=(), amounts_cents=())
    with pytest.raises(ToteRejection) as refused:
        decide(state, ragged)
    assert refused.value.code == "bad_batch"


def _schedule_fields(race_id: str) -> dict[str, Any]:
    return {
        "race_id": race_id,
        "meeting": "m",
        "venue": "v",
        "post_time": "",
        "runners": tuple(Runner(n, f"R{n}") for n in range(1, 5)),
        "pools": (PoolConfig(pool=WIN, takeout_bps=1500),),
    }


# ----------------------------------------------------------------- the bridge
class Bridge:
    """A bridge, its writer and topics on one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def __aenter__(self) -> Bridge:
        self.topics = await EventStoreTopics.open(self.store)
        self.writer = RaceWriter(self.store)
        self.bridge = TotePoolBridge(self.store, self.writer, self.topics, checkpoint_seconds=0)
        await self.bridge.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.bridge.stop()

    async def odds_rows(self, count: int) -> list[dict[str, Any]]:
        for _ in range(400):
            if await self.topics.end_offset(ODDS_TOPIC) >= count:
                break
            await asyncio.sleep(0.01)
        return [r.value for r in await self.topics.read(ODDS_TOPIC)]


def _canon(row: dict[str, Any]) -> str:
    return repr(sorted(row.items()))  # PostgreSQL's jsonb orders keys its own way


def produced(values: list[Any]) -> list[ProducedRecord]:
    return [ProducedRecord(v, format="avro", value_schema_id=1) for v in values]


async def test_per_record_verdicts_in_one_batch(fast_store: EventStore) -> None:
    async with Bridge(fast_store) as b:
        await b.writer.execute(ScheduleRace(**_schedule_fields("plain")))
        await b.writer.execute(OpenBetting("plain"))
        offsets = await b.topics.produce(
            BETS_TOPIC,
            produced(
                [
                    value(1, 1, 25.0),  # fine
                    value(None, 1, 5.0),  # not a bet
                    value(1, 41, 5.0),  # unknown runner
                    value(1, 2, -1.0),  # withdraws more than runner 2 holds
                    value(1, 1, -5.0),  # fine: runner 1 holds 25 from this batch
                    value("plain", 1, 5.0),  # not a compatibility race
                    value(2, 3, 1.5),  # fine, another race
                ]
            ),
        )
        assert [o.offset for o in offsets] == list(range(7))
        # every record is stored, so none is reported as not produced; the tote's
        # refusals are logged and kept by the bridge, with their reasons
        assert [o.error_code for o in offsets] == [None] * 7
        verdicts = [(offset, reason.split(":")[0]) for offset, reason in b.bridge.refusals]
        assert verdicts == [
            (1, "not a bet"),
            (2, "unknown_runner"),
            (3, "bad_amount"),
            (5, "no_contributions"),
        ]
        assert (await b.writer.state("1")).pools[WIN].stakes == {(1,): 2000}
        assert (await b.writer.state("2")).pools[WIN].stakes == {(3,): 150}
        # one event per race per batch
        race1 = await fast_store.read_stream(race_stream("1"))
        assert [e.type for e in race1][-1] == "tote.ContributionsAdded"
        assert sum(e.type == "tote.ContributionsAdded" for e in race1) == 1
        rows = await b.odds_rows(3)
        # RACE_ID is an Avro int: the rows give it as the same int, as ksqlDB did
        assert [(r["race_id"], r["runner_id"], r["runner_pool_amount"]) for r in rows] == [
            (1, 1, 25.0),
            (1, 1, 20.0),
            (2, 3, 1.5),
        ]
        # one odds batch per ContributionsAdded
        odds_events = await fast_store.read_stream(topic_stream(ODDS_TOPIC))
        assert [len(e.data["values"]) for e in odds_events] == [2, 1]
        # race ids no race can have are refused record by record; the bridge goes on
        odd = await b.topics.produce(
            BETS_TOPIC,
            produced([value("x" * 250, 1, 1.0), value("a\x01", 1, 1.0), value(1, 2, 1.0)]),
        )
        assert [(o.offset, o.error_code) for o in odd] == [(7, None), (8, None), (9, None)]
        assert [offset for offset, _ in b.bridge.refusals][-2:] == [7, 8]
        assert "cannot be used" in b.bridge.refusals[-2][1]
        assert (await b.writer.state("1")).pools[WIN].stakes == {(1,): 2000, (2,): 100}


async def test_the_crash_gap_is_closed_by_the_checkpointed_bridge(store: EventStore) -> None:
    """Records stored while no bridge ran (a crash between the append and the bets)
    become bets when a bridge starts; a restart from an older checkpoint (some batches
    done, their answers in the log) makes no bet twice."""
    topics = await EventStoreTopics.open(store)
    stream = OddsTopicStream()
    expected_rows = []
    batches = [
        [value(7, 1, 10.0), value(8, 2, 4.0), value(7, 2, 6.0)],
        [value(7, 1, -3.0), value(7, 3, 1.0)],
        [value(8, 2, 2.5)],
    ]
    for batch in batches:  # stored with no hook and no bridge: the crash gap
        await topics.append(BETS_TOPIC, produced(batch))
        for race_id, runner, cents in map(parse_bet, batch):
            expected_rows.append(row_value(stream.apply(race_id, runner, cents)))
    expected_7 = {(1,): 700, (2,): 600, (3,): 100}
    expected_8 = {(2,): 650}

    async def check(b: Bridge) -> None:
        assert await b.bridge.wait_caught_up(10)
        assert (await b.writer.state("7")).pools[WIN].stakes == expected_7
        assert (await b.writer.state("8")).pools[WIN].stakes == expected_8
        for race_id, batches_with_race in (("7", 2), ("8", 2)):
            events = await store.read_stream(race_stream(race_id))
            assert sum(e.type == "tote.ContributionsAdded" for e in events) == batches_with_race
        rows = await b.odds_rows(len(expected_rows))
        assert sorted(map(_canon, rows)) == sorted(map(_canon, expected_rows))
        assert len(rows) == len(expected_rows)

    async with Bridge(store) as b:
        await check(b)
    assert await store.get_checkpoint(CHECKPOINT) > 0
    # a crash after the bets but before the checkpoint moved: everything is redone
    await store.save_checkpoint(CHECKPOINT, 0)
    async with Bridge(store) as b:
        await check(b)
        # and new records still flow
        offsets = await b.topics.produce(BETS_TOPIC, produced([value(8, 2, 1.0)]))
        assert (offsets[0].offset, offsets[0].error_code) == (6, None)
        assert (await b.writer.state("8")).pools[WIN].stakes == {(2,): 750}


async def test_the_tote_view_replays_batched_compat_bets(fast_store: EventStore) -> None:
    async with Bridge(fast_store) as b:
        for k in range(3):
            await b.topics.produce(
                BETS_TOPIC,
                produced([value(k % 2, 1 + (i * 7 + k) % 12, 1 + i % 5) for i in range(50)]),
            )
        live = {r: await b.writer.state(r) for r in ("0", "1")}
    view = ToteView(fast_store)
    await view.rebuild()
    for race_id, state in live.items():
        replayed = view.race(race_id)
        assert replayed is not None
        assert replayed.contributions_from == BETS_TOPIC
        assert replayed.pools[WIN].stakes == state.pools[WIN].stakes
        board = view.board(race_id)
        assert board is not None
        assert board.board == odds_board(state)
    stakes = 3 * sum(1 + i % 5 for i in range(50)) * 100
    assert sum(r.pools[WIN].gross for r in view.races()) == stakes


async def test_a_late_bet_is_answered_as_stored_and_made_at_the_next_start(
    fast_store: EventStore,
) -> None:
    topics = await EventStoreTopics.open(fast_store)
    bridge = TotePoolBridge(fast_store, RaceWriter(fast_store), topics, answer_timeout=0.2)
    await bridge.start()
    task = bridge.runners[0]._task  # the bets step is down (stuck, or the process about to die)
    assert task is not None
    task.cancel()
    offsets = await topics.produce(BETS_TOPIC, produced([value(5, 1, 2.0)]))
    # stored, so produced: the producer must not send it again (that would bet twice)
    assert offsets[0].error_code is None
    await bridge.stop()
    async with Bridge(fast_store) as b:
        assert await b.bridge.wait_caught_up(10)
        assert (await b.writer.state("5")).pools[WIN].stakes == {(1,): 200}


# ----------------------------------------------------------------- the odds topic is the bridge's
FAKE = {"RACE_ID": 1, "RUNNER_ID": 1, "ODDS": -5.0, "FAKE": True}


async def _odds_through(store: EventStore, last: dict[str, Any]) -> list[dict[str, Any]]:
    """The odds topic's values once ``last`` is in it (rows go in log order, so every row
    before it has been written by then)."""
    values: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        async for event in store.subscribe_stream(topic_stream(ODDS_TOPIC)):
            values += [r.value for r in records_of(ODDS_TOPIC, event)]
            if last in values:
                return values
    raise AssertionError("the store closed")


def _real(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in values if v != FAKE]


async def _bet(topics: EventStoreTopics, stream: OddsTopicStream, runner: int) -> dict[str, Any]:
    """A bet on race 1 through the topic; the odds row it must make."""
    (offset,) = await topics.produce(BETS_TOPIC, produced([value(1, runner, 5.0)]))
    assert offset.error_code is None
    return row_value(stream.apply("1", runner, 500))


async def test_foreign_records_in_the_odds_topic_never_stand_for_its_rows(
    store: EventStore,
) -> None:
    """Records in the odds topic that the materializer did not write (from a log of
    before the topic was reserved, or put in the store directly) are not its progress:
    every real row is written once, also after a restart with more of them."""
    topics = await EventStoreTopics.open(store)
    await topics.append(ODDS_TOPIC, [ProducedRecord(FAKE)] * 3)
    stream = OddsTopicStream()
    async with Bridge(store) as b:
        expected = [await _bet(b.topics, stream, runner) for runner in (1, 2, 3, 4)]
        values = await _odds_through(store, expected[-1])
        assert _real(values) == expected
        assert len(values) == 3 + 4
    await topics.append(ODDS_TOPIC, [ProducedRecord(FAKE)] * 3)
    async with Bridge(store) as b:
        expected += [await _bet(b.topics, stream, runner) for runner in (1, 2, 3, 4)]
        values = await _odds_through(store, expected[-1])
        assert _real(values) == expected
        assert len(values) == 6 + 8


async def test_an_odds_topic_from_before_the_marks_gets_the_rows_it_lacks(
    store: EventStore,
) -> None:
    """The topic as the old materializer left it (it took the end offset for its own
    count): 3 foreign records, the row of bet 1, nothing for bets 2–4. The next start
    writes rows 2–4, and no row twice."""
    topics = await EventStoreTopics.open(store)
    bridge = TotePoolBridge(store, RaceWriter(store), topics)
    await bridge.start()
    await bridge.runners[1].stop()  # the bets, but no odds rows (written below, the old way)
    stream = OddsTopicStream()
    expected = [await _bet(topics, stream, runner) for runner in (1, 2, 3, 4)]
    await bridge.stop()
    await topics.append(ODDS_TOPIC, [ProducedRecord(FAKE)] * 3)
    await topics.append(ODDS_TOPIC, [ProducedRecord(expected[0], "1")])
    async with Bridge(store) as b:
        expected.append(await _bet(b.topics, stream, 5))
        values = await _odds_through(store, expected[-1])
        assert _real(values) == expected
        assert len(values) == 3 + 5
        # from then on the topic's rows are marked: a restart writes only new rows
    async with Bridge(store) as b:
        expected.append(await _bet(b.topics, stream, 6))
        values = await _odds_through(store, expected[-1])
        assert _real(values) == expected


async def test_an_odds_append_that_fails_once_leaves_the_rows_right(fast_store: EventStore) -> None:
    """The odds writer's append fails once (a store blip): the runner gives the batch
    again, and the rows written from then on are still the sums over the whole log,
    each row once (the writer dropped its sums on the failure, and the batch given
    again is only the failed one, not the log before it)."""
    stream = OddsTopicStream()
    async with Bridge(fast_store) as b:
        b.bridge.runners[1].max_backoff = 0.05
        expected = [await _bet(b.topics, stream, runner) for runner in (1, 2)]
        await _odds_through(fast_store, expected[-1])
        real = b.topics.append_value_batches
        failures = [ConnectionError("blip")]

        async def flaky(topic: str, *args: Any, **kwargs: Any) -> Any:
            if failures and topic == ODDS_TOPIC:
                raise failures.pop()
            return await real(topic, *args, **kwargs)

        b.topics.append_value_batches = flaky  # type: ignore[method-assign]
        expected += [await _bet(b.topics, stream, runner) for runner in (3, 1, 2)]
        values = await _odds_through(fast_store, expected[-1])
        assert values == expected
