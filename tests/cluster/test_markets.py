"""Fixed-odds markets in services mode, in one process: two workers sharing four
partitions and a router standing for an API process, on the local PostgreSQL, NATS and
Redis. A market's commands go to the worker owning its partition (its single writer);
a bet on a market goes to the wallet's owner, which places it on the market through the
market's owner (here the other worker); the markets' cashier follower pays the
settlement once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import nats
import pytest
from msgspec.structs import replace as msgspec_replace

from oddstream.cluster import wire
from oddstream.cluster.partitions import market_partition, wallet_partition
from oddstream.cluster.router import Router, command_subject
from oddstream.cluster.worker import Worker
from oddstream.config import Settings
from oddstream.domain.fixedodds import (
    CloseMarket,
    CreateMarket,
    FixedOddsRejection,
    MarketLimits,
    MoneyLine,
    Odds,
    Outcome,
    PlaceBet,
    ResultMarket,
    UpdatePrices,
)
from oddstream.domain.fixedodds.events import BetAccepted
from oddstream.domain.wallet import Credit, ReserveStake, market_book
from oddstream.eventstore.postgres import PostgresEventStore
from oddstream.runtime.cashier import wallet_bet_request_id
from oddstream.runtime.market_cashier import CHECKPOINT as MARKET_CASHIER
from oddstream.runtime.market_cashier import bet_request
from oddstream.runtime.market_writer import MarketRequest, market_stream
from oddstream.runtime.wallet_writer import WalletWriter, wallet_stream
from oddstream.velocity import Gap
from oddstream.velocity.nats_bus import NatsVelocityBus

PARTITIONS = 4
LINE = MoneyLine(home=Odds.from_decimal("2.5"), away=Odds.from_decimal("1.6"))
LIMITS = MarketLimits(max_stake_cents=100_000, max_liability_cents=10_000_000)


def market_in(partition: int, tag: str = "") -> str:
    """A market id whose stream is in ``partition``."""
    return next(
        f"m{tag}{i}"
        for i in range(10_000)
        if market_partition(f"m{tag}{i}", PARTITIONS) == partition
    )


def wallet_in(partition: int) -> str:
    return next(
        f"w{i}" for i in range(10_000) if wallet_partition(f"w{i}", PARTITIONS) == partition
    )


def new_market(market_id: str) -> MarketRequest:
    create = CreateMarket(
        market_id=market_id, game_id="g1", provider="acme", money_line=LINE, limits=LIMITS
    )
    return MarketRequest(action="NewOdds", command=create, game_id="g1")


def update(market_id: str, home: str) -> MarketRequest:
    line = MoneyLine(home=Odds.from_decimal(home), away=Odds.from_decimal("1.6"))
    command = UpdatePrices(market_id=market_id, provider="acme", money_line=line)
    return MarketRequest(action="UpdateOdds", command=command, game_id="g1")


def provider(command: Any) -> MarketRequest:
    return MarketRequest(action=type(command).__name__, command=command)


@dataclass
class Deployment:
    workers: tuple[Worker, Worker]
    router: Router
    other: Router
    store: PostgresEventStore

    def owner(self, partition: int) -> Worker:
        return next(w for w in self.workers if w.owns(partition))


async def _router(url: str, prefix: str, store: PostgresEventStore) -> tuple[Router, Any]:
    nc = await nats.connect(url)
    router = Router(
        nc,
        prefix=prefix,
        partitions=PARTITIONS,
        deadline=5.0,
        store=store,
        reader=WalletWriter(store),
    )
    return router, nc


@pytest.fixture
async def deployment(
    pg_url: str, pg_schema: str, redis_url: str, nats_url: str
) -> AsyncIterator[Deployment]:
    settings = Settings(
        store_url=pg_url,
        pg_schema=pg_schema,
        nats_url=nats_url,
        redis_url=redis_url,
        redis_prefix=f"t{uuid.uuid4().hex[:10]}:",
        partitions=PARTITIONS,
        rebalance_seconds=0.1,
        command_deadline_seconds=5.0,
    )
    w0, w1 = Worker(settings, name="w0"), Worker(settings, name="w1")
    await w0.start()
    await w1.start()
    store = await PostgresEventStore.open(pg_url, schema=pg_schema)
    router, nc = await _router(nats_url, w0.prefix, store)
    other, nc2 = await _router(nats_url, w0.prefix, store)
    try:
        async with asyncio.timeout(30):  # the two share the partitions out, two each
            while not (len(w0.partitions()) == len(w1.partitions()) == 2):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        yield Deployment((w0, w1), router, other, store)
    finally:
        await nc.close()
        await nc2.close()
        await store.close()
        await w1.stop()
        await w0.stop()


async def test_market_commands_go_to_the_owner_of_their_partition(
    deployment: Deployment,
) -> None:
    w0, w1 = deployment.workers
    m0, m1 = market_in(w0.partitions()[0]), market_in(w1.partitions()[0])
    created = await deployment.router.markets.execute(new_market(m0), request_id="new-m0")
    assert created.stream_version == 1
    # the owner of m0's partition wrote it: its writer holds the market, the other none
    assert (w0.markets.cached, w1.markets.cached) == (1, 0)
    await deployment.router.markets.execute(new_market(m1), request_id="new-m1")
    assert (w0.markets.cached, w1.markets.cached) == (1, 1)
    # through another API process: the same single writer, the same answers
    moved = await deployment.other.markets.execute(update(m0, "3"), request_id="u1")
    again = await deployment.router.markets.execute(update(m0, "3"), request_id="u1")
    assert again.repeated
    assert not moved.repeated
    assert (again.stream_version, again.last_position) == (
        moved.stream_version,
        moved.last_position,
    )
    # a refusal travels as the market's typed refusal
    with pytest.raises(FixedOddsRejection) as refused:
        await deployment.router.markets.execute(
            provider(ResultMarket(market_id=m0, provider="acme", winners=(Outcome.HOME,)))
        )
    assert refused.value.code == "wrong_status"
    types = [e.type for e in await deployment.store.read_stream(market_stream(m0))]
    assert types == ["fixedodds.MarketCreated", "fixedodds.PricesUpdated"]


async def test_no_stale_copy_of_a_market_that_did_not_exist(deployment: Deployment) -> None:
    """Each API process used to write markets itself: one that had been asked for a
    market not yet created kept that "no market" in memory (up to 300 s), and refused
    the market's commands (``market_not_found``) after another process created it. A
    routed command is decided by the market's one writer, on what the log holds."""
    market = market_in(0, "s")
    with pytest.raises(FixedOddsRejection) as refused:
        await deployment.router.markets.execute(update(market, "3"), request_id="early")
    assert refused.value.code == "market_not_found"
    await deployment.other.markets.execute(new_market(market), request_id="create")
    moved = await deployment.router.markets.execute(update(market, "3"), request_id="later")
    assert moved.stream_version == 2


async def test_a_worker_refuses_a_market_command_of_a_partition_it_does_not_own(
    deployment: Deployment, nats_url: str
) -> None:
    """A sender hashing with another number of partitions: its market command names a
    partition its stream is not in, and the owner of that partition refuses it."""
    w0 = deployment.workers[0]
    named, actual = w0.partitions()  # both w0's: it answers, and checks
    command = new_market(market_in(actual, "p"))
    here = new_market(market_in(named, "p"))
    bare = PlaceBet(
        market_id=here.command.market_id,
        bet_id="b",
        outcome=Outcome.HOME,
        stake_cents=100,
        price=Odds.from_decimal("2"),
        wallet_id=wallet_in(named),
    )
    nc = await nats.connect(nats_url)
    try:
        for op, carried, code in [
            (wire.Op.MARKET, command, "wrong_partition"),
            # an operation carrying a command it does not take, in the right partition:
            # never handed to a writer of another kind
            (wire.Op.RACE, here, "bad_request"),
            (wire.Op.RECALL, bare, "bad_request"),
            (wire.Op.WALLET, bare, "bad_request"),
        ]:
            req = wire.request(op, named, 5.0, carried, request_id="x")
            msg = await nc.request(command_subject(w0.prefix, named), wire.encode(req), 5.0)
            reply = wire.decode_reply(msg.data)
            assert reply.error is not None, (op, reply)
            assert reply.error.code == code, (op, reply)
    finally:
        await nc.close()
    for market in (command, here):
        assert await deployment.store.read_stream(market_stream(market.command.market_id)) == []


async def test_a_bet_on_a_market_of_another_worker_is_paid_once(deployment: Deployment) -> None:
    """The wallet's owner reserves, places the bet on the market through the market's
    owner (the other worker), captures; the markets' cashier follower (one worker of
    the two) pays the result into the wallet, once, to the cent."""
    w0, w1 = deployment.workers
    router = deployment.router
    wallet, market = wallet_in(w0.partitions()[0]), market_in(w1.partitions()[0], "b")
    await router.wallets.execute(Credit(wallet_id=wallet, amount_cents=10_000))
    await router.markets.execute(new_market(market), request_id="create")
    bet = PlaceBet(
        market_id=market,
        bet_id=f"{wallet}~b1",
        outcome=Outcome.HOME,
        stake_cents=1_001,
        price=Odds.from_decimal("2.5"),
        wallet_id=wallet,
    )
    placed = await router.market_bets.place_bet(bet)
    accepted = [e for e in placed.events if isinstance(e, BetAccepted)]
    assert accepted
    assert accepted[0].price == Odds.from_decimal("2.5")
    # the market's one writer is its owner: the wallet's owner never loaded it
    assert (w1.markets.cached, w0.markets.cached) == (1, 0)
    retry = await deployment.other.market_bets.place_bet(bet)
    assert retry.repeated
    assert (retry.stream_version, retry.last_position) == (
        placed.stream_version,
        placed.last_position,
    )
    # a worse price than asked: refused, the stake back in the wallet
    with pytest.raises(FixedOddsRejection) as worse:
        await router.market_bets.place_bet(
            PlaceBet(
                market_id=market,
                bet_id=f"{wallet}~b2",
                outcome=Outcome.HOME,
                stake_cents=500,
                price=Odds.from_decimal("3"),
                wallet_id=wallet,
            )
        )
    assert worse.value.code == "price_worse"
    state, _, _ = await w0.wallets.committed(wallet)
    assert (state.balance, state.in_play) == (10_000 - 1_001, 1_001)
    for command in (
        CloseMarket(market_id=market, provider="acme"),
        ResultMarket(market_id=market, provider="acme", winners=(Outcome.HOME,)),
    ):
        await router.markets.execute(provider(command))
    # ⌊1001 × 2.5⌋ = 2502, stake included
    expected = (10_000 - 1_001 + 2_502, 0)
    async with asyncio.timeout(15):
        while True:
            state, _, _ = await w0.wallets.committed(wallet)
            if (state.balance, state.in_play) == expected:
                break
            await asyncio.sleep(0.05)
    runners = [w for w in deployment.workers if MARKET_CASHIER in w._consumers]
    assert len(runners) == 1  # the follower runs once in the deployment
    await asyncio.sleep(0.5)  # nothing is paid twice meanwhile
    types = [e.type for e in await deployment.store.read_stream(wallet_stream(wallet))]
    assert types.count("wallet.WinningsCredited") == 1
    assert types.count("wallet.StakeReserved") == 2  # b1 once (not on its retry), b2
    assert types.count("wallet.StakeReleased") == 1  # b2's
    state, _, _ = await w0.wallets.committed(wallet)
    assert (state.balance, state.in_play) == expected


async def test_the_owner_publishes_its_market_events_on_the_velocity_bus(
    deployment: Deployment, nats_url: str
) -> None:
    """The market's writer is the worker owning it, so the worker publishes what it
    commits (an API process used to), at the stored positions, on the request's tier."""
    w0 = deployment.workers[0]
    market = market_in(w0.partitions()[0], "v")
    bus = NatsVelocityBus(nats_url, f"{w0.prefix}.velocity")
    await bus.start()
    try:
        sub = await bus.subscribe(">")
        created = await deployment.router.markets.execute(new_market(market))
        fast = msgspec_replace(update(market, "3"), velocity="high")
        moved = await deployment.other.markets.execute(fast)
        seen = []
        async with asyncio.timeout(10):
            while len(seen) < 2:
                item = await sub.get()
                if not isinstance(item, Gap):
                    seen.append(item)
        # (a subscription hands out high first: the order taken is the log's)
        assert sorted((e.position, e.stream, e.type, e.velocity) for e in seen) == [
            (created.last_position, market_stream(market), "fixedodds.MarketCreated", "medium"),
            (moved.last_position, market_stream(market), "fixedodds.PricesUpdated", "high"),
        ]
        published = {tier: counts[0] for tier, counts in w0.velocity_counts().items()}
        assert (published["high"], published["medium"]) == (1, 1)
    finally:
        await bus.close()


async def test_the_sweep_resolves_a_stale_market_reservation_on_the_wallets_owner(
    deployment: Deployment,
) -> None:
    """Two reservations a wallet's owner left open (it died after reserving): one whose
    bet the market took, one it never placed. The follower's sweep (on one worker)
    resolves each on the wallet's owner (the other worker), which asks the market's
    owner whether it holds the bet: captured, and released ``not_placed``."""
    runner = next(w for w in deployment.workers if MARKET_CASHIER in w._consumers)
    other = next(w for w in deployment.workers if w is not runner)
    wallet = wallet_in(other.partitions()[0])
    market = market_in(runner.partitions()[0], "r")
    router = deployment.router
    await router.wallets.execute(Credit(wallet_id=wallet, amount_cents=5_000))
    await router.markets.execute(new_market(market))
    for bet_id in (f"{wallet}~b1", f"{wallet}~b2"):
        await router.wallets.execute(
            ReserveStake(
                wallet_id=wallet, bet_id=bet_id, book=market_book(market), amount_cents=1_000
            )
        )
    taken = PlaceBet(
        market_id=market,
        bet_id=f"{wallet}~b1",
        outcome=Outcome.HOME,
        stake_cents=1_000,
        price=Odds.from_decimal("2.5"),
        wallet_id=wallet,
    )
    await router.markets.execute(
        bet_request(taken), request_id=wallet_bet_request_id(wallet, taken.bet_id)
    )
    cashier = runner.market_cashier
    async with asyncio.timeout(10):
        while cashier.open_reservations < 2:  # noqa: ASYNC110 - the follower's progress
            await asyncio.sleep(0.05)
    answered = other.answered
    assert await cashier.sweep(now=time.time() + 3_600) == 2
    assert other.answered > answered  # the wallet's owner resolved them
    recorded = await deployment.store.read_stream(wallet_stream(wallet))
    closings = [(e.type, e.data["bet_id"], e.data.get("reason")) for e in recorded[-2:]]
    assert closings == [
        ("wallet.StakeCaptured", f"{wallet}~b1", None),
        ("wallet.StakeReleased", f"{wallet}~b2", "not_placed"),
    ]
    state, _, _ = await other.wallets.committed(wallet)
    assert (state.balance, state.in_play) == (4_000, 1_000)
