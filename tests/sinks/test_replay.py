"""Replaying a sink's dead letters (``oddstream dlq replay``): the record written into the
connector's table through its current configuration, exactly once, with the original
or a fixed payload; refused again when it still fails; an error when the connector is
gone."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from oddstream.cli import app as cli
from oddstream.domain.deadletters import DeadLetter
from oddstream.eventstore import open_store
from oddstream.eventstore.sqlite import SqliteEventStore
from oddstream.integrations.kafka.rest_proxy import EventStoreTopics, ProducedRecord
from oddstream.integrations.kafka.sink_replay import SinkReplayError, sink_replayer
from oddstream.integrations.kafka.sink_source import TopicSource
from oddstream.runtime.deadletters import DeadLetterStore, LetterResolved
from oddstream.sinks import ConnectorManager

from .conftest import SCHEMA, Target, eventually, ids, record, settings

pytestmark = pytest.mark.timeout(120)


def bare(i: int) -> ProducedRecord:
    """A json record without Connect's envelope: the sink cannot write it (no_schema)."""
    return ProducedRecord({"id": i, "name": "bare"}, format="json")


def fixed(payload: bytes, i: int) -> bytes:
    """The letter's record with its value put in Connect's envelope."""
    data = orjson.loads(payload)
    data["value"] = {"schema": SCHEMA, "payload": {"id": i, "name": "fixed"}}
    return orjson.dumps(data)


async def _sink_with_letters(store: Any, target: Target, **extra: Any) -> tuple[str, str, str]:
    """A connector (insert mode, no key: a row written twice would be two rows) that
    dead-lettered a bare record and a duplicate; answers the table, the connector and
    its dead-letter topic. The manager is stopped after."""
    topic, table, name = f"t{uuid.uuid4().hex[:8]}", target.table(), target.sink_name()
    dlq = f"dlq-{name}"
    topics = await EventStoreTopics.open(store)
    await topics.append(topic, [record(1), bare(2), record(3)])
    config = {
        **settings(target, topic, table),
        "pk.mode": "none",
        "pk.fields": "",
        "errors.tolerance": "all",
        "errors.deadletterqueue.topic.name": dlq,
        **extra,
    }
    manager = ConnectorManager(store, lambda c: TopicSource(c))
    await manager.start()
    try:
        await manager.create(name, config)
        await eventually(lambda: target.table_exists(table) and target.count(table) == 2)
        await eventually(lambda: _letters(store, dlq, 1))
    finally:
        await manager.stop()
    return table, name, dlq


async def _letters(store: Any, source: str, n: int) -> bool:
    return len(await DeadLetterStore(store).letters(source)) == n


async def _only_letter(store: Any, source: str) -> DeadLetter:
    (letter,) = await DeadLetterStore(store).letters(source)
    return await DeadLetterStore(store).get(letter.letter_id)


async def test_a_sinks_letter_is_replayed_once_into_its_table(tmp_path: Path, target: Target):
    store = await SqliteEventStore.open(tmp_path / "events.db")
    try:
        table, name, dlq = await _sink_with_letters(store, target)
        letters = DeadLetterStore(store)
        letter = await _only_letter(store, dlq)
        assert letter.reason == "no_schema"
        assert letter.letter.context["connector"] == name

        replayers = {dlq: await sink_replayer(store, letter)}
        still = await letters.replay(letter, replayers)  # the record as it was: refused
        assert (still.status, still.reason) == ("open", "no_schema")
        payload = letter.letter.payload.encode()
        done = await letters.replay(still, replayers, fixed(payload, 20))
        assert (done.status, done.attempts[-1].outcome) == ("resolved", "stored")
        assert sorted(ids(target, table)) == [1, 3, 20]
        with pytest.raises(LetterResolved):
            await letters.replay(done, replayers, fixed(payload, 20))

        # a crash after the write, before the letter was resolved, or two replayers at
        # once: the target's marker row answers "repeated", nothing is written again
        replay = await sink_replayer(store, letter)
        answers = await asyncio.gather(
            replay(fixed(payload, 20)), replay(fixed(payload, 20)), replay(fixed(payload, 21))
        )
        assert [a.outcome for a in answers] == ["repeated"] * 3
        assert sorted(ids(target, table)) == [1, 3, 20]
    finally:
        await store.close()


async def test_concurrent_first_replays_write_once(tmp_path: Path, target: Target):
    store = await SqliteEventStore.open(tmp_path / "events.db")
    try:
        table, _, dlq = await _sink_with_letters(store, target)
        letter = await _only_letter(store, dlq)
        payload = fixed(letter.letter.payload.encode(), 30)
        replays = [await sink_replayer(store, letter) for _ in range(3)]
        answers = await asyncio.gather(*(r(payload) for r in replays))
        assert sorted(a.outcome for a in answers) == ["repeated", "repeated", "stored"]
        assert sorted(ids(target, table)) == [1, 3, 30]
    finally:
        await store.close()


async def test_a_replay_still_failing_is_refused_and_a_deleted_connector_is_an_error(
    tmp_path: Path,
) -> None:
    target = Target("sqlite", f"jdbc:sqlite:{tmp_path / 'a.db'}")
    store = await SqliteEventStore.open(tmp_path / "events.db")
    try:
        table, name, dlq = await _sink_with_letters(store, target)
        letters = DeadLetterStore(store)
        letter = await _only_letter(store, dlq)
        replayers = {dlq: await sink_replayer(store, letter)}
        wrong = orjson.loads(fixed(letter.letter.payload.encode(), 40))
        wrong["value"]["payload"]["id"] = None  # the schema's id is not optional
        still = await letters.replay(letter, replayers, orjson.dumps(wrong))
        assert (still.status, still.reason) == ("open", "constraint_violation")
        odd = await letters.replay(still, replayers, b'{"topic": 1}')
        assert (odd.status, odd.reason) == ("open", "bad_record")

        manager = ConnectorManager(store, lambda c: TopicSource(c))
        await manager.start()
        await manager.delete(name)
        await manager.stop()
        with pytest.raises(SinkReplayError, match=f"connector {name} no longer exists"):
            await sink_replayer(store, letter)
        assert sorted(ids(target, table)) == [1, 3]
    finally:
        await store.close()
        target.close()


def test_dlq_replay_on_the_command_line(tmp_path: Path) -> None:
    target = Target("sqlite", f"jdbc:sqlite:{tmp_path / 'a.db'}")
    url = f"sqlite:///{tmp_path}/events.db"

    async def setup() -> tuple[str, str, DeadLetter]:
        store = await open_store(url)
        try:
            table, _, dlq = await _sink_with_letters(store, target)
            return table, dlq, await _only_letter(store, dlq)
        finally:
            await store.close()

    try:
        table, dlq, letter = asyncio.run(setup())
        runner = CliRunner()
        listed = runner.invoke(cli, ["dlq", "list", "--source", dlq, "--store", url])
        assert letter.letter_id[:8] in listed.output
        refused = runner.invoke(cli, ["dlq", "replay", letter.letter_id, "--store", url])
        assert refused.exit_code == 1
        assert "still refused" in refused.output
        assert "no_schema" in refused.output
        fix = tmp_path / "fixed.json"
        fix.write_bytes(fixed(letter.letter.payload.encode(), 50))
        args = ["dlq", "replay", letter.letter_id[:8], "--payload", str(fix), "--store", url]
        done = runner.invoke(cli, args)
        assert done.exit_code == 0, done.output
        assert f"resolved: {letter.letter_id} stored ({table})" in done.output
        again = runner.invoke(cli, args)
        assert again.exit_code == 1
        assert "resolved already" in again.output
        assert sorted(ids(target, table)) == [1, 3, 50]
        shown = json.loads(
            runner.invoke(cli, ["dlq", "show", letter.letter_id, "--store", url]).output
        )
        assert shown["status"] == "resolved"
    finally:
        target.close()
