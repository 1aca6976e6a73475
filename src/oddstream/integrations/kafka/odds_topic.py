"""The rows of the ``tote_win_bet_race_runners_odds`` topic: the Kafka POC's ksqlDB
odds stream, computed the same way (pure).

The POC's ksqlDB statement joined each bet with two running sums and emitted one row per
bet, for the bet's runner only: ``odds = race pool / runner pool`` on gross amounts (no
takeout), a zero amount included (the POC's close-off records, which emit a race's final
rows). The topic keeps that stream for existing consumers; the tote's full board
(:mod:`oddstream.domain.tote.board`) is what is correct after every bet.

``race_id`` is the POC's ``RACE_ID``, an Avro ``int``: a race id that is the text of a
64-bit integer (as every race made from an ``int`` ``RACE_ID`` is) is given as that
number, any other as its text (:func:`race_id_value`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec


class OddsRow(msgspec.Struct, frozen=True):
    """One row of ``tote_win_bet_race_runners_odds``; amounts in the POC's dollars."""

    race_id: int | str
    runner_id: int
    runner_pool_amount: float
    race_pool_amount: float
    odds: float | None


_INT_LIMIT = 2**63


def race_id_value(race_id: str) -> int | str:
    """A race id as the odds rows give it: the number when it is the canonical text of
    a 64-bit integer (``"0"`` → ``0``, as ksqlDB gave the POC's ``INT``), else the text."""
    if race_id and (race_id.isascii() and (race_id.isdigit() or race_id[0] == "-")):
        try:
            number = int(race_id)
        except ValueError:
            return race_id
        if str(number) == race_id and -_INT_LIMIT <= number < _INT_LIMIT:
            return number
    return race_id


@dataclass(slots=True)
class OddsTopicStream:
    """Running sums per race and per (race, runner), in cents; one row per bet."""

    race_pools: dict[str, int] = field(default_factory=dict)
    runner_pools: dict[tuple[str, int], int] = field(default_factory=dict)

    def apply(self, race_id: str, runner: int, amount_cents: int) -> OddsRow:
        """Add a bet (a negative amount withdraws) and return the row the POC emitted."""
        race_total = self.race_pools.get(race_id, 0) + amount_cents
        runner_total = self.runner_pools.get((race_id, runner), 0) + amount_cents
        self.race_pools[race_id] = race_total
        self.runner_pools[(race_id, runner)] = runner_total
        return OddsRow(
            race_id=race_id_value(race_id),
            runner_id=runner,
            runner_pool_amount=runner_total / 100,
            race_pool_amount=race_total / 100,
            odds=race_total / runner_total if runner_total else None,
        )

    def apply_many(
        self, race_id: str, runners: Iterable[int], amounts_cents: Iterable[int]
    ) -> list[dict[str, Any]]:
        """Add one race's bets in order; the rows :meth:`apply` would give, one by one,
        as the topic's JSON values (``race_id, runner_id, runner_pool_amount,
        race_pool_amount, odds``)."""
        race_total = self.race_pools.get(race_id, 0)
        shown = race_id_value(race_id)
        pools = self.runner_pools
        rows: list[dict[str, Any]] = []
        append = rows.append
        for runner, amount in zip(runners, amounts_cents, strict=True):
            key = (race_id, runner)
            runner_total = pools.get(key, 0) + amount
            race_total += amount
            pools[key] = runner_total
            append(
                {
                    "race_id": shown,
                    "runner_id": runner,
                    "runner_pool_amount": runner_total / 100,
                    "race_pool_amount": race_total / 100,
                    "odds": race_total / runner_total if runner_total else None,
                }
            )
        self.race_pools[race_id] = race_total
        return rows


def row_value(row: OddsRow) -> dict[str, Any]:
    """A row as the topic's JSON value."""
    return {
        "race_id": row.race_id,
        "runner_id": row.runner_id,
        "runner_pool_amount": row.runner_pool_amount,
        "race_pool_amount": row.race_pool_amount,
        "odds": row.odds,
    }


__all__ = ["OddsRow", "OddsTopicStream", "race_id_value", "row_value"]
