"""Velocity tiers: does a burst of low-velocity events delay high-velocity delivery?

For each transport — the embedded bus (one process) and NATS (services mode's bus, a
connection per tier, on the local server) — high events are published at a steady rate
and their latency from ``publish`` to the high subscriber taking them is recorded,
first with nothing else on the bus (*idle*), then while a burst of ``--low-events`` low
events is published (in chunks of ``--chunk``, as a market writer publishes a committed
batch) and drained by a low subscriber (*burst*). Rounds alternate idle and burst, per
transport, so the machine's noise falls on both. Target (issue 13): high p99 during the
burst ≤ 2 × high p99 idle.

    .venv/bin/python bench/velocity.py [--low-events 100000] [--rounds 3]
        [--low-rate EVENTS_PER_S] [--low-nice N]

Prints a table and writes ``bench/results/velocity.json``: ``velocity`` in the shape
issue 13 names for the odds benchmark to come (the transport with the highest ratio), and
``cases`` with every transport's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgspec

from common import ROOT, machine, write_results
from oddstream.domain.fixedodds.events import MoneyLine, PricesUpdated
from oddstream.domain.fixedodds.odds import Odds
from oddstream.runtime.codec import registry
from oddstream.velocity import BusEvent, InProcessVelocityBus, VelocityBus, bus_format
from oddstream.velocity.bus import RATE, Publisher
from oddstream.velocity.nats_bus import MAX_BATCH, PACED_BATCH, NatsVelocityBus, check_rate

NATS_URL = os.environ.get("ODDSTREAM_TEST_NATS_URL", "nats://127.0.0.1:4222")
#: a PricesUpdated as the market writer stores and publishes it
DATA = msgspec.json.encode(
    registry.to_new_event(
        PricesUpdated(
            market_id="6f0c8a52-1d1e-4a59-9a38-0b5c2f1d9e77",
            money_line=MoneyLine(
                home=Odds.from_decimal("1.91"),
                away=Odds.from_decimal("1.91"),
                draw=Odds.from_decimal("3.4"),
            ),
        )
    ).data
)
#: the NATS transports: the format a publisher writes, and events at most in a message
NATS_TRANSPORTS: dict[str, tuple[bus_format.BusFormat, int]] = {
    "nats": ("msgpack", MAX_BATCH),
    "nats-single": ("msgpack", 1),  # an event per message (no batches), to compare with
    "nats-protobuf": ("protobuf", MAX_BATCH),
}


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if values else 0.0


class Run:
    def __init__(self, bus: VelocityBus) -> None:
        self.bus = bus
        self.position = 0
        self.sent: dict[int, int] = {}
        self.latencies: list[float] = []
        #: of the high events' latencies, those of events sent while the burst was
        #: still being published (``publish`` called: the writer's own work) and after
        self.while_publishing: list[float] = []
        self.after_publishing: list[float] = []
        self.publishing = False
        self.publishing_from_ns = 0
        self.published_ns = 0
        self.in_burst = False

    def event(self, velocity: str, game_type: str) -> BusEvent:
        self.position += 1
        return BusEvent(
            position=self.position,
            stream="market-6f0c8a52-1d1e-4a59-9a38-0b5c2f1d9e77",
            version=self.position,
            type="fixedodds.PricesUpdated",
            data=DATA,
            velocity=velocity,  # type: ignore[arg-type]
            game_type=game_type,
            domain="odds",
        )

    async def high_reader(self, sub: Any) -> None:
        async for item in sub:
            at = time.perf_counter_ns()
            sent = self.sent.pop(getattr(item, "position", -1), None)
            if sent is not None:
                self.latencies.append((at - sent) / 1e6)
                # by when it was sent: one sent before the burst began is in neither
                if not self.in_burst or sent < self.publishing_from_ns:
                    pass
                elif self.publishing or sent < self.published_ns:
                    self.while_publishing.append((at - sent) / 1e6)
                else:
                    self.after_publishing.append((at - sent) / 1e6)

    async def high_writer(self, stop: asyncio.Event, rate: float) -> int:
        n = 0
        period = 1 / rate
        next_at = time.perf_counter()
        while not stop.is_set():
            next_at += period
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event = self.event("high", "football")
            self.sent[event.position] = time.perf_counter_ns()
            self.bus.publish(event)
            n += 1
        return n

    async def phase(
        self, *, burst: int, chunk: int, rate: float, idle_seconds: float, low_sub: Any
    ) -> tuple[list[float], float]:
        """High latencies during the phase, and how long the burst took to drain."""
        self.latencies = []
        self.while_publishing = []
        self.after_publishing = []
        self.published_ns = 0
        self.publishing_from_ns = 0
        self.in_burst = bool(burst)
        stop = asyncio.Event()
        writer = asyncio.create_task(self.high_writer(stop, rate))
        started = time.perf_counter()
        if burst:
            before = await low_sub.received()
            self.publishing_from_ns = time.perf_counter_ns()
            self.publishing = True
            for i in range(0, burst, chunk):
                for _ in range(min(chunk, burst - i)):
                    self.bus.publish(self.event("low", "tennis"))
                await asyncio.sleep(0)
            self.published_ns = time.perf_counter_ns()
            self.publishing = False
            async with asyncio.timeout(120):
                while await low_sub.received() - before < burst:  # noqa: ASYNC110 (a count elsewhere)
                    await asyncio.sleep(0.005)
        else:
            await asyncio.sleep(idle_seconds)
        took = time.perf_counter() - started
        stop.set()
        await writer
        await asyncio.sleep(0.05)  # the last high events arrive
        return self.latencies, took


async def low_reader(sub: Any) -> None:
    async for _ in sub:
        pass


class LocalLow:
    """The low subscriber in this process (embedded)."""

    def __init__(self, sub: Any) -> None:
        self.sub = sub
        self.task = asyncio.create_task(low_reader(sub))

    async def received(self) -> int:
        return int(self.sub.received)

    async def dropped(self) -> int:
        return int(self.sub.dropped)

    async def close(self) -> None:
        self.sub.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class RemoteLow:
    """The low subscriber in a process of its own, as a worker of services mode
    subscribes to its tier: asked for its count over NATS."""

    def __init__(self, prefix: str, nice: int = 0) -> None:
        self.prefix = prefix
        self.nice = nice
        self.proc: Any = None
        self.nc: Any = None

    async def start(self) -> None:
        import nats

        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--low-subscriber",
            self.prefix,
            str(self.nice),
            stdin=asyncio.subprocess.PIPE,
        )
        self.nc = await nats.connect(NATS_URL)
        async with asyncio.timeout(20):
            while True:
                try:
                    await self._ask()
                    return
                except Exception:
                    await asyncio.sleep(0.1)

    async def _ask(self) -> list[int]:
        msg = await self.nc.request(f"{self.prefix}-ctl", b"", timeout=2)
        return [int(x) for x in msg.data.split()]

    async def received(self) -> int:
        return (await self._ask())[0]

    async def dropped(self) -> int:
        return (await self._ask())[1]

    async def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            await self.proc.wait()
        if self.nc is not None:
            await self.nc.close()


async def low_subscriber(prefix: str, nice: int) -> None:
    """The child process: subscribe the low tier, count, answer the count, stop when the
    parent closes stdin (at ``nice``, when not 0: a low-tier worker run under ``nice``)."""
    import nats

    if nice:
        os.nice(nice)

    bus = NatsVelocityBus(NATS_URL, prefix)
    await bus.start()
    sub = await bus.subscribe("low", limit=10_000_000)
    task = asyncio.create_task(low_reader(sub))
    nc = await nats.connect(NATS_URL)

    async def answer(msg: Any) -> None:
        await msg.respond(b"%d %d" % (sub.received, sub.dropped))

    await nc.subscribe(f"{prefix}-ctl", cb=answer)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    task.cancel()
    await nc.close()
    await bus.close()


async def case(transport: str, args: argparse.Namespace) -> dict[str, Any]:
    low: Any
    if transport == "embedded":
        bus: Any = InProcessVelocityBus()
        low = LocalLow(await bus.subscribe("low", limit=args.low_events + 1))
    else:
        prefix = f"bench.velocity.{uuid.uuid4().hex}"
        fmt, max_batch = NATS_TRANSPORTS[transport]
        bus = NatsVelocityBus(
            NATS_URL,
            prefix,
            max_batch=max_batch,
            fmt=fmt,
            rates=args.rates,
            paced_batch=args.paced_batch,
        )
        await bus.start()
        low = RemoteLow(prefix, args.low_nice)
        await low.start()
    run = Run(bus)
    high = await bus.subscribe("high.>")
    tasks = [asyncio.create_task(run.high_reader(high))]
    idle: list[float] = []
    burst: list[float] = []
    drain: list[float] = []
    publishing: list[float] = []
    draining: list[float] = []
    kw = {"chunk": args.chunk, "rate": args.high_rate, "low_sub": low}
    try:
        await run.phase(burst=0, idle_seconds=0.5, **kw)  # warm up
        for _ in range(args.rounds):
            lat, _ = await run.phase(burst=0, idle_seconds=args.idle_seconds, **kw)
            idle += lat
            lat, took = await run.phase(burst=args.low_events, idle_seconds=0, **kw)
            burst += lat
            publishing += run.while_publishing
            draining += run.after_publishing
            drain.append(took)
        low_dropped = await low.dropped()
    finally:
        high.close()
        await low.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.close()
    idle_p99, burst_p99 = p99(idle), p99(burst)
    sizes = {}
    if transport in NATS_TRANSPORTS:  # what a NATS message of one event and of a full batch is
        fmt, max_batch = NATS_TRANSPORTS[transport]
        stamp = Publisher().stamp
        events = [stamp(Run(bus).event("low", "football")) for _ in range(max_batch)]
        sizes = {
            "bytes_one_event": len(bus_format.encode(events[:1], fmt)),
            "bytes_full_batch": len(bus_format.encode(events, fmt)),
            "events_full_batch": max_batch,
        }
    return {
        "transport": transport,
        **sizes,
        "high_p99_idle_ms": round(idle_p99, 3),
        "high_p99_burst_ms": round(burst_p99, 3),
        "ratio": round(burst_p99 / idle_p99, 2) if idle_p99 else None,
        "low_events": args.low_events,
        "high_p50_idle_ms": round(statistics.median(idle), 3),
        "high_p50_burst_ms": round(statistics.median(burst), 3),
        "high_samples_idle": len(idle),
        "high_samples_burst": len(burst),
        "low_dropped": low_dropped,
        "burst_drain_seconds": [round(t, 3) for t in drain],
        # the burst's high events sent while the burst was being published (the
        # writer's own work in this process, which no pace of the bus spreads)
        "high_samples_burst_publishing": len(publishing),
        "high_p99_burst_publishing_ms": round(p99(publishing), 3),
        "high_samples_burst_draining": len(draining),
        "high_p99_burst_draining_ms": round(p99(draining), 3),
    }


async def main(args: argparse.Namespace) -> int:
    gc.freeze()  # what the setup allocated is not scanned again in every collection
    cases = [await case(t, args) for t in args.transports.split(",")]
    print(
        f"{'transport':<10} {'idle p99 ms':>12} {'burst p99 ms':>13} {'ratio':>6} "
        f"{'idle p50':>9} {'burst p50':>10} {'low events':>11} {'drain s':>8} "
        f"{'p99 publishing':>15} {'p99 draining':>13}"
    )
    for c in cases:
        print(
            f"{c['transport']:<10} {c['high_p99_idle_ms']:>12.3f} "
            f"{c['high_p99_burst_ms']:>13.3f} {c['ratio']:>6.2f} "
            f"{c['high_p50_idle_ms']:>9.3f} {c['high_p50_burst_ms']:>10.3f} "
            f"{c['low_events']:>11,} {statistics.median(c['burst_drain_seconds']):>8.2f} "
            f"{c['high_p99_burst_publishing_ms']:>15.3f} {c['high_p99_burst_draining_ms']:>13.3f}"
        )
    worst = max(cases, key=lambda c: c["ratio"] or 0)
    problems = [
        f"{c['transport']}: ratio {c['ratio']} > 2"
        for c in cases
        if c["ratio"] is None or c["ratio"] > 2
    ]
    problems += [
        f"{c['transport']}: {c['low_dropped']} low events dropped"
        for c in cases
        if c["low_dropped"]
    ]
    for p in problems:
        print("problem:", p)
    write_results(
        Path(args.out),
        {
            "velocity": {
                "high_p99_idle_ms": worst["high_p99_idle_ms"],
                "high_p99_burst_ms": worst["high_p99_burst_ms"],
                "low_burst_events": args.low_events,
            },
            "cases": cases,
            "settings": {
                "rounds": args.rounds,
                "high_rate_per_s": args.high_rate,
                "idle_seconds": args.idle_seconds,
                "chunk": args.chunk,
                "nats": NATS_URL,
                "nats_rates_per_s": {**RATE, **args.rates},
                "low_subscriber_nice": args.low_nice,
            },
            "problems": problems,
            "machine": machine(),
        },
    )
    return 1 if problems else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--low-subscriber"]:
        asyncio.run(low_subscriber(sys.argv[2], int(sys.argv[3])))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--low-events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--high-rate", type=float, default=1000.0, help="high events per second")
    parser.add_argument("--idle-seconds", type=float, default=1.0)
    parser.add_argument("--chunk", type=int, default=20, help="low events published at once")
    parser.add_argument(
        "--transports",
        default="embedded,nats",
        help="comma-separated, in order (repeats allowed): embedded, nats, nats-single, "
        "nats-protobuf",
    )
    parser.add_argument(
        "--low-rate",
        type=float,
        help="NATS: the low tier's pace, events per second (0: unpaced); default: the "
        f"bus's ({RATE['low']:,.0f}, ODDSTREAM_VELOCITY_LOW_RATE)",
    )
    parser.add_argument(
        "--medium-rate", type=float, help="NATS: the medium tier's pace (0: unpaced)"
    )
    parser.add_argument(
        "--paced-batch",
        type=int,
        default=PACED_BATCH,
        help=f"NATS: events in a paced tier's message, at most (default {PACED_BATCH})",
    )
    parser.add_argument(
        "--low-nice", type=int, default=0, help="NATS: the low subscriber process's nice"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "velocity.json"))
    arguments = parser.parse_args()
    arguments.rates = {
        tier: rate or None
        for tier, rate in (("low", arguments.low_rate), ("medium", arguments.medium_rate))
        if rate is not None
    }
    try:  # the bus's own checks, as a usage error rather than a traceback mid-run
        for tier, rate in arguments.rates.items():
            check_rate(tier, rate)
        if arguments.paced_batch < 1:
            raise ValueError(f"--paced-batch is events, >= 1 (got {arguments.paced_batch})")
    except ValueError as exc:
        parser.error(str(exc))
    sys.exit(asyncio.run(main(arguments)))
