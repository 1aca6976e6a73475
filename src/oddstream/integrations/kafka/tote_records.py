"""Records of the ``tote_win_bets`` topic as the tote's commands (pure, no I/O).

A record (``RUNNER_ID``, ``RACE_ID``, ``AMOUNT``, field names in any case) is a bet of
the Kafka POC: ``AMOUNT`` in dollars, negative withdraws stake, zero changes nothing (the
POC's close-off records, which make ksqlDB emit a race's final odds rows). On the tote it
is a *contribution* to the win pool of a race scheduled to take them from this topic
(:class:`~oddstream.domain.tote.commands.AddContributions`); one stored batch of the
topic becomes one command per race.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from ...domain.tote.race import MAX_RACE_ID_LENGTH, MAX_STAKE_CENTS, AddContributions
from ...eventstore import InvalidEvent
from ...eventstore.prepare import validate_stream_id
from ...runtime.race_writer import race_stream
from .rest_proxy import RecordError

log = logging.getLogger(__name__)

#: the topic clients write the POC's bets to
BETS_TOPIC = "tote_win_bets"
#: the topic the bridge writes the POC's odds rows to (nobody else may)
ODDS_TOPIC = "tote_win_bet_race_runners_odds"
#: A race's items of one batch go in commands of at most this many (events stay small).
MAX_BETS_PER_COMMAND = 4096


class NotABet(ValueError):
    """A record that can never become a bet; the message says why."""


#: Beyond these no record names a race (a 64-bit id) or a runner (a 32-bit number).
_RACE_INT_LIMIT = 2**63
_RUNNER_LIMIT = 2**31
#: The largest amount a record may carry, either way (the tote's maximum stake).
_MAX_AMOUNT = MAX_STAKE_CENTS / 100


def _field(value: dict[Any, Any], name: str) -> Any:
    for key, item in value.items():
        if isinstance(key, str) and key.lower() == name:
            return item
    return None


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def parse_bet(value: Any) -> tuple[str, int, int]:
    """``(race_id, runner, amount_cents)`` from a POC record, or :class:`NotABet` saying
    why not. Total on any value: nothing else is ever raised, whatever a client sent."""
    if not isinstance(value, dict):
        raise NotABet("the record's value is not an object")
    if len(value) == 3 and "RACE_ID" in value and "RUNNER_ID" in value and "AMOUNT" in value:
        race, runner, amount = value["RACE_ID"], value["RUNNER_ID"], value["AMOUNT"]
    else:
        race, runner, amount = (_field(value, n) for n in ("race_id", "runner_id", "amount"))
    if isinstance(race, bool) or not isinstance(race, int | str) or race == "":
        raise NotABet("RACE_ID is missing or not an int")
    if isinstance(race, int):
        if not -_RACE_INT_LIMIT <= race < _RACE_INT_LIMIT:
            raise NotABet("RACE_ID is out of range (a 64-bit integer)")
        race_id = str(race)
    else:
        race_id = race
        if len(race_id) > MAX_RACE_ID_LENGTH:
            raise NotABet(
                f"RACE_ID {_short(race_id)} cannot be used: "
                f"a race id is at most {MAX_RACE_ID_LENGTH} characters"
            )
        try:  # the race's stream must be nameable: no control characters, no lone surrogates…
            validate_stream_id(race_stream(race_id))
        except InvalidEvent as exc:
            raise NotABet(f"RACE_ID {_short(race_id)} cannot be used: {exc}") from None
    if isinstance(runner, bool) or not isinstance(runner, int):
        raise NotABet("RUNNER_ID is missing or not an int")
    if not -_RUNNER_LIMIT <= runner < _RUNNER_LIMIT:
        raise NotABet("RUNNER_ID is out of range (a 32-bit integer)")
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise NotABet("AMOUNT is missing or not a number")
    if isinstance(amount, float) and not math.isfinite(amount):
        raise NotABet("AMOUNT is not a finite number")
    # compared before any arithmetic: 1e308 × 100 is infinite, and round(inf) raises
    if not -_MAX_AMOUNT <= amount <= _MAX_AMOUNT:
        raise NotABet(f"AMOUNT is out of range (at most {_MAX_AMOUNT:.0f} either way)")
    # zero is a bet too: the POC's close-off records, which make the odds rows flow
    return race_id, runner, round(amount * 100)


def contribution_commands(
    source: str, base: int, values: Sequence[Any], errors: dict[int, RecordError]
) -> list[AddContributions]:
    """The commands one stored batch makes: per race, in record order, at most
    :data:`MAX_BETS_PER_COMMAND` bets each. Records that are not bets go to ``errors``."""
    races: dict[str, tuple[list[int], list[int], list[int]]] = {}
    names: dict[int, str] = {}  # race ids as text, made once per batch
    for i, value in enumerate(values):
        # The POC's own records (upper-case fields, int ids, a double amount) take the
        # short way; anything else goes through parse_bet, which says what is wrong.
        if (
            type(value) is dict
            and len(value) == 3
            and type(race := value.get("RACE_ID")) is int
            and -_RACE_INT_LIMIT <= race < _RACE_INT_LIMIT
            and type(runner := value.get("RUNNER_ID")) is int
            and -_RUNNER_LIMIT <= runner < _RUNNER_LIMIT
            and type(amount := value.get("AMOUNT")) is float
            and -_MAX_AMOUNT <= amount <= _MAX_AMOUNT
        ):
            cents = round(amount * 100)
            race_id = names.get(race)
            if race_id is None:
                race_id = names[race] = str(race)
        else:
            try:
                race_id, runner, cents = parse_bet(value)
            except NotABet as exc:
                errors[base + i] = RecordError(2, f"not a bet: {exc}")
                continue
            except Exception:  # a bug, never a reason to stop: this record fails alike forever
                log.exception("reading tote_win_bets record %d failed", base + i)
                errors[base + i] = RecordError(2, "not a bet: the record could not be read")
                continue
        lists = races.get(race_id)
        if lists is None:
            lists = races[race_id] = ([], [], [])
        lists[0].append(base + i)
        lists[1].append(runner)
        lists[2].append(cents)
    out = []
    step = MAX_BETS_PER_COMMAND
    for race_id, (offsets, runners, amounts) in races.items():
        for k in range(0, len(offsets), step):
            out.append(
                AddContributions(
                    race_id=race_id,
                    source=source,
                    refs=tuple(offsets[k : k + step]),
                    runners=tuple(runners[k : k + step]),
                    amounts_cents=tuple(amounts[k : k + step]),
                )
            )
    return out


__all__ = [
    "BETS_TOPIC",
    "MAX_BETS_PER_COMMAND",
    "ODDS_TOPIC",
    "NotABet",
    "contribution_commands",
    "parse_bet",
]
