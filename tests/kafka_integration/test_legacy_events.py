"""A log written before the Kafka integration became optional still reads.

The events below are stored exactly as that code wrote them (``tote.RaceScheduled`` v1
with ``compat: true``, ``tote.CompatBetPlaced`` per record, ``tote.CompatBetsPlaced``
per batch). Replayed with today's code they give the same race, board and odds rows,
and the materializer finds them on restart.
"""

from __future__ import annotations

import asyncio

from oddstream.domain.tote.board import odds_board
from oddstream.domain.tote.events import ContributionsAdded, RaceScheduled
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import RaceState, evolve
from oddstream.eventstore import EventStore, NewEvent
from oddstream.integrations.kafka.rest_proxy import EventStoreTopics
from oddstream.integrations.kafka.tote_bridge import TotePoolBridge
from oddstream.integrations.kafka.tote_records import BETS_TOPIC, ODDS_TOPIC
from oddstream.projections.tote_view import ToteView
from oddstream.runtime.codec import registry
from oddstream.runtime.race_writer import RaceWriter, race_stream

WIN = PoolType.WIN

#: (runner, amount in cents): the POC's seven bets; the first two as old single events
BETS = [(1, 2_500), (1, 5_000), (1, 5_000), (2, 500), (2, 1_000), (2, 2_000), (2, -2_000)]


def old_log(race_id: str) -> list[NewEvent]:
    """The events the code before this change wrote for the POC's seven bets."""
    scheduled = {
        "race_id": race_id,
        "meeting": "Kafka POC",
        "venue": "tote_win_bets",
        "post_time": "",
        "runners": [{"number": n, "name": f"Runner {n}"} for n in range(1, 41)],
        "pools": [
            {
                "pool": "WIN",
                "takeout_bps": 0,
                "profile": "us",
                "min_stake_cents": 1,
                "increment_cents": 1,
                "no_winner": None,
            }
        ],
        "compat": True,
    }
    singles = [
        NewEvent(
            "tote.CompatBetPlaced",
            {"race_id": race_id, "bet_id": f"tote_win_bets-{i}", "runner": r, "amount_cents": a},
        )
        for i, (r, a) in enumerate(BETS[:2])
    ]
    batch = NewEvent(
        "tote.CompatBetsPlaced",
        {
            "race_id": race_id,
            "source": "tote_win_bets",
            "offsets": [2, 3, 4, 5, 6, 7],
            "runners": [r for r, _ in BETS[2:]] + [41],
            "amounts_cents": [a for _, a in BETS[2:]] + [0],
            "rejected": [[7, "unknown_runner", "runner 41 is not in race 0"]],
        },
    )
    # (a batch's lists hold only accepted bets: drop the refused one as the old code did)
    batch.data["runners"] = batch.data["runners"][:-1]
    batch.data["amounts_cents"] = batch.data["amounts_cents"][:-1]
    batch.data["offsets"] = batch.data["offsets"][:-1]
    return [
        NewEvent("tote.RaceScheduled", scheduled),
        NewEvent("tote.BettingOpened", {"race_id": race_id}),
        *singles,
        batch,
    ]


def expected_stakes() -> dict[tuple[int, ...], int]:
    stakes: dict[tuple[int, ...], int] = {}
    for runner, amount in BETS:
        stakes[(runner,)] = stakes.get((runner,), 0) + amount
    return stakes


async def test_an_old_log_replays_with_the_new_code(fast_store: EventStore) -> None:
    await fast_store.append(race_stream("0"), old_log("0"))
    recorded = await fast_store.read_stream(race_stream("0"))
    typed = [registry.decode(e) for e in recorded]
    assert isinstance(typed[0], RaceScheduled)
    assert typed[0].contributions_from == BETS_TOPIC
    assert [type(e) for e in typed[2:]] == [ContributionsAdded] * 3
    assert typed[2].refs == (0,)
    assert typed[2].source == BETS_TOPIC
    assert typed[4].refs == (2, 3, 4, 5, 6)
    state = RaceState()
    for event in typed:
        evolve(state, event)  # type: ignore[arg-type]
    assert state.contributions_from == BETS_TOPIC
    assert state.pools[WIN].stakes == expected_stakes()
    assert state.pools[WIN].gross == sum(a for _, a in BETS)

    # the writer and the tote read model read it alike
    writer = RaceWriter(fast_store)
    assert (await writer.state("0")).pools[WIN].stakes == expected_stakes()
    view = ToteView(fast_store)
    await view.rebuild()
    replayed = view.race("0")
    assert replayed is not None
    assert replayed.pools[WIN].stakes == expected_stakes()
    board = view.board("0")
    assert board is not None
    assert board.board == odds_board(state)

    # new events are written under the new names, and the bridge's odds rows cover the
    # old events too: one row per bet, as ksqlDB emitted them
    assert registry.to_new_event(typed[4]).type == "tote.ContributionsAdded"
    assert registry.to_new_event(typed[0]).schema_version == 2
    topics = await EventStoreTopics.open(fast_store)
    bridge = TotePoolBridge(fast_store, writer, topics)
    await bridge.start()
    try:
        async with asyncio.timeout(10):
            while await topics.end_offset(ODDS_TOPIC) < len(BETS):  # noqa: ASYNC110 - polls the store
                await asyncio.sleep(0.01)
        rows = [r.value for r in await topics.read(ODDS_TOPIC)]
    finally:
        await bridge.stop()
    runner_pool: dict[int, int] = {}
    race_pool = 0
    expected = []
    for runner, amount in BETS:
        runner_pool[runner] = runner_pool.get(runner, 0) + amount
        race_pool += amount
        expected.append((0, runner, race_pool / runner_pool[runner]))
    assert [(r["race_id"], r["runner_id"], r["odds"]) for r in rows] == expected
