"""How race events written before the Kafka integration became optional read today.

Until then the race aggregate knew the bridge's bets itself: a race scheduled for the
``tote_win_bets`` topic carried ``compat: true`` (``tote.RaceScheduled`` v1), and its
bets were ``tote.CompatBetPlaced`` (one per record, the oldest form) or
``tote.CompatBetsPlaced`` (one per batch). They are stored in ``race-<id>`` streams for
good, so every process (with the integration switched on or not: the tote read model
reads every race) decodes them as the events that replaced them:

* ``RaceScheduled`` v1 → v2: ``compat: true`` becomes ``contributions_from:
  "tote_win_bets"`` (the only topic the bridge ever read); the flag is dropped.
* ``CompatBetsPlaced`` → ``ContributionsAdded``: ``offsets`` become ``refs``.
* ``CompatBetPlaced`` → a ``ContributionsAdded`` of one item; its bet id was
  ``{topic}-{offset}``.

This module imports nothing of the integration (the codec imports it at start).
"""

from __future__ import annotations

from typing import Any

from ...domain.tote.events import ContributionsAdded
from ...eventstore.registry import EventRegistry

#: the topic every race flagged ``compat`` took its bets from
LEGACY_SOURCE = "tote_win_bets"
OLD_BET = "tote.CompatBetPlaced"
OLD_BETS = "tote.CompatBetsPlaced"


def _race_scheduled_v1(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    compat = data.pop("compat", False)
    data.setdefault("contributions_from", LEGACY_SOURCE if compat else None)
    return data


def _old_bets(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    data["refs"] = data.pop("offsets")
    return data


def _old_bet(data: dict[str, Any]) -> dict[str, Any]:
    source, _, offset = str(data["bet_id"]).rpartition("-")
    return {
        "race_id": data["race_id"],
        "source": source or LEGACY_SOURCE,
        "refs": [int(offset) if offset.isdigit() else -1],
        "runners": [data["runner"]],
        "amounts_cents": [data["amount_cents"]],
        "rejected": [],
    }


def register_legacy_events(registry: EventRegistry) -> None:
    """Teach ``registry`` the old names and shapes. Call it before the current events
    are registered: an event class is written under the name registered last."""
    registry.register(ContributionsAdded, name=OLD_BET, version=2)
    registry.register(ContributionsAdded, name=OLD_BETS, version=2)
    registry.upcaster(OLD_BET, from_version=1)(_old_bet)
    registry.upcaster(OLD_BETS, from_version=1)(_old_bets)
    registry.upcaster("tote.RaceScheduled", from_version=1)(_race_scheduled_v1)


__all__ = ["LEGACY_SOURCE", "OLD_BET", "OLD_BETS", "register_legacy_events"]
