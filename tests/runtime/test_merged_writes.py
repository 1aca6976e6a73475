"""The writer's rounds (issue 11): the batches of many aggregates go to the store as one
``append_many`` call, each stream with its own expected version, and a stream that fails
(a conflict, a refused append, a failed load or lookup) falls back or fails alone, while
every other command is answered exactly as if its batch had been appended on its own.

Every test runs on every adapter (the ``store`` fixture).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from oddstream.domain.wallet import Credit, Debit, WalletRejection
from oddstream.eventstore import (
    AppendResult,
    EventStore,
    EventStoreError,
    StoreUnavailable,
    StreamAppend,
    WrongExpectedVersion,
)
from oddstream.runtime.codec import registry
from oddstream.runtime.wallet_writer import WalletWriter, wallet_spec, wallet_stream
from oddstream.runtime.writer import AggregateWriter, CommandOutcome

WALLETS = [f"w{n}" for n in range(5)]


class Calls:
    """Records the ``append_many`` calls made on ``store`` (the streams of each), and can
    make the store answer a stream's append with an error instead of storing it."""

    def __init__(self, store: EventStore) -> None:
        self.calls: list[list[str]] = []
        self.refuse: dict[str, Any] = {}  # stream -> error factory(expected)
        real = store.append_many

        async def append_many(
            appends: Sequence[StreamAppend],
        ) -> list[AppendResult | EventStoreError]:
            self.calls.append([a.stream_id for a in appends])
            passed = [a for a in appends if a.stream_id not in self.refuse]
            stored = iter(await real(passed) if passed else [])
            return [
                self.refuse[a.stream_id](a.expected) if a.stream_id in self.refuse else next(stored)
                for a in appends
            ]

        store.append_many = append_many  # type: ignore[method-assign]

    def wallet_calls(self) -> list[list[str]]:
        """The calls that appended wallet streams (not snapshots)."""
        return [c for c in self.calls if c[0].startswith("wallet-")]


async def assert_as_stored(
    store: EventStore, outcome: CommandOutcome, wallet: str, request_id: str | None
) -> None:
    """``outcome`` names exactly the events its command stored: at those positions, the
    wallet's versions ending at ``stream_version``, carrying the request id."""
    n = len(outcome.events)
    assert n >= 1
    assert outcome.last_position - outcome.first_position == n - 1
    stored = [
        e
        for e in await store.read_stream(wallet_stream(wallet))
        if outcome.first_position <= e.position <= outcome.last_position
    ]
    assert [e.position for e in stored] == list(
        range(outcome.first_position, outcome.last_position + 1)
    )
    assert stored[-1].version == outcome.stream_version
    assert [registry.decode(e) for e in stored] == list(outcome.events)
    assert all(e.metadata.get("request_id") == request_id for e in stored)


async def opened(store: EventStore, writer: AggregateWriter) -> None:
    """Every wallet of WALLETS opened and funded with 1,000, one after the other."""
    for wallet in WALLETS:
        await writer.execute(Credit(wallet_id=wallet, amount_cents=1_000))


async def test_many_wallets_with_one_command_each_make_one_append_call(
    store: EventStore,
) -> None:
    wallets = WalletWriter(store)
    await opened(store, wallets)
    calls = Calls(store)
    commands = [(Credit(wallet_id=w, amount_cents=10 + n), f"c-{w}") for n, w in enumerate(WALLETS)]
    outcomes = await wallets.execute_many(commands)
    assert calls.wallet_calls() == [[wallet_stream(w) for w in WALLETS]]
    for (command, rid), outcome in zip(commands, outcomes, strict=True):
        assert isinstance(outcome, CommandOutcome)
        assert not outcome.repeated
        await assert_as_stored(store, outcome, command.wallet_id, rid)


async def test_a_conflict_on_one_stream_falls_back_alone(store: EventStore) -> None:
    """Another process wrote w2 since this writer loaded it: w2 alone is reloaded and
    retried; the other four are stored once, by the first call; every answer is the
    stored one, and a retry of each request answers it again without writing."""
    mine = WalletWriter(store)
    await opened(store, mine)
    other = WalletWriter(store)  # another process
    theirs = await other.execute(Credit(wallet_id="w2", amount_cents=5), request_id="theirs")
    calls = Calls(store)
    commands = [(Debit(wallet_id=w, amount_cents=100), f"d-{w}") for w in WALLETS]
    outcomes = await mine.execute_many(commands)
    assert calls.wallet_calls() == [
        [wallet_stream(w) for w in WALLETS],
        [wallet_stream("w2")],  # the fallback, for w2 alone
    ]
    for (command, rid), outcome in zip(commands, outcomes, strict=True):
        assert isinstance(outcome, CommandOutcome)
        assert not outcome.repeated
        await assert_as_stored(store, outcome, command.wallet_id, rid)
    for wallet in WALLETS:  # each debit stored exactly once
        stored = await store.read_stream(wallet_stream(wallet))
        assert [e.metadata.get("request_id") for e in stored].count(f"d-{wallet}") == 1
    w2 = outcomes[2]
    assert isinstance(w2, CommandOutcome)
    assert w2.stream_version == theirs.stream_version + 1  # decided after their credit
    assert (await mine.state("w2")).balance == 1_000 + 5 - 100
    # retries answer what was stored, from memory and from the log alike
    for writer in (mine, WalletWriter(store)):
        again = await writer.execute_many(commands)
        assert again == [dataclasses.replace(o, repeated=True) for o in outcomes]  # type: ignore[arg-type]
    assert [len(c) for c in calls.wallet_calls()] == [5, 1]  # the retries wrote nothing


async def test_a_stream_that_keeps_conflicting_fails_alone(store: EventStore) -> None:
    wallets = WalletWriter(store)
    await opened(store, wallets)
    calls = Calls(store)
    calls.refuse[wallet_stream("w3")] = lambda expected: WrongExpectedVersion(
        wallet_stream("w3"), expected, expected + 1
    )
    commands = [(Credit(wallet_id=w, amount_cents=7), None) for w in WALLETS]
    outcomes = await wallets.execute_many(commands)
    assert calls.wallet_calls() == [[wallet_stream(w) for w in WALLETS], [wallet_stream("w3")]]
    refused = outcomes[3]
    assert isinstance(refused, WalletRejection)
    assert refused.code == "conflict"
    for n, outcome in enumerate(outcomes):
        if n != 3:
            assert isinstance(outcome, CommandOutcome)
            await assert_as_stored(store, outcome, WALLETS[n], None)
    del calls.refuse[wallet_stream("w3")]
    assert (await wallets.state("w3")).balance == 1_000  # reloaded: nothing was stored
    later = await wallets.execute(Credit(wallet_id="w3", amount_cents=7))
    await assert_as_stored(store, later, "w3", None)


async def test_a_refused_append_fails_only_its_commands(store: EventStore) -> None:
    wallets = WalletWriter(store)
    await opened(store, wallets)
    calls = Calls(store)
    lost = StoreUnavailable("lost the connection")
    calls.refuse[wallet_stream("w1")] = lambda expected: lost
    two = [Debit(wallet_id="w1", amount_cents=100), Debit(wallet_id="w1", amount_cents=200)]
    others = [Debit(wallet_id=w, amount_cents=100) for w in WALLETS if w != "w1"]
    outcomes = await wallets.execute_many([(c, None) for c in [*two, *others]])
    assert outcomes[:2] == [lost, lost]
    assert calls.wallet_calls() == [[wallet_stream(w) for w in ["w1", *WALLETS[:1], *WALLETS[2:]]]]
    for command, outcome in zip(others, outcomes[2:], strict=True):
        assert isinstance(outcome, CommandOutcome)
        await assert_as_stored(store, outcome, command.wallet_id, None)
    del calls.refuse[wallet_stream("w1")]
    # the state in memory, which the two debits had changed, was thrown away
    assert (await wallets.state("w1")).balance == 1_000


async def test_a_failed_load_fails_only_its_aggregate(store: EventStore) -> None:
    await opened(store, WalletWriter(store))
    fresh = WalletWriter(store)  # nothing in memory: the round loads all five
    real = store.scan_stream

    def scan(stream_id: str, *args: Any, **kw: Any) -> Any:
        if stream_id == wallet_stream("w4"):
            raise StoreUnavailable("w4 is unreadable")
        return real(stream_id, *args, **kw)

    store.scan_stream = scan  # type: ignore[method-assign]
    try:
        outcomes = await fresh.execute_many(
            [(Credit(wallet_id=w, amount_cents=1), None) for w in WALLETS]
        )
    finally:
        store.scan_stream = real  # type: ignore[method-assign]
    assert isinstance(outcomes[4], StoreUnavailable)
    for wallet, outcome in zip(WALLETS[:4], outcomes[:4], strict=True):
        assert isinstance(outcome, CommandOutcome)
        await assert_as_stored(store, outcome, wallet, None)


def _forgetful(store: EventStore) -> AggregateWriter:
    """Wallets that keep few answers in memory: older ids are looked up in the log."""
    return AggregateWriter(
        store, dataclasses.replace(wallet_spec(snapshot_every=4), request_window=2), registry
    )


async def test_old_request_ids_of_a_round_are_looked_up_in_one_call(store: EventStore) -> None:
    writer = _forgetful(store)
    firsts = {}
    for wallet in WALLETS:
        firsts[wallet] = await writer.execute(
            Credit(wallet_id=wallet, amount_cents=50), request_id=f"first-{wallet}"
        )
        for n in range(12):
            await writer.execute(Credit(wallet_id=wallet, amount_cents=1), request_id=f"{n}")
    restarted = _forgetful(store)
    for wallet in WALLETS:  # loaded from their snapshots: their first ids are not in memory
        await restarted.state(wallet)
    real = store.read_requests_many
    asked: list[dict[str, list[str]]] = []

    async def read_requests_many(requests: Any) -> Any:
        asked.append(dict(requests))
        return await real(requests)

    store.read_requests_many = read_requests_many  # type: ignore[method-assign]
    commands: list[tuple[Credit, str]] = [
        (Credit(wallet_id="w0", amount_cents=50), "first-w0"),  # a retry
        *((Credit(wallet_id=w, amount_cents=3), f"new-{w}") for w in WALLETS[1:]),
    ]
    outcomes = await restarted.execute_many(commands)
    assert len(asked) == 1
    assert sorted(asked[0]) == sorted(wallet_stream(w) for w in WALLETS)
    assert outcomes[0] == dataclasses.replace(firsts["w0"], repeated=True)
    for (command, rid), outcome in zip(commands[1:], outcomes[1:], strict=True):
        assert isinstance(outcome, CommandOutcome)
        assert not outcome.repeated
        await assert_as_stored(store, outcome, command.wallet_id, rid)


async def test_a_failed_lookup_fails_only_its_aggregate(store: EventStore) -> None:
    writer = _forgetful(store)
    for wallet in WALLETS:
        for n in range(12):
            await writer.execute(Credit(wallet_id=wallet, amount_cents=1), request_id=f"{n}")
    real_one = store.read_requests

    async def read_requests_many(requests: Any) -> Any:
        raise StoreUnavailable("the one call failed")

    async def read_requests(stream_id: str, ids: Sequence[str]) -> Any:
        if stream_id == wallet_stream("w2"):
            raise StoreUnavailable("w2's index is unreadable")
        return await real_one(stream_id, ids)

    store.read_requests_many = read_requests_many  # type: ignore[method-assign]
    store.read_requests = read_requests  # type: ignore[method-assign]
    outcomes = await writer.execute_many(
        [(Credit(wallet_id=w, amount_cents=2), f"late-{w}") for w in WALLETS]
    )
    assert isinstance(outcomes[2], StoreUnavailable)
    assert "w2" in str(outcomes[2])
    for wallet, outcome in zip(WALLETS, outcomes, strict=True):
        if wallet != "w2":
            assert isinstance(outcome, CommandOutcome)
            await assert_as_stored(store, outcome, wallet, f"late-{wallet}")


async def test_commands_for_a_busy_wallet_wait_for_the_next_round(store: EventStore) -> None:
    """While w0's batch is being stored, w0's new commands wait and go in a later round
    (never two batches of one aggregate at once); other wallets do not wait for it."""
    wallets = WalletWriter(store)
    await opened(store, wallets)
    calls = Calls(store)
    first = asyncio.ensure_future(wallets.execute(Credit(wallet_id="w0", amount_cents=1)))
    await asyncio.sleep(0)  # the round has taken w0
    more = [
        asyncio.ensure_future(wallets.execute(Credit(wallet_id=w, amount_cents=1)))
        for w in ["w0", "w0", "w1"]
    ]
    outcomes = [await first, *[await f for f in more]]
    streams = calls.wallet_calls()
    assert streams[0] == [wallet_stream("w0")]
    assert sorted(s for call in streams for s in call) == sorted(
        [wallet_stream("w0")] * 2 + [wallet_stream("w1")]
    )  # w0's two waiting credits are one batch
    assert [o.stream_version for o in outcomes[:3]] == [3, 4, 5]
    for wallet, outcome in zip(["w0", "w0", "w0", "w1"], outcomes, strict=True):
        await assert_as_stored(store, outcome, wallet, None)


@pytest.mark.parametrize("n_wallets", [1, 40])
async def test_answers_match_the_log_under_concurrent_load(
    store: EventStore, n_wallets: int
) -> None:
    """Many clients, several commands each, some wallets shared: every answer is the
    stored one, and the balances are what the answers add up to."""
    wallets = WalletWriter(store, snapshot_every=7)
    names = [f"w{n}" for n in range(n_wallets)]

    async def client(c: int) -> list[tuple[str, str, CommandOutcome]]:
        done = []
        for i in range(6):
            wallet = names[(c + i) % n_wallets]
            rid = f"c{c}-{i}"
            outcome = await wallets.execute(
                Credit(wallet_id=wallet, amount_cents=c + 1), request_id=rid
            )
            done.append((wallet, rid, outcome))
        return done

    results = [r for rs in await asyncio.gather(*(client(c) for c in range(50))) for r in rs]
    for wallet, rid, outcome in results:
        assert not outcome.repeated
        await assert_as_stored(store, outcome, wallet, rid)
    total = sum(c + 1 for c in range(50)) * 6
    assert sum([(await WalletWriter(store).state(w)).balance for w in names]) == total
