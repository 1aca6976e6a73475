"""Review of the writer's rounds (issue 11).

What goes wrong for one aggregate of a round after the round's ``append_many`` has
stored its batch (a snapshot that cannot be made, a metrics callback that raises) stays
with that aggregate: every other batch of the round is answered as stored, and the one at
fault too (a snapshot only saves time, a metric only counts). A retry is answered with
every event of its command, even when a load from a snapshot cut it. A round cancelled
before it starts does not leave its commands, and the writer, waiting forever.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from oddstream.domain.wallet import Credit, WalletState
from oddstream.eventstore import EventStore
from oddstream.runtime.codec import registry
from oddstream.runtime.wallet_writer import wallet_spec, wallet_stream
from oddstream.runtime.writer import AggregateWriter, CommandOutcome

WALLETS = [f"w{n}" for n in range(4)]


def _outcomes_as_stored(outcomes: list[Any]) -> None:
    for outcome in outcomes:
        assert isinstance(outcome, CommandOutcome), outcome
        assert not outcome.repeated


async def _check_log(store: EventStore, outcomes: list[Any]) -> None:
    for wallet, outcome in zip(WALLETS, outcomes, strict=True):
        stored = await store.read_stream(wallet_stream(wallet))
        # stored once: the wallet's opening and the credit, both under the request id
        assert [e.metadata.get("request_id") for e in stored] == [f"c-{wallet}"] * 2
        assert stored[0].position == outcome.first_position
        assert stored[-1].position == outcome.last_position
        assert stored[-1].version == outcome.stream_version == 2


async def test_a_snapshot_that_cannot_be_made_does_not_fail_the_round(
    store: EventStore,
) -> None:
    def to_snapshot(state: WalletState) -> dict[str, Any]:
        if state.wallet_id == "w1":
            raise RuntimeError("cannot encode this one")
        return WalletState.to_snapshot(state)

    spec = dataclasses.replace(wallet_spec(1), to_snapshot=to_snapshot)
    writer = AggregateWriter(store, spec, registry)
    commands = [(Credit(wallet_id=w, amount_cents=100), f"c-{w}") for w in WALLETS]
    outcomes = await writer.execute_many(commands)  # one round, a snapshot due for each
    _outcomes_as_stored(outcomes)
    await _check_log(store, outcomes)
    # the others got their snapshots (stored after the answers: the round's end is
    # waited for); the state in memory is the stored one
    await asyncio.gather(*writer._rounds)
    for wallet in WALLETS:
        snaps = await store.read_stream(f"snapshot-{wallet_stream(wallet)}")
        assert len(snaps) == (0 if wallet == "w1" else 1)
        assert (await writer.state(wallet)).balance == 100


async def test_a_metrics_callback_that_raises_does_not_fail_the_round(
    store: EventStore,
) -> None:
    calls: list[float] = []

    def on_append(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 2:
            raise RuntimeError("metrics broke")

    writer = AggregateWriter(store, wallet_spec(), registry, on_append=on_append)
    commands = [(Credit(wallet_id=w, amount_cents=100), f"c-{w}") for w in WALLETS]
    outcomes = await writer.execute_many(commands)
    _outcomes_as_stored(outcomes)
    await _check_log(store, outcomes)
    # a retry of each is answered from the stored outcome, nothing written again
    again = await writer.execute_many(commands)
    assert again == [dataclasses.replace(o, repeated=True) for o in outcomes]


async def test_a_retry_of_a_command_cut_by_the_loaded_window_answers_all_its_events(
    store: EventStore,
) -> None:
    """A load from a snapshot reads the request ids of the last ``request_window``
    versions only: a command whose events begin before that window must not be
    answered from the part of it inside (it is looked up in the request index)."""
    spec = dataclasses.replace(wallet_spec(3), request_window=2)
    first = AggregateWriter(store, spec, registry)
    opened = Credit(wallet_id="w0", amount_cents=100)  # opens the wallet: versions 1-2
    original = await first.execute(opened, request_id="a")
    assert original.stream_version == 2
    assert len(original.events) == 2
    await first.execute(Credit(wallet_id="w0", amount_cents=5), request_id="b")  # 3
    await asyncio.gather(*first._rounds)  # the snapshot at version 3 is stored
    assert len(await store.read_stream(f"snapshot-{wallet_stream('w0')}")) == 1
    later = AggregateWriter(store, spec, registry)  # loads from the snapshot: versions 2-3
    again = await later.execute(opened, request_id="a")
    assert again == dataclasses.replace(original, repeated=True)
    assert await later.recall(opened, "a") == dataclasses.replace(original, repeated=True)


async def test_a_round_cancelled_before_it_starts_does_not_stop_the_writer(
    store: EventStore,
) -> None:
    """A round task cancelled before its first step (a shutdown that cancels every
    task) took nothing: its commands are cancelled with it, and the next command
    schedules a round of its own instead of waiting forever behind it."""
    writer = AggregateWriter(store, wallet_spec(), registry)
    commands = [(Credit(wallet_id=w, amount_cents=100), f"c-{w}") for w in WALLETS]
    futures = [writer._enqueue(command, rid) for command, rid in commands]
    (due,) = writer._rounds
    due.cancel()
    done, _ = await asyncio.wait(futures, timeout=5)
    assert len(done) == len(futures)
    assert all(f.cancelled() for f in futures)
    assert await store.read_stream(wallet_stream("w0")) == []
    outcomes = await asyncio.wait_for(writer.execute_many(commands), 5)
    _outcomes_as_stored(outcomes)
    await _check_log(store, outcomes)
