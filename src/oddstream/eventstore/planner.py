"""Deciding a group commit: which appends of a batch succeed, and with what positions.

Both adapters serialize writers (SQLite by its single writer thread and ``BEGIN
IMMEDIATE``, PostgreSQL by a transaction-scoped advisory lock), then read what the batch
needs to know (the current versions of the streams it touches, which supplied event ids
already exist, the last global position) and hand it to :func:`plan_batch`. Because no
other writer can move in between, the checks made here in Python are exact, and each
append of the batch succeeds or fails on its own while all of them share one commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from .envelope import AppendResult, ExpectedVersion
from .errors import DuplicateEventId, EventStoreError, WrongExpectedVersion
from .prepare import PreparedPart

# (position, stream_id, version, event_id, type, schema_version, data, metadata, recorded_us)
Row = tuple[int, str, int, bytes, str, int, bytes, bytes, int]


@dataclass(slots=True)
class ExistingEvent:
    """Where an already-stored event id sits."""

    stream_id: str
    version: int
    position: int


@dataclass(slots=True)
class BatchState:
    """What the database said, under the write lock, before the batch is planned."""

    versions: dict[str, int]
    existing: dict[bytes, ExistingEvent]
    last_position: int
    recorded_us: int


@dataclass(slots=True)
class BatchPlan:
    """Rows to insert, and per append either its results or the error to raise."""

    rows: list[Row] = field(default_factory=list)
    outcomes: list[list[AppendResult] | EventStoreError] = field(default_factory=list)
    last_position: int = 0


def _check_expected(part: PreparedPart, current: int) -> None:
    expected = part.expected
    if expected is ExpectedVersion.ANY:
        return
    if expected is ExpectedVersion.NO_STREAM:
        ok = current == 0
    elif expected is ExpectedVersion.STREAM_EXISTS:
        ok = current > 0
    else:
        ok = current == expected
    if not ok:
        raise WrongExpectedVersion(part.stream_id, expected, current)


def _retry_result(
    part: PreparedPart, current: int, existing: dict[bytes, ExistingEvent]
) -> AppendResult | None:
    """The original result if ``part`` repeats an append already stored, else ``None``.

    Raises when the supplied ids exist but not as this same append.
    """
    found = [existing.get(eid) for eid in part.event_ids]
    if all(f is None for f in found):
        return None
    if any(f is None for f in found):
        missing = next(e for e, f in zip(part.event_ids, found, strict=True) if f is None)
        present = next(e for e, f in zip(part.event_ids, found, strict=True) if f)
        raise DuplicateEventId(
            part.stream_id,
            _uuid(present),
            f"some events of this append are stored and others ({_uuid(missing)}) are not",
        )
    first = found[0]
    assert first is not None
    for offset, f in enumerate(found):
        assert f is not None
        if f.stream_id != part.stream_id:
            raise DuplicateEventId(
                part.stream_id, _uuid(part.event_ids[offset]), f"it is in {f.stream_id!r}"
            )
        if f.version != first.version + offset:
            raise DuplicateEventId(
                part.stream_id,
                _uuid(part.event_ids[offset]),
                "the ids are stored in another order than this append gives them",
            )
    expected = part.expected
    if expected is ExpectedVersion.NO_STREAM:
        expected = 0
    last = found[-1]
    assert last is not None
    if isinstance(expected, int) and first.version != expected + 1:
        raise DuplicateEventId(
            part.stream_id,
            _uuid(part.event_ids[0]),
            f"these events are stored at versions {first.version}..{last.version}, "
            f"not from {expected + 1} as this append expects",
        )
    return AppendResult(
        part.stream_id, last.version, first.position, last.position, idempotent_retry=True
    )


def _uuid(raw: bytes) -> UUID:
    return UUID(bytes=raw)


def plan_batch(state: BatchState, appends: list[list[PreparedPart]]) -> BatchPlan:
    """Decide every append of a group commit against ``state``, in arrival order.

    ``state`` is updated as appends are accepted, so a later append in the batch sees the
    versions and event ids of the earlier ones exactly as if each had committed alone.
    """
    plan = BatchPlan(last_position=state.last_position)
    versions = state.versions
    existing = state.existing
    for parts in appends:
        try:
            plan.outcomes.append(_plan_one(plan, versions, existing, parts, state.recorded_us))
        except EventStoreError as exc:
            plan.outcomes.append(exc)
    return plan


def _plan_one(
    plan: BatchPlan,
    versions: dict[str, int],
    existing: dict[bytes, ExistingEvent],
    parts: list[PreparedPart],
    recorded_us: int,
) -> list[AppendResult]:
    retried: list[AppendResult | None] = []
    for part in parts:
        current = versions.get(part.stream_id, 0)
        retry = _retry_result(part, current, existing) if part.supplied else None
        if retry is None:
            _check_expected(part, current)
        retried.append(retry)
    n_retried = sum(r is not None for r in retried)
    if n_retried == len(parts):
        return [r for r in retried if r is not None]
    if n_retried:
        part = next(p for p, r in zip(parts, retried, strict=True) if r is not None)
        raise DuplicateEventId(
            part.stream_id,
            _uuid(part.event_ids[0]),
            "this part of a multi-stream append was stored before, the others were not",
        )
    results: list[AppendResult] = []
    rows = plan.rows
    position = plan.last_position
    for part in parts:
        version = versions.get(part.stream_id, 0)
        stream_id = part.stream_id
        n = len(part)
        first = position + 1
        rows.extend(
            zip(
                range(first, first + n),
                [stream_id] * n,
                range(version + 1, version + n + 1),
                part.event_ids,
                part.types,
                part.schema_versions,
                part.data,
                part.metadata,
                [recorded_us] * n,
                strict=True,
            )
        )
        if part.supplied:
            for offset, (eid, supplied) in enumerate(
                zip(part.event_ids, part.supplied, strict=True)
            ):
                if supplied:
                    existing[eid] = ExistingEvent(stream_id, version + offset + 1, first + offset)
        position += n
        versions[stream_id] = version + n
        results.append(AppendResult(stream_id, version + n, first, position))
    plan.last_position = position
    return results
