"""Size and encode/decode speed of the project's real events: protobuf vs JSON (msgspec).

A realistic set of events is made once, seeded: fixed-odds markets created and their
prices moving (most of the traffic), bets accepted on them and settled, and tote bets
placed. Each format turns every event into bytes and back to the same domain event
(checked equal before any timing), with the event's type known on both sides (as the
store's type column and a bus subject tell it):

- ``json``: ``msgspec.json`` with the event's class (what the store holds);
- ``protobuf``: ``runtime/proto_events.py``: the domain event to its message and bytes,
  and back through ``msgspec.convert`` (the same checks as a stored event);
- ``protobuf-messages``: the protobuf library alone on messages already built
  (``SerializeToString`` / ``FromString``): what a client that holds protobuf messages
  pays, not the domain's conversion;
- ``msgpack``: ``msgspec.msgpack``, what the services-mode bus carries today, for
  reference.

One run, the formats interleaved round by round (each round in a rotated order), the
median round reported: µs per event and events/s, encoding and decoding; ratios are
protobuf / JSON (below 1: protobuf smaller or faster). Results: the table, and
``bench/results/serialization.json``.

    .venv/bin/python bench/serialization.py [--quick] [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine, package_version, write_results
from oddstream.domain.fixedodds.events import (
    BetAccepted,
    BetSettled,
    MarketCreated,
    MarketLimits,
    MoneyLine,
    Outcome,
    PricesUpdated,
)
from oddstream.domain.fixedodds.odds import Odds
from oddstream.domain.tote.events import BetPlaced
from oddstream.domain.tote.pools import PoolType
from oddstream.runtime import proto_events

#: the share of each kind of event in the set
MIX = {
    "MarketCreated": 0.04,
    "PricesUpdated": 0.46,
    "BetAccepted": 0.2,
    "BetSettled": 0.1,
    "BetPlaced": 0.2,
}
PROVIDERS = ("acme", "betfeed", "oddsco")
LEAGUES = ("nfl", "nba", "epl", "mlb", "nhl")


def _price(rng: random.Random) -> Odds:
    """A price as books quote them: a decimal of two places, or a fractional ladder
    step (8/13 is 21/13 decimal)."""
    if rng.random() < 0.7:
        return Odds.exact(Fraction(rng.randint(101, 2000), 100))
    num, den = rng.choice([(8, 13), (4, 6), (1, 3), (11, 10), (5, 2), (10, 11), (7, 4)])
    return Odds.exact(1 + Fraction(num, den))


def _line(rng: random.Random, three_way: bool) -> MoneyLine:
    return MoneyLine(home=_price(rng), away=_price(rng), draw=_price(rng) if three_way else None)


def make_events(n: int, seed: int = 13) -> list[msgspec.Struct]:
    """``n`` events in the proportions of :data:`MIX`, in an order a log could hold."""
    rng = random.Random(seed)
    kinds = [k for k, share in MIX.items() for _ in range(round(share * n))]
    rng.shuffle(kinds)
    markets: list[tuple[str, bool]] = []
    accepted: list[BetAccepted] = []
    races = [f"race-{d}-{r}" for d in ("2026-11-28", "2026-11-29") for r in range(1, 13)]
    events: list[msgspec.Struct] = []
    for kind in kinds:
        if kind != "MarketCreated" and not markets:
            kind = "MarketCreated"
        if kind == "MarketCreated":
            market = str(uuid.UUID(int=rng.getrandbits(128)))
            three_way = rng.random() < 0.4
            markets.append((market, three_way))
            league = rng.choice(LEAGUES)
            events.append(
                MarketCreated(
                    market_id=market,
                    game_id=f"{league}-2026-{rng.randint(1, 999):03d}",
                    provider=rng.choice(PROVIDERS),
                    money_line=_line(rng, three_way),
                    limits=MarketLimits(max_stake_cents=1_000_000, max_liability_cents=100_000_000),
                )
            )
        elif kind == "PricesUpdated":
            market, three_way = rng.choice(markets)
            events.append(PricesUpdated(market_id=market, money_line=_line(rng, three_way)))
        elif kind == "BetAccepted":
            market, three_way = rng.choice(markets)
            price = _price(rng)
            outcomes = [Outcome.HOME, Outcome.AWAY] + ([Outcome.DRAW] if three_way else [])
            bet = BetAccepted(
                market_id=market,
                bet_id=f"b-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}",
                outcome=rng.choice(outcomes),
                stake_cents=rng.choice((500, 1000, 2000, 2500, 5000, 10000, 1234)),
                requested=price,
                price=price,
                wallet_id=f"w-{rng.randint(1, 50_000)}",
            )
            accepted.append(bet)
            events.append(bet)
        elif kind == "BetSettled":
            if not accepted:
                continue
            bet = accepted.pop(rng.randrange(len(accepted)))
            won = rng.random() < 0.45
            payout = bet.stake_cents * bet.price.num // bet.price.den if won else 0
            events.append(
                BetSettled(
                    market_id=bet.market_id,
                    bet_id=bet.bet_id,
                    payout_cents=payout,
                    refund_cents=0,
                    reason="won" if won else "lost",
                    wallet_id=bet.wallet_id,
                )
            )
        else:
            pool = rng.choice((PoolType.WIN, PoolType.WIN, PoolType.PLACE, PoolType.EXACTA))
            size = pool.runners_per_selection
            events.append(
                BetPlaced(
                    race_id=rng.choice(races),
                    bet_id=f"t-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}",
                    pool=pool,
                    selection=tuple(rng.sample(range(1, 15), size)),
                    stake_cents=rng.choice((200, 500, 1000, 2000)),
                    wallet_id=f"w-{rng.randint(1, 50_000)}",
                )
            )
    return events


class Format:
    """One way of turning events into bytes and back."""

    def __init__(
        self,
        name: str,
        encode: Callable[[Any], bytes],
        decode: Callable[[type[Any], bytes], Any],
        prepare: Callable[[Any], Any] = lambda event: event,
    ) -> None:
        self.name = name
        self.encode = encode
        self.decode = decode
        #: what encoding starts from (a domain event, or a message already built)
        self.prepare = prepare


def formats() -> list[Format]:
    json_encoder = msgspec.json.Encoder()
    pack_encoder = msgspec.msgpack.Encoder()
    json_decoders: dict[type[Any], Any] = {}
    pack_decoders: dict[type[Any], Any] = {}

    def json_decode(cls: type[Any], data: bytes) -> Any:
        decoder = json_decoders.get(cls)
        if decoder is None:
            decoder = json_decoders[cls] = msgspec.json.Decoder(cls)
        return decoder.decode(data)

    def pack_decode(cls: type[Any], data: bytes) -> Any:
        decoder = pack_decoders.get(cls)
        if decoder is None:
            decoder = pack_decoders[cls] = msgspec.msgpack.Decoder(cls)
        return decoder.decode(data)

    return [
        Format("json", json_encoder.encode, json_decode),
        Format("protobuf", proto_events.encode, proto_events.decode),
        Format(
            "protobuf-messages",
            lambda message: message.SerializeToString(),
            lambda cls, data: proto_events.message_class(cls).FromString(data),
            prepare=proto_events.to_proto,
        ),
        Format("msgpack", pack_encoder.encode, pack_decode),
    ]


def _time_encode(fmt: Format, inputs: list[Any]) -> tuple[float, list[bytes]]:
    encode = fmt.encode
    start = time.perf_counter()
    out = [encode(item) for item in inputs]
    return time.perf_counter() - start, out


def _time_decode(fmt: Format, classes: list[type[Any]], blobs: list[bytes]) -> float:
    decode = fmt.decode
    start = time.perf_counter()
    for cls, blob in zip(classes, blobs, strict=True):
        decode(cls, blob)
    return time.perf_counter() - start


def run(n: int, rounds: int) -> dict[str, Any]:
    events = make_events(n)
    classes = [type(e) for e in events]
    fmts = formats()
    inputs = {f.name: [f.prepare(e) for e in events] for f in fmts}
    blobs: dict[str, list[bytes]] = {}
    for f in fmts:  # correctness first: every event (or message) comes back equal
        _, blobs[f.name] = _time_encode(f, inputs[f.name])
        back = [f.decode(c, b) for c, b in zip(classes, blobs[f.name], strict=True)]
        if back != inputs[f.name]:
            raise SystemExit(f"{f.name}: an event came back different")
    timings: dict[str, dict[str, list[float]]] = {
        f.name: {"encode": [], "decode": []} for f in fmts
    }
    for r in range(rounds):
        order = fmts[r % len(fmts) :] + fmts[: r % len(fmts)]
        for f in order:
            seconds, _ = _time_encode(f, inputs[f.name])
            timings[f.name]["encode"].append(seconds)
            timings[f.name]["decode"].append(_time_decode(f, classes, blobs[f.name]))
    results: dict[str, Any] = {}
    for f in fmts:
        sizes = [len(b) for b in blobs[f.name]]
        entry: dict[str, Any] = {
            "bytes_total": sum(sizes),
            "bytes_per_event": round(sum(sizes) / len(sizes), 1),
        }
        for what in ("encode", "decode"):
            median = statistics.median(timings[f.name][what])
            entry[f"{what}_us_per_event"] = round(median / len(events) * 1e6, 3)
            entry[f"{what}_events_per_s"] = round(len(events) / median)
            entry[f"{what}_rounds_s"] = [round(t, 5) for t in timings[f.name][what]]
        results[f.name] = entry
    by_type: dict[str, dict[str, float]] = {}
    for name in sorted(set(c.__name__ for c in classes)):
        picks = [i for i, c in enumerate(classes) if c.__name__ == name]
        by_type[name] = {
            "count": len(picks),
            **{
                f"{f.name}_bytes": round(sum(len(blobs[f.name][i]) for i in picks) / len(picks), 1)
                for f in fmts
                if f.name != "protobuf-messages"
            },
        }
    js, pb = results["json"], results["protobuf"]
    ratios = {
        "size": round(pb["bytes_total"] / js["bytes_total"], 3),
        "encode_time": round(pb["encode_us_per_event"] / js["encode_us_per_event"], 2),
        "decode_time": round(pb["decode_us_per_event"] / js["decode_us_per_event"], 2),
        "messages_encode_time": round(
            results["protobuf-messages"]["encode_us_per_event"] / js["encode_us_per_event"], 2
        ),
        "messages_decode_time": round(
            results["protobuf-messages"]["decode_us_per_event"] / js["decode_us_per_event"], 2
        ),
    }
    return {
        "events": len(events),
        "mix": dict(Counter(c.__name__ for c in classes)),
        "rounds": rounds,
        "formats": results,
        "by_type": by_type,
        "protobuf_vs_json": ratios,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="protobuf vs JSON (msgspec) on real events")
    parser.add_argument("--quick", action="store_true", help="5,000 events, 5 rounds")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "serialization.json"
    )
    args = parser.parse_args()
    n, rounds = (5_000, 5) if args.quick else (args.events, args.rounds)
    doc = run(n, rounds)
    print(
        f"{doc['events']:,} events ({', '.join(f'{k} {v:,}' for k, v in doc['mix'].items())}), "
        f"{rounds} interleaved rounds, medians"
    )
    head = ("format", "bytes/event", "encode µs", "encode/s", "decode µs", "decode/s")
    print("{:<18} {:>11} {:>10} {:>11} {:>10} {:>11}".format(*head))
    for name, f in doc["formats"].items():
        print(
            f"{name:<18} {f['bytes_per_event']:>11} {f['encode_us_per_event']:>10} "
            f"{f['encode_events_per_s']:>11,} {f['decode_us_per_event']:>10} "
            f"{f['decode_events_per_s']:>11,}"
        )
    print("bytes per event by type:")
    for name, t in doc["by_type"].items():
        print(
            f"  {name:<15} json {t['json_bytes']:>6}  protobuf {t['protobuf_bytes']:>6}  "
            f"msgpack {t['msgpack_bytes']:>6}"
        )
    print("protobuf / json:", ", ".join(f"{k} {v}" for k, v in doc["protobuf_vs_json"].items()))
    doc["machine"] = machine(
        protobuf=package_version("protobuf"), msgspec=package_version("msgspec")
    )
    from google.protobuf.internal import api_implementation

    doc["machine"]["protobuf_implementation"] = api_implementation.Type()
    write_results(args.out, doc)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
