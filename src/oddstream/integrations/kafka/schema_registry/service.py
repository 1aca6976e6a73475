"""The Schema Registry: commands and queries over event-sourced state.

Every change is an event appended to one stream (``schema-registry`` by default) with
the stream version this process last saw, so two processes (or two registries on one
store) cannot both hand out the same id or version: the loser of a race gets
``WrongExpectedVersion``, catches up from the stream and decides again. Queries answer
from memory; one that would answer "not found" first catches up, so a schema another
process registered is found.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from ....eventstore import EventStore, NewEvent, WrongExpectedVersion
from ..avro_compatibility import Level, Violation, check_compatibility
from ..avro_schema import AvroSchema, AvroSchemaError, parse_avro
from ..errors import ConfluentError
from . import errors as err
from .state import (
    AVRO,
    COMPATIBILITY_DELETED,
    COMPATIBILITY_SET,
    SCHEMA_REGISTERED,
    SUBJECT_DELETED,
    VERSION_DELETED,
    RegistryState,
    StoredSchema,
    SubjectState,
    VersionEntry,
)

DEFAULT_STREAM = "schema-registry"
SUPPORTED_TYPES = (AVRO,)
LATEST: Literal["latest"] = "latest"
VersionRef = int | Literal["latest"]

_MAX_ATTEMPTS = 50
_DIGITS = re.compile(r"[0-9]+\Z")
_BAD_SUBJECT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")

T = TypeVar("T")
Decision = tuple[list[NewEvent], T]


@dataclass(frozen=True, slots=True)
class SubjectVersion:
    """One version of a subject, as ``GET /subjects/{s}/versions/{v}`` shows it."""

    subject: str
    version: int
    id: int
    schema: str
    schema_type: str = AVRO

    def to_json(self) -> dict[str, Any]:
        """The Confluent body (``schemaType`` only when it is not AVRO)."""
        body: dict[str, Any] = {
            "subject": self.subject,
            "version": self.version,
            "id": self.id,
            "schema": self.schema,
        }
        if self.schema_type != AVRO:
            body["schemaType"] = self.schema_type
        return body


@dataclass(frozen=True, slots=True)
class CompatibilityResult:
    """The answer of a compatibility test; ``messages`` explain an incompatibility."""

    is_compatible: bool
    messages: list[str]


def parse_version(text: str) -> VersionRef:
    """``latest``/``-1`` or a version number in 1..2³¹−1; else 422/42202."""
    value = text.strip()
    if value.lower() == LATEST or value == "-1":
        return LATEST
    if _DIGITS.match(value):
        digits = value.lstrip("0")  # leading zeros are allowed, as Integer.parseInt does
        if 0 < len(digits) <= 10 and 1 <= int(digits) <= err.MAX_VERSION:
            return int(digits)
    raise err.invalid_version(text)


def check_subject(subject: object) -> str:
    """A subject name: a non-empty string without control characters (else 42208)."""
    if not isinstance(subject, str) or not subject.strip() or _BAD_SUBJECT.search(subject):
        raise err.invalid_subject(subject)
    return subject


def parse_schema_request(
    schema: object, schema_type: object = None, references: object = None
) -> AvroSchema:
    """Validate the parts of a register/lookup/compatibility body (422/42201)."""
    if schema_type is None:
        schema_type = AVRO
    if not isinstance(schema_type, str):
        raise err.invalid_schema("schemaType must be a string")
    if schema_type.upper() not in SUPPORTED_TYPES:
        raise err.unsupported_type(schema_type, SUPPORTED_TYPES)
    if references not in (None, []):
        if not isinstance(references, list):
            raise err.invalid_schema("references must be an array")
        raise err.invalid_schema("schema references are not supported")
    if not isinstance(schema, str):
        raise err.invalid_schema("the request needs a 'schema' string")
    try:
        return parse_avro(schema)
    except AvroSchemaError as exc:
        raise err.invalid_schema(str(exc)) from None


class SchemaRegistry:
    """A Confluent-compatible Schema Registry persisted as events on ``stream``.

    Open it with :meth:`open`, which rebuilds the state from the stream.
    """

    def __init__(self, store: EventStore, stream: str = DEFAULT_STREAM) -> None:
        self.store = store
        self.stream = stream
        self._state = RegistryState()
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, store: EventStore, *, stream: str = DEFAULT_STREAM) -> SchemaRegistry:
        """A registry whose state is rebuilt from ``stream`` of ``store``."""
        registry = cls(store, stream)
        await registry.refresh()
        return registry

    @property
    def version(self) -> int:
        """How many events of the stream the state reflects."""
        return self._state.version

    # ----------------------------------------------------------------- state upkeep
    async def refresh(self) -> None:
        """Apply the events other processes appended since the last look."""
        async with self._lock:
            await self._catch_up()

    async def _catch_up(self) -> None:
        events = await self.store.read_stream(self.stream, from_version=self._state.version + 1)
        for event in events:
            self._state.apply(event.type, event.data)
            self._state.version = event.version

    async def _commit(self, decide: Callable[[RegistryState], Decision[T]]) -> T:
        """Decide on the current state and append the events with its version; on a
        conflict catch up and decide again."""
        async with self._lock:
            for _ in range(_MAX_ATTEMPTS):
                await self._catch_up()
                events, answer = decide(self._state)
                if not events:
                    return answer
                try:
                    result = await self.store.append(self.stream, events, self._state.version)
                except WrongExpectedVersion:
                    continue
                for event in events:
                    self._state.apply(event.type, event.data)
                self._state.version = result.version
                return answer
        raise ConfluentError(
            500, err.BACKEND_STORE_ERROR, "The registry's stream is too contended; retry"
        )

    async def _query(self, ask: Callable[[RegistryState], T]) -> T:
        """Answer from memory; a 404 is only final after catching up."""
        try:
            return ask(self._state)
        except ConfluentError as exc:
            if exc.status != 404:
                raise
        await self.refresh()
        return ask(self._state)

    # ----------------------------------------------------------------- schemas
    @staticmethod
    def schema_types() -> list[str]:
        """The schema types this registry supports."""
        return list(SUPPORTED_TYPES)

    async def schema(self, schema_id: int) -> StoredSchema:
        """The schema with this global id (404/40403 if none)."""

        def ask(state: RegistryState) -> StoredSchema:
            found = state.schemas.get(schema_id)
            if found is None:
                raise err.schema_not_found(f"Schema {schema_id} not found")
            return found

        return await self._query(ask)

    async def parsed_schema(self, schema_id: int) -> AvroSchema:
        """The parsed schema with this global id (404/40403 if none)."""
        return (await self.schema(schema_id)).parsed

    async def schema_usages(
        self, schema_id: int, *, deleted: bool = False
    ) -> list[tuple[str, int]]:
        """``(subject, version)`` pairs that use this id."""

        def ask(state: RegistryState) -> list[tuple[str, int]]:
            if schema_id not in state.schemas:
                raise err.schema_not_found(f"Schema {schema_id} not found")
            return [
                (s.name, v.version)
                for s in sorted(state.subjects.values(), key=lambda s: s.name)
                for v in s.visible(deleted)
                if v.schema_id == schema_id
            ]

        return await self._query(ask)

    # ----------------------------------------------------------------- subjects
    async def subjects(
        self, *, deleted: bool = False, deleted_only: bool = False, prefix: str = ""
    ) -> list[str]:
        """Subject names with a live version (or a soft-deleted one, as asked)."""
        await self.refresh()
        names = []
        for subject in self._state.subjects.values():
            if not subject.name.startswith(prefix) or not subject.versions:
                continue
            has_live = bool(subject.live())
            if (deleted_only and not has_live) or (not deleted_only and (has_live or deleted)):
                names.append(subject.name)
        return sorted(names)

    async def versions(self, subject: str, *, deleted: bool = False) -> list[int]:
        """A subject's version numbers (404/40401 if it has none)."""
        return await self._query(
            lambda state: [v.version for v in _subject(state, subject, deleted).visible(deleted)]
        )

    async def get_version(
        self, subject: str, version: VersionRef, *, deleted: bool = False
    ) -> SubjectVersion:
        """One version of a subject (``latest``: the newest live one)."""

        def ask(state: RegistryState) -> SubjectVersion:
            entry = _find_version(_subject(state, subject, deleted), version, deleted)
            return _view(state, subject, entry)

        return await self._query(ask)

    async def lookup(
        self,
        subject: str,
        schema: object,
        schema_type: object = None,
        references: object = None,
        *,
        deleted: bool = False,
    ) -> SubjectVersion:
        """The subject's version holding this schema (40401 no subject, 40403 no match)."""
        parsed = parse_schema_request(schema, schema_type, references)

        def ask(state: RegistryState) -> SubjectVersion:
            entries = _subject(state, subject, deleted).visible(deleted)
            matches = [e for e in entries if state.schemas[e.schema_id].text == parsed.canonical]
            if not matches:
                raise err.schema_not_found()
            return _view(state, subject, matches[-1])

        return await self._query(ask)

    async def register(
        self,
        subject: str,
        schema: object,
        schema_type: object = None,
        references: object = None,
    ) -> int:
        """Register ``schema`` under ``subject``; answers its global id.

        A schema already live in the subject answers its id and writes nothing; the same
        schema in another subject reuses that id. Incompatible under the subject's level:
        409.
        """
        check_subject(subject)
        parsed = parse_schema_request(schema, schema_type, references)

        def decide(state: RegistryState) -> Decision[int]:
            existing = state.subjects.get(subject) or SubjectState(subject)
            live = existing.live()
            for entry in live:
                if state.schemas[entry.schema_id].text == parsed.canonical:
                    return [], entry.schema_id
            level = existing.level or state.level
            previous = [state.schemas[e.schema_id].parsed for e in live]
            violations = check_compatibility(level, parsed, previous)
            if violations:
                details = _messages(violations, [e.version for e in live], level)
                raise err.incompatible(subject, details)
            schema_id = state.id_of(AVRO, parsed.canonical) or state.next_id()
            data = {
                "subject": subject,
                "version": existing.next_version(),
                "id": schema_id,
                "schemaType": AVRO,
                "schema": parsed.canonical,
            }
            return [NewEvent(SCHEMA_REGISTERED, data)], schema_id

        return await self._commit(decide)

    async def delete_subject(self, subject: str, *, permanent: bool = False) -> list[int]:
        """Soft-delete every live version (or, ``permanent``, purge a soft-deleted
        subject); answers the version numbers."""

        def decide(state: RegistryState) -> Decision[list[int]]:
            found = state.subjects.get(subject)
            if found is None or not found.versions:
                raise err.subject_not_found(subject)
            live = [v.version for v in found.live()]
            if permanent:
                if live:
                    raise err.subject_not_soft_deleted(subject)
                versions = list(found.versions)
            else:
                if not live:
                    raise err.subject_soft_deleted(subject)
                versions = live
            data = {"subject": subject, "versions": versions, "permanent": permanent}
            return [NewEvent(SUBJECT_DELETED, data)], versions

        return await self._commit(decide)

    async def delete_version(
        self, subject: str, version: VersionRef, *, permanent: bool = False
    ) -> int:
        """Soft-delete one version (or, ``permanent``, purge a soft-deleted one)."""

        def decide(state: RegistryState) -> Decision[int]:
            found = state.subjects.get(subject)
            if found is None or not found.versions:
                raise err.subject_not_found(subject)
            if version == LATEST:
                entry = _find_version(found, LATEST, deleted=permanent)
            else:
                entry = _find_version(found, version, deleted=True)
            if permanent and not entry.deleted:
                raise err.version_not_soft_deleted(subject, entry.version)
            if not permanent and entry.deleted:
                raise err.version_soft_deleted(subject, entry.version)
            data = {"subject": subject, "version": entry.version, "permanent": permanent}
            return [NewEvent(VERSION_DELETED, data)], entry.version

        return await self._commit(decide)

    # ----------------------------------------------------------------- compatibility
    async def test_compatibility(
        self,
        subject: str,
        schema: object,
        schema_type: object = None,
        references: object = None,
        *,
        version: VersionRef | None = LATEST,
    ) -> CompatibilityResult:
        """Would ``schema`` be compatible under the subject's level?

        With a ``version`` (a number or ``latest``) the check is against that version
        only; with ``None`` against what registering would check (all live versions for a
        transitive level, else the latest). A subject without versions is compatible
        with ``None`` and 40401 otherwise.
        """
        parsed = parse_schema_request(schema, schema_type, references)

        def ask(state: RegistryState) -> CompatibilityResult:
            found = state.subjects.get(subject)
            level = (found.level if found else None) or state.level
            live = found.live() if found else []
            if version is None:
                targets = live
            else:
                if not live:
                    raise err.subject_not_found(subject)
                assert found is not None
                targets = [_find_version(found, version, deleted=False)]
            previous = [state.schemas[e.schema_id].parsed for e in targets]
            violations = check_compatibility(level, parsed, previous)
            messages = _messages(violations, [e.version for e in targets], level)
            return CompatibilityResult(not violations, messages if violations else [])

        return await self._query(ask)

    async def get_level(
        self, subject: str | None = None, *, default_to_global: bool = False
    ) -> Level:
        """The global level, or a subject's own (40408 if it has none and
        ``default_to_global`` is false)."""

        def ask(state: RegistryState) -> Level:
            if subject is None:
                return state.level
            found = state.subjects.get(subject)
            if found is not None and found.level is not None:
                return found.level
            if default_to_global:
                return state.level
            raise err.no_subject_config(subject)

        return await self._query(ask)

    async def set_level(self, subject: str | None, level: object) -> Level:
        """Set the global level (``subject`` None) or a subject's (42203 if invalid)."""
        parsed = Level.parse(level)
        if parsed is None:
            raise err.invalid_level(level)
        if subject is not None:
            check_subject(subject)

        def decide(state: RegistryState) -> Decision[Level]:
            current = state.global_level if subject is None else _own_level(state, subject)
            if current is parsed:
                return [], parsed
            data = {"subject": subject, "compatibility": parsed.value}
            return [NewEvent(COMPATIBILITY_SET, data)], parsed

        return await self._commit(decide)

    async def delete_level(self, subject: str | None) -> Level:
        """Drop the global level (back to BACKWARD) or a subject's own level; answers
        the level it had (40408 for a subject without one)."""

        def decide(state: RegistryState) -> Decision[Level]:
            if subject is None:
                if state.global_level is None:
                    return [], state.level
                return [NewEvent(COMPATIBILITY_DELETED, {"subject": None})], state.level
            current = _own_level(state, subject)
            if current is None:
                raise err.no_subject_config(subject)
            return [NewEvent(COMPATIBILITY_DELETED, {"subject": subject})], current

        return await self._commit(decide)


def _own_level(state: RegistryState, subject: str) -> Level | None:
    found = state.subjects.get(subject)
    return found.level if found else None


def _subject(state: RegistryState, subject: str, deleted: bool) -> SubjectState:
    found = state.subjects.get(subject)
    if found is None or not found.visible(deleted):
        raise err.subject_not_found(subject)
    return found


def _find_version(subject: SubjectState, version: VersionRef, deleted: bool) -> VersionEntry:
    if version == LATEST:
        entries = subject.visible(deleted)
        if not entries:
            raise err.version_not_found(subject.name, version)
        return entries[-1]
    entry = subject.versions.get(version)
    if entry is None or (entry.deleted and not deleted):
        raise err.version_not_found(subject.name, version)
    return entry


def _view(state: RegistryState, subject: str, entry: VersionEntry) -> SubjectVersion:
    stored = state.schemas[entry.schema_id]
    return SubjectVersion(subject, entry.version, stored.id, stored.text, stored.schema_type)


def _messages(violations: Sequence[Violation], versions: Sequence[int], level: Level) -> list[str]:
    out = []
    for v in violations:
        old = f"the old schema (version {versions[v.index]})"
        reader, writer = (
            ("the new schema", old) if v.direction == "BACKWARD" else (old, "the new schema")
        )
        out.append(
            f"{{errorType:'{v.problem.kind}', path:'{v.problem.path}', "
            f"description:'{reader} cannot read data written with {writer}: {v.problem.detail}'}}"
        )
    if out:
        out.append(f"{{compatibility: '{level.value}'}}")
    return out
