"""Replaying a SQL sink's dead letters (:func:`sink_replayer`).

A sink's letter (source = its connector's ``errors.deadletterqueue.topic.name``, or
``sinks``) holds one record as ``read_topic`` shows it, and names its connector in its
context. The replayer reads the record back as the sink would (:class:`TopicSource`),
with the connector's configuration **as it is now** (a config fixed since applies), and
writes it into the connector's target table **exactly once**: the write commits, in the
same transaction of the target, a row of the offsets table named for the letter
(:func:`marker_name`), so a second replay of it — concurrent, or after a crash between
the write and the letter's ``Resolved`` — finds the row and writes nothing
(``repeated``). The connector's own position is not touched.
"""

from __future__ import annotations

import asyncio
import time

import orjson

from ...domain.deadletters import DeadLetter
from ...eventstore import EventStore
from ...runtime.deadletters import DeadLetterError, Refusal, ReplayAnswer, Replayer
from ...sinks.config import JdbcSinkConfig, SinkConfigError
from ...sinks.connectors import ConnectorNotFound, stored_config
from ...sinks.errors import PositionConflict
from ...sinks.failures import describe, is_transient, reason_of
from ...sinks.schema import SinkRecord
from ...sinks.writer import JdbcSink
from .rest_proxy.records import TopicRecord
from .schema_registry import SchemaRegistry
from .sink_source import TopicSource

#: the record's fields, as ``TopicRecord.to_json`` writes them
_FIELDS = frozenset(TopicRecord._fields)
#: tries of a write whose target was unavailable (a deadlock between two replays)
_TRIES = 4


class SinkReplayError(DeadLetterError):
    """A sink's letter that cannot be replayed now, through no fault of its record: the
    letter names no connector, the connector no longer exists or its config is refused,
    or its target is unreachable. The letter stays open."""


def marker_name(connector: str, letter_id: str) -> str:
    """The offsets-table row that says letter ``letter_id`` was written by a replay.
    Control characters separate the parts: no connector can have this name."""
    return f"{connector}\x1fdlq-replay\x1f{letter_id}"


def _refused(reason: str, message: str, path: str = "") -> ReplayAnswer:
    return ReplayAnswer("refused", refusal=Refusal(reason, path, message))


def _record_of(raw: bytes) -> TopicRecord | ReplayAnswer:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _refused("bad_record", f"the payload is not JSON: {exc}")
    if not isinstance(data, dict) or set(data) != _FIELDS:
        return _refused(
            "bad_record",
            f"the payload is not a record as read_topic shows it (fields {sorted(_FIELDS)})",
        )
    try:
        record = TopicRecord(**data)
        if not isinstance(record.topic, str) or not isinstance(record.format, str):
            raise TypeError("topic and format are strings")
        for name in ("partition", "offset", "timestamp"):
            if type(getattr(record, name)) is not int:
                raise TypeError(f"{name} is an integer")
    except TypeError as exc:
        return _refused("bad_record", f"the payload's record: {exc}")
    return record


async def sink_replayer(
    store: EventStore, letter: DeadLetter, registry: SchemaRegistry | None = None
) -> Replayer:
    """The replayer of ``letter``, a sink's dead letter, through its connector's current
    configuration (:class:`SinkReplayError` when it cannot be had). ``registry``: the
    Schema Registry for Avro records (by default one opened read-only on the log)."""
    connector = letter.letter.context.get("connector")
    if not connector:
        raise SinkReplayError(
            f"dead letter {letter.letter_id} names no connector: it is not a sink's letter"
        )
    try:
        config = await stored_config(store, connector)
    except ConnectorNotFound:
        raise SinkReplayError(
            f"connector {connector} no longer exists: create it again (its letters are "
            "written through its configuration)"
        ) from None
    except SinkConfigError as exc:
        raise SinkReplayError(f"connector {connector}'s stored config is refused: {exc}") from None
    if registry is None:
        registry = await SchemaRegistry.open(store)
    source = TopicSource(config, registry)
    marker = marker_name(connector, letter.letter_id)

    async def replay(raw: bytes) -> ReplayAnswer:
        record = _record_of(raw)
        if isinstance(record, ReplayAnswer):
            return record
        if not config.follows(record.topic):
            return _refused(
                "topic_not_followed",
                f"connector {connector} no longer follows topic {record.topic!r}",
                "topic",
            )
        found = await source.read(record)
        if isinstance(found, Refusal):
            return ReplayAnswer("refused", refusal=found)
        return await asyncio.to_thread(_write, config, marker, found, connector)

    return replay


def _write(config: JdbcSinkConfig, marker: str, record: SinkRecord, connector: str) -> ReplayAnswer:
    """Write ``record`` unless the marker says it was; a deadlock or lock timeout (two
    replays inserting the marker row at once, on MariaDB) is tried again."""
    for attempt in range(_TRIES):
        try:
            return _write_once(config, marker, record, connector)
        except SinkReplayError:
            if attempt == _TRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _write_once(
    config: JdbcSinkConfig, marker: str, record: SinkRecord, connector: str
) -> ReplayAnswer:
    sink = JdbcSink(marker, config)
    try:
        target = sink.table_for(record.topic)
        if sink.stored_position() is not None:
            return ReplayAnswer("repeated", target=target)
        try:
            result = sink.write([record], after=0, position=1)
        except PositionConflict:
            return ReplayAnswer("repeated", target=target)  # another replay wrote it
        except Exception as exc:
            return _failed(sink, exc, target, connector)
        if result.already_written:  # another replay committed it first
            return ReplayAnswer("repeated", target=target)
        return ReplayAnswer("stored", target=target)
    except SinkReplayError:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise SinkReplayError(
                f"connector {connector}'s target is unavailable: {describe(exc)}"
            ) from exc
        return _refused(reason_of(exc), describe(exc))
    finally:
        sink.close()


def _failed(sink: JdbcSink, exc: Exception, target: str, connector: str) -> ReplayAnswer:
    """The write failed: the target's fault (unreachable), a replay that wrote the
    letter meanwhile (two inserting the marker row: a unique violation), or the
    record's."""
    if is_transient(exc):
        raise SinkReplayError(
            f"connector {connector}'s target is unavailable: {describe(exc)}"
        ) from exc
    sink.close()  # a connection the failure may have left in a broken transaction
    try:
        written = sink.stored_position() is not None
    except Exception as probe:
        raise SinkReplayError(
            f"connector {connector}'s target is unavailable: {describe(probe)}"
        ) from exc
    if written:
        return ReplayAnswer("repeated", target=target)
    return _refused(reason_of(exc), describe(exc))


__all__ = ["SinkReplayError", "marker_name", "sink_replayer"]
