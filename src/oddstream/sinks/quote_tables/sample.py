"""A deterministic sample of quote journeys as the log would hold them: for tests, the
docs' worked answer and trying the tables out.

Each quote starts, then sends 3 to 7 ``QuoteProductsUpdated``: products added, removed
and added again, rates re-priced, added and dropped, a product without rates, an update
that changes nothing; a few updates share their time with the one before (same
millisecond), and one update is recorded a day *before* the quote's previous event (a
store's clock gone back). The quotes' events interleave in the log, at positions with
gaps (other streams' events in between).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from oddstream.domain.quotes import decode_quote_event
from oddstream.domain.quotes.stored import STORED_TYPES, to_stored

from .mapping import LoggedQuoteEvent

#: When the sample's first quote starts.
SAMPLE_START = datetime(2024, 3, 14, 9, 0, tzinfo=UTC)

_ENCODER = msgspec.json.Encoder(decimal_format="number")
_CATALOGUE: dict[str, tuple[str, tuple[str, ...]]] = {
    "public-liability": ("Public Liability", ("1m", "2m", "5m")),
    "employers-liability": ("Employers' Liability", ("10m",)),
    "professional-indemnity": ("Professional Indemnity", ("250k", "500k", "1m")),
    "contents": ("Contents", ()),  # sent without rates: one item of its own
    "cyber": ("Cyber", ("basic", "plus")),
}


def _pounds(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)).scaleb(-2)


def _rate(rng: random.Random, key: str) -> dict[str, Any]:
    offered = rng.random() > 0.15
    if not offered:  # declined: not priced
        return {
            "key": key, "description": f"{key} limit", "isOffered": False,
            "basePremium": None, "loading": None, "discount": None, "ipt": None,
            "commission": None, "total": None, "status": "Declined",
        }  # fmt: skip
    base = _pounds(rng, 80, 2000)
    loading = _pounds(rng, 0, 150)
    discount = -_pounds(rng, 0, 60)
    ipt = ((base + loading + discount) * Decimal("0.12")).quantize(Decimal("0.01"))
    return {
        "key": key, "description": f"{key} limit", "isOffered": True,
        "basePremium": base, "loading": loading, "discount": discount, "ipt": ipt,
        "commission": (base * Decimal("0.2")).quantize(Decimal("0.01")),
        "total": base + loading + discount + ipt, "status": "Quoted",
        "ratingInputs": {"employees": rng.randint(1, 40)},
    }  # fmt: skip


def _product(quote: int, kind: str, rate_keys: list[str], version: int) -> dict[str, Any]:
    name, _ = _CATALOGUE[kind]
    # a rate's price is drawn from its own seed: the same until the product is re-priced
    rates = [_rate(random.Random(f"{quote}-{kind}-{key}-{version}"), key) for key in rate_keys]
    priced = [r for r in rates if r["total"] is not None]
    return {
        "id": f"p{quote:03d}-{kind}",
        "key": kind,
        "name": name,
        "total": sum((r["total"] for r in priced), Decimal("0.00")),
        "ipt": sum((r["ipt"] for r in priced), Decimal("0.00")),
        "agencyProduct": {"guid": f"agency-{kind}", "name": f"{name} Select"},
        "rates": rates,
    }


def _journey(rng: random.Random, quote: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    quote_id = f"q{quote:03d}"
    started = SAMPLE_START + timedelta(minutes=rng.randint(0, 90), seconds=rng.randint(0, 59))
    start = {
        "id": quote_id,
        "reference": f"QTE-2024-{quote:06d}",
        "contact": {
            "firstName": f"First{quote}", "lastName": f"Last{quote}",
            "email": f"person{quote}@example.com", "phone": f"+44 7700 9{quote:05d}",
            "businessType": rng.choice(["Limited company", "Sole trader", "Partnership"]),
            "businessName": f"Business {quote} Ltd", "tradingName": f"Trading {quote}",
            "industry": [{"id": 5611 + quote % 7, "value": f"ind-{quote % 7}",
                          "text": f"Industry {quote % 7}", "label": f"Industry {quote % 7}"}],
            "turnover": _pounds(rng, 10_000, 5_000_000),
            "employeeCount": rng.randint(0, 250), "effectiveDate": "2024-04-01",
            "ipAddress": f"203.0.113.{quote % 250}",
        },
        "timestamp": started.isoformat().replace("+00:00", "Z"),
        "isFirstQuote": rng.random() < 0.7,
    }  # fmt: skip
    # the quote's products: kind -> its rate keys now
    current: dict[str, list[str]] = {}
    versions: dict[str, int] = {}
    removed: list[str] = []
    updates: list[dict[str, Any]] = []
    for step in range(rng.randint(3, 7)):
        if step == 0:
            for kind in rng.sample(sorted(_CATALOGUE), rng.randint(1, 3)):
                current[kind] = list(_CATALOGUE[kind][1][: rng.randint(1, 2)])
        else:
            move = rng.choice(["add", "remove", "readd", "reprice", "rates", "same"])
            absent = [k for k in sorted(_CATALOGUE) if k not in current]
            if move == "add" and absent:
                kind = rng.choice(absent)
                current[kind] = list(_CATALOGUE[kind][1][:1])
            elif move == "remove" and current:
                kind = rng.choice(sorted(current))
                del current[kind]
                removed.append(kind)
            elif move == "readd" and removed:
                kind = removed.pop()
                current[kind] = list(_CATALOGUE[kind][1][:1])
            elif move == "reprice" and current:
                versions[rng.choice(sorted(current))] = step
            elif move == "rates" and current:
                kind = rng.choice(sorted(current))
                keys = list(_CATALOGUE[kind][1])
                if keys:
                    current[kind] = sorted(rng.sample(keys, rng.randint(1, len(keys))))
        products = [_product(quote, k, current[k], versions.get(k, 0)) for k in sorted(current)]
        updates.append({"quoteId": quote_id, "products": products})
    return start, updates


def sample_journeys(quotes: int = 50, seed: int = 12) -> list[LoggedQuoteEvent]:
    """``quotes`` quote journeys as logged events in log order (deterministic)."""
    rng = random.Random(seed)
    timed: list[tuple[datetime, int, int, dict[str, Any], str]] = []
    for quote in range(1, quotes + 1):
        start, updates = _journey(rng, quote)
        at = datetime.fromisoformat(start["timestamp"]) + timedelta(
            milliseconds=rng.randint(5, 900)
        )
        timed.append((at, quote, 0, start, "QuoteStarted"))
        for step, update in enumerate(updates, 1):
            if rng.random() > 0.1:  # else: the same millisecond as the event before
                at += timedelta(seconds=rng.randint(20, 600), microseconds=rng.randint(0, 999_999))
            timed.append((at, quote, step, update, "QuoteProductsUpdated"))
    timed.sort(key=lambda entry: entry[:3])
    logged = []
    position = 0
    skewed = False
    for at, _, step, wire, name in timed:
        position += rng.randint(1, 3)
        message = _ENCODER.encode({"type": name, "version": 1, "data": wire})
        stored = to_stored(decode_quote_event(message))
        recorded = at
        if not skewed and step >= 2:
            recorded = at - timedelta(days=1)  # a clock gone back: the log order wins
            skewed = True
        logged.append(
            LoggedQuoteEvent(
                position=position,
                recorded_at=recorded,
                type=STORED_TYPES[name],
                schema_version=1,
                data=msgspec.to_builtins(stored),
            )
        )
    return logged
