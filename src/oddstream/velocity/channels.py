"""Which channel an event travels on, by its velocity: a pure function, the same for
the in-process bus and for NATS (where a channel is a subject under a prefix).

| velocity | channel | shared by |
|---|---|---|
| ``high`` | ``high.<domain>.<game type>`` | nothing: one per game type per domain |
| ``medium`` | ``medium.<game type>`` | every domain of a game type |
| ``low`` | ``low`` | everything |

A channel is dot-separated tokens of ``a-z 0-9 _ -`` (a NATS subject's tokens), so
patterns follow NATS's rules: ``*`` is one token, a final ``>`` one or more;
:func:`tier_pattern` is every channel of a tier (``high.>``, ``medium.>``, ``low``).

**Game type.** The odds service's clients send a ``GameID`` and no game type, so the
type is read from the GameID: the part before its first ``:`` (``football:epl-123`` is
``football``), lower-cased, when that part is 1 to 32 of ``a-z 0-9 _ -``; any other
GameID (``g-1``, ``x.y:1``) is of type ``other``. A provider that wants its games apart
names them ``<type>:<id>``.
"""

from __future__ import annotations

import re
from typing import Literal

Velocity = Literal["high", "medium", "low"]
#: the tiers, in the order they are drained (high first)
TIERS: tuple[Velocity, ...] = ("high", "medium", "low")
#: the game type of a GameID without a readable one
OTHER_GAME_TYPE = "other"
#: the domain of the odds service's commands (their ``Domain: Odds``)
ODDS_DOMAIN = "odds"

_TOKEN = re.compile(r"[a-z0-9_-]{1,32}")


class BadChannel(ValueError):
    """A velocity, domain, game type or pattern that makes no channel."""


def game_type_of(game_id: str) -> str:
    """The game type of a GameID: its lower-cased prefix before the first ``:``, if that
    is a channel token, else ``other``."""
    head, sep, _ = game_id.partition(":")
    head = head.lower()
    return head if sep and _TOKEN.fullmatch(head) else OTHER_GAME_TYPE


def _token(value: str, what: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise BadChannel(f"a {what} is 1 to 32 of a-z 0-9 _ - (got {value[:40]!r})")
    return value


def channel(velocity: str, game_type: str, domain: str = ODDS_DOMAIN) -> str:
    """The channel of an event of ``velocity`` for a game of ``game_type`` in
    ``domain`` (both tokens: see :func:`game_type_of`)."""
    if velocity == "high":
        return f"high.{_token(domain, 'domain')}.{_token(game_type, 'game type')}"
    if velocity == "medium":
        _token(domain, "domain")
        return f"medium.{_token(game_type, 'game type')}"
    if velocity == "low":
        _token(domain, "domain")
        _token(game_type, "game type")
        return "low"
    raise BadChannel(f"a velocity is high, medium or low (got {velocity[:20]!r})")


def tier_of(channel_or_pattern: str) -> Velocity | None:
    """The tier a channel (or a pattern) belongs to; None for a pattern spanning tiers
    (``>``, ``*.odds.*``)."""
    head = channel_or_pattern.split(".", 1)[0]
    for tier in TIERS:
        if head == tier:
            return tier
    if head in ("*", ">"):
        return None
    raise BadChannel(f"no tier is named {head[:20]!r}")


def tier_pattern(velocity: str) -> str:
    """The pattern of every channel of a tier."""
    if velocity == "low":
        return "low"
    if velocity in ("high", "medium"):
        return f"{velocity}.>"
    raise BadChannel(f"a velocity is high, medium or low (got {velocity[:20]!r})")


def check_pattern(pattern: str) -> str:
    """``pattern`` if it is a channel or a NATS-style pattern of channels, else
    :class:`BadChannel`."""
    tokens = pattern.split(".")
    for i, token in enumerate(tokens):
        if token == ">" and i == len(tokens) - 1:
            continue
        if token != "*" and not _TOKEN.fullmatch(token):
            raise BadChannel(f"not a channel pattern: {pattern[:80]!r}")
    return pattern


def matches(pattern: str, channel_name: str) -> bool:
    """Whether ``channel_name`` is one of ``pattern``'s (NATS's rules)."""
    want = pattern.split(".")
    have = channel_name.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(have) == len(want)


def tiers_of(pattern: str) -> tuple[Velocity, ...]:
    """The tiers whose channels ``pattern`` can match, high first."""
    tier = tier_of(pattern)
    return TIERS if tier is None else (tier,)


def per_tier(pattern: str) -> dict[Velocity, str]:
    """``pattern`` split by tier: for each tier it can match, the pattern of that tier's
    channels it matches (``>`` is ``high.>``, ``medium.>`` and ``low``; ``*.odds.*`` is
    ``high.odds.*``, ``medium.odds.*`` and ``low.odds.*``, which no channel is, but
    harmless). So each tier is subscribed on its own connection and no other."""
    check_pattern(pattern)
    head, _, rest = pattern.partition(".")
    if head not in ("*", ">"):
        return {tier_of(pattern) or "low": pattern}
    if head == ">":
        return {t: tier_pattern(t) for t in TIERS}
    return {t: f"{t}.{rest}" if rest else t for t in TIERS}
