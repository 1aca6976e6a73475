"""The channel of an event by its velocity, game type and domain (a pure function)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oddstream.velocity.channels import (
    TIERS,
    BadChannel,
    channel,
    check_pattern,
    game_type_of,
    matches,
    per_tier,
    tier_of,
    tier_pattern,
)


@pytest.mark.parametrize(
    ("velocity", "game_type", "domain", "expected"),
    [
        ("high", "football", "odds", "high.odds.football"),
        ("high", "tennis", "odds", "high.odds.tennis"),
        ("high", "football", "scores", "high.scores.football"),
        ("medium", "football", "odds", "medium.football"),
        ("medium", "football", "scores", "medium.football"),
        ("low", "football", "odds", "low"),
        ("low", "tennis", "scores", "low"),
    ],
)
def test_the_channel_of_each_tier(velocity, game_type, domain, expected) -> None:
    assert channel(velocity, game_type, domain) == expected


@pytest.mark.parametrize(
    ("game_id", "expected"),
    [
        ("football:epl-2026-ars-che", "football"),
        ("Tennis:wimbledon:r1", "tennis"),
        ("horse_racing:ascot-3", "horse_racing"),
        ("g-1", "other"),  # no type named
        (":g-1", "other"),  # an empty one
        ("x.y:1", "other"),  # a dot would be two tokens on NATS
        ("a" * 33 + ":1", "other"),  # too long
        ("a" * 32 + ":1", "a" * 32),
    ],
)
def test_the_game_type_is_read_from_the_game_id(game_id, expected) -> None:
    assert game_type_of(game_id) == expected


@pytest.mark.parametrize(
    ("velocity", "game_type", "domain"),
    [
        ("urgent", "football", "odds"),
        ("high", "Football", "odds"),
        ("high", "foot.ball", "odds"),
        ("medium", "football", "od ds"),
        ("low", "", "odds"),
        ("high", "football", ">"),
    ],
)
def test_what_makes_no_channel_is_refused(velocity, game_type, domain) -> None:
    with pytest.raises(BadChannel):
        channel(velocity, game_type, domain)


def test_patterns_follow_nats_rules() -> None:
    assert matches("high.>", "high.odds.football")
    assert not matches("high.>", "high")
    assert matches("high.*.football", "high.odds.football")
    assert not matches("high.*.football", "high.odds.tennis")
    assert matches(">", "low")
    assert matches("low", "low")
    assert not matches("low", "medium.football")
    assert not matches("medium.*", "medium.football.x")
    for bad in ("high.>.x", "high..x", "HIGH.>", "high odds"):
        with pytest.raises(BadChannel):
            check_pattern(bad)


def test_a_pattern_is_split_by_tier() -> None:
    assert per_tier(">") == {"high": "high.>", "medium": "medium.>", "low": "low"}
    assert per_tier("high.odds.*") == {"high": "high.odds.*"}
    assert per_tier("low") == {"low": "low"}
    assert set(per_tier("*.football")) == set(TIERS)


tokens = st.from_regex(r"[a-z0-9_-]{1,32}", fullmatch=True)


@given(st.sampled_from(TIERS), tokens, tokens)
def test_a_channel_is_in_its_tier_and_no_other(velocity, game_type, domain) -> None:
    name = channel(velocity, game_type, domain)
    assert tier_of(name) == velocity
    for tier in TIERS:
        assert matches(tier_pattern(tier), name) == (tier == velocity)


@given(tokens, tokens, tokens, tokens)
def test_high_channels_are_per_game_type_and_domain_medium_per_game_type(g1, g2, d1, d2) -> None:
    assert (channel("high", g1, d1) == channel("high", g2, d1)) == (g1 == g2)
    assert (channel("high", g1, d1) == channel("high", g1, d2)) == (d1 == d2)
    assert (channel("medium", g1, d1) == channel("medium", g2, d2)) == (g1 == g2)
    assert channel("low", g1, d1) == channel("low", g2, d2)


@given(st.sampled_from(TIERS), st.text(max_size=120))
def test_any_game_id_makes_a_plain_subject(velocity, game_id) -> None:
    """A GameID with dots, wildcards, spaces or anything else never reaches a subject:
    the channel is plain tokens, matched by its own tier's pattern only."""
    import re

    name = channel(velocity, game_type_of(game_id))
    assert re.fullmatch(r"[a-z0-9_-]{1,32}(\.[a-z0-9_-]{1,32})*", name)
    assert [t for t in TIERS if matches(tier_pattern(t), name)] == [velocity]
