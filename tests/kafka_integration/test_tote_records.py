"""No record a client sends can stop the POC bridge (issue 9, item 4).

* the parser is total: any JSON value in any field is a bet within the tote's bounds or a
  :class:`NotABet` with a reason, never another exception (hypothesis);
* each record of a batch is either in a command or refused with a reason, and the
  commands decide without raising and store as JSON;
* over HTTP, records the bridge used to retry forever (``AMOUNT`` 1e308, ``2**70`` as a
  JSON integer) are refused once, with a reason, at once; the bridge goes on and its
  checkpoint passes them, so a restart does not meet them again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oddstream.domain.tote.events import ContributionsAdded
from oddstream.domain.tote.pools import PoolType
from oddstream.domain.tote.race import (
    MAX_RACE_ID_LENGTH,
    MAX_STAKE_CENTS,
    AddContributions,
    ToteRejection,
    decide,
)
from oddstream.eventstore import EventStore
from oddstream.eventstore.prepare import validate_stream_id
from oddstream.integrations.kafka.rest_proxy import (
    EventStoreTopics,
    RecordError,
    RestProxy,
    rest_proxy_app,
)
from oddstream.integrations.kafka.schema_registry import SchemaRegistry, ensure_tote_subjects
from oddstream.integrations.kafka.tote_bridge import CHECKPOINT, TotePoolBridge
from oddstream.integrations.kafka.tote_records import (
    BETS_TOPIC,
    NotABet,
    contribution_commands,
    parse_bet,
)
from oddstream.runtime.codec import registry as codec
from oddstream.runtime.race_writer import RaceWriter, race_stream

from .test_tote_bridge import Bridge, compat_race, produced

WIN_RACE = compat_race("1", source=BETS_TOPIC)

# ----------------------------------------------------------------- arbitrary JSON values
_NASTY = [
    1e308,
    -1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    -0.0,
    5e-324,
    2**63,
    2**70,
    -(2**70),
    "",
    " ",
    "a\x00b",
    "\ud800",
    "x" * 300,
    "1 ",
    True,
    False,
    None,
]
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),  # NaN, ±inf, -0.0, subnormals
    st.text(),
    st.sampled_from(_NASTY),
    st.builds(lambda: 10**5000),  # str() of it raises ValueError (int_max_str_digits)
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_names = st.sampled_from(
    ["RACE_ID", "RUNNER_ID", "AMOUNT", "race_id", "Runner_Id", "amount", "other", ""]
)
records = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"RACE_ID": json_values, "RUNNER_ID": json_values, "AMOUNT": json_values}
    ),
    st.dictionaries(_names, json_values, max_size=5),
    st.fixed_dictionaries(
        {
            "RACE_ID": st.one_of(st.integers(-3, 3), st.sampled_from(_NASTY), st.text()),
            "RUNNER_ID": st.one_of(st.integers(-2, 42), st.sampled_from(_NASTY)),
            "AMOUNT": st.one_of(
                st.floats(), st.integers(), st.sampled_from([*_NASTY, MAX_STAKE_CENTS / 100])
            ),
        }
    ),
)


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"AMOUNT": [value]}
    return value


@settings(max_examples=400, deadline=None)
@given(value=records)
def test_the_parser_is_total(value: Any) -> None:
    try:
        race_id, runner, cents = parse_bet(value)
    except NotABet as exc:
        reason = str(exc)
    else:
        assert validate_stream_id(race_stream(race_id)) == race_stream(race_id)
        assert 0 < len(race_id) <= MAX_RACE_ID_LENGTH
        assert type(runner) is int
        assert -(2**31) <= runner < 2**31
        assert type(cents) is int
        assert abs(cents) <= MAX_STAKE_CENTS  # zero included: the POC's close-off records
        return
    assert reason  # a refusal always says why


@settings(max_examples=200, deadline=None)
@given(values=st.lists(records, max_size=12), base=st.integers(0, 10**6))
def test_each_record_is_a_bet_or_a_refusal_with_a_reason(values: list[Any], base: int) -> None:
    errors: dict[int, RecordError] = {}
    commands = contribution_commands(BETS_TOPIC, base, values, errors)
    in_commands = [o for c in commands for o in c.refs]
    assert sorted(in_commands + list(errors)) == list(range(base, base + len(values)))
    assert all(e.error_code == 2 and e.error.startswith("not a bet: ") for e in errors.values())
    for command in commands:
        # the race decides without raising, and what it decides can be stored
        try:
            events = decide(WIN_RACE, command.__class__(**{**_fields(command), "race_id": "1"}))
        except ToteRejection:
            continue
        for event in events:
            assert isinstance(event, ContributionsAdded)
            orjson.dumps(codec.to_new_event(event).data)


def _fields(command: AddContributions) -> dict[str, Any]:
    return {f: getattr(command, f) for f in command.__struct_fields__}


def test_deep_nesting_and_odd_keys_are_refusals() -> None:
    for value in (_deep(5000), {1: 2}, {"AMOUNT": _deep(3000), "RACE_ID": 1, "RUNNER_ID": 1}):
        with pytest.raises(NotABet):
            parse_bet(value)


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (1e308, "out of range"),
        (2**70, "out of range"),
        (float(2**70), "out of range"),
        (10**5000, "out of range"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (MAX_STAKE_CENTS / 100 + 0.01, "out of range"),
    ],
    ids=["1e308", "2**70", "2.0**70", "10**5000", "nan", "inf", "max+1c"],
)
def test_amounts_no_bet_can_have_are_refused_with_a_reason(amount: Any, reason: str) -> None:
    with pytest.raises(NotABet, match=reason):
        parse_bet({"RACE_ID": 1, "RUNNER_ID": 1, "AMOUNT": amount})
    assert parse_bet({"RACE_ID": 1, "RUNNER_ID": 1, "AMOUNT": MAX_STAKE_CENTS / 100}) == (
        "1",
        1,
        MAX_STAKE_CENTS,
    )


def test_huge_ids_are_refused_with_a_reason() -> None:
    cases = [
        (2**63, 1, "RACE_ID"),
        (10**5000, 1, "RACE_ID"),
        (1, 2**31, "RUNNER_ID"),
        (1, 10**5000, "RUNNER_ID"),
    ]
    for race, runner, what in cases:
        with pytest.raises(NotABet, match=f"{what} is out of range"):
            parse_bet({"RACE_ID": race, "RUNNER_ID": runner, "AMOUNT": 1.0})
    for race in ("a\x00", "x" * (MAX_RACE_ID_LENGTH + 1), "\ud800", "r "):
        with pytest.raises(NotABet, match="cannot be used"):
            parse_bet({"RACE_ID": race, "RUNNER_ID": 1, "AMOUNT": 1.0})


def test_the_race_refuses_contributions_above_the_maximum_stake() -> None:
    too_much = MAX_STAKE_CENTS + 1
    (event,) = decide(
        WIN_RACE,
        AddContributions(
            race_id="1",
            source=BETS_TOPIC,
            refs=(0, 1, 2),
            runners=(1, 1, 1),
            amounts_cents=(too_much, 100, -too_much),
        ),
    )
    assert isinstance(event, ContributionsAdded)
    assert event.refs == (1,)
    assert [(o, code) for o, code, _ in event.rejected] == [(0, "bad_amount"), (2, "bad_amount")]


# ----------------------------------------------------------------- over HTTP, with a bridge
@pytest.fixture
async def poc(fast_store: EventStore) -> AsyncIterator[tuple[httpx.AsyncClient, Bridge]]:
    registry = await SchemaRegistry.open(fast_store)
    await ensure_tote_subjects(registry)
    async with Bridge(fast_store) as b:
        app = rest_proxy_app(RestProxy(b.topics, registry))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rp") as client:
            yield client, b


JSON = {"Content-Type": "application/vnd.kafka.json.v2+json"}


async def test_records_that_overflow_are_refused_once_and_the_bridge_goes_on(
    poc: tuple[httpx.AsyncClient, Bridge], fast_store: EventStore
) -> None:
    client, b = poc
    # 2**70 as a JSON integer, 1e308 and a float that rounds to 0 cents after *100
    body = (
        b'{"records": ['
        b'{"value": {"RACE_ID": 1, "RUNNER_ID": 1, "AMOUNT": 1e308}},'
        b'{"value": {"RACE_ID": 1, "RUNNER_ID": 1, "AMOUNT": 1180591620717411303424}},'
        b'{"value": {"RACE_ID": 1180591620717411303424, "RUNNER_ID": 1, "AMOUNT": 1}},'
        b'{"value": {"RACE_ID": 1, "RUNNER_ID": 1, "AMOUNT": -0.0}},'
        b'{"value": {"RACE_ID": 1, "RUNNER_ID": 2, "AMOUNT": 3.5}}'
        b"]}"
    )
    async with asyncio.timeout(10):  # the bridge used to retry the batch forever
        response = await client.post(f"/topics/{BETS_TOPIC}", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    offsets = response.json()["offsets"]
    assert [o["offset"] for o in offsets] == [0, 1, 2, 3, 4]
    # all stored, so all produced; the three that are no bet are refused downstream,
    # with their reasons, and -0.0 is a zero bet (a close-off record)
    assert [o["error_code"] for o in offsets] == [None] * 5
    reasons = dict(b.bridge.refusals)
    assert sorted(reasons) == [0, 1, 2]
    assert "AMOUNT is out of range" in reasons[0]
    assert "AMOUNT is out of range" in reasons[1]
    assert "RACE_ID" in reasons[2]
    # the checkpoint passed the batch: a restart does not meet it again
    head = (await fast_store.read_stream(f"topic-{BETS_TOPIC}", backwards=True, limit=1))[0]
    async with asyncio.timeout(10):
        while await fast_store.get_checkpoint(CHECKPOINT) < head.position:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # saved within the checkpoint interval
    # and the next batch is a bet, answered at once
    good = {"records": [{"value": {"RACE_ID": 1, "RUNNER_ID": 3, "AMOUNT": 1}}]}
    async with asyncio.timeout(10):
        again = await client.post(f"/topics/{BETS_TOPIC}", content=json.dumps(good), headers=JSON)
    assert again.json()["offsets"][0]["error_code"] is None
    # the zero bet is on runner 1's line, with nothing staked
    stakes = (await b.writer.state("1")).pools[PoolType.WIN].stakes
    assert stakes == {(1,): 0, (2,): 350, (3,): 100}


async def test_a_record_that_breaks_the_parser_is_refused_not_retried(
    fast_store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: should the parser ever raise something else, that record is
    refused (it would fail the same way forever) and the bridge goes on."""
    import oddstream.integrations.kafka.tote_records as records_module

    real = records_module.parse_bet

    def buggy(value: Any) -> tuple[str, int, int]:
        if isinstance(value, dict) and value.get("boom"):
            raise OverflowError("a bug")
        return real(value)

    monkeypatch.setattr(records_module, "parse_bet", buggy)
    writer = RaceWriter(fast_store)
    topics = await EventStoreTopics.open(fast_store)
    bridge = TotePoolBridge(fast_store, writer, topics, checkpoint_seconds=0)
    await bridge.start()
    try:
        async with asyncio.timeout(10):
            offsets = await topics.produce(
                BETS_TOPIC, produced([{"boom": 1}, {"RACE_ID": 4, "RUNNER_ID": 1, "AMOUNT": 2}])
            )
        assert [o.error_code for o in offsets] == [None, None]
        assert list(bridge.refusals) == [(0, "not a bet: the record could not be read")]
    finally:
        await bridge.stop()
