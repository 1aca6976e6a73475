"""The registry's state, rebuilt by applying its events in order (pure, no I/O).

Events (all on one stream, see :mod:`.service`):

* ``SchemaRegistered`` ``{subject, version, id, schemaType, schema}``: ``schema`` is
  the canonical text; the same text always carries the same ``id``.
* ``SchemaVersionDeleted`` ``{subject, version, permanent}``.
* ``SubjectDeleted`` ``{subject, versions, permanent}``.
* ``CompatibilitySet`` ``{subject, compatibility}`` (``subject`` null: global).
* ``CompatibilityDeleted`` ``{subject}`` (``subject`` null: back to the default).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..avro_compatibility import Level
from ..avro_schema import AvroSchema, parse_avro

log = logging.getLogger(__name__)

SCHEMA_REGISTERED = "SchemaRegistered"
VERSION_DELETED = "SchemaVersionDeleted"
SUBJECT_DELETED = "SubjectDeleted"
COMPATIBILITY_SET = "CompatibilitySet"
COMPATIBILITY_DELETED = "CompatibilityDeleted"

DEFAULT_LEVEL = Level.BACKWARD
AVRO = "AVRO"


@dataclass(slots=True)
class StoredSchema:
    """A schema under its global id; parsed on first use."""

    id: int
    schema_type: str
    text: str
    _parsed: AvroSchema | None = None

    @property
    def parsed(self) -> AvroSchema:
        """The parsed schema (the stored text is canonical, so it parses again)."""
        if self._parsed is None:
            self._parsed = parse_avro(self.text)
        return self._parsed


@dataclass(slots=True)
class VersionEntry:
    """One version of a subject."""

    version: int
    schema_id: int
    deleted: bool = False


@dataclass(slots=True)
class SubjectState:
    """A subject's versions (in version order) and its own compatibility level."""

    name: str
    versions: dict[int, VersionEntry] = field(default_factory=dict)
    level: Level | None = None

    def live(self) -> list[VersionEntry]:
        """Versions not soft-deleted, oldest first."""
        return [v for v in self.versions.values() if not v.deleted]

    def visible(self, deleted: bool) -> list[VersionEntry]:
        """Live versions, or all of them with ``deleted``."""
        return list(self.versions.values()) if deleted else self.live()

    def next_version(self) -> int:
        """The number a new version gets (numbers are not reused after soft deletes)."""
        return max(self.versions, default=0) + 1


@dataclass(slots=True)
class RegistryState:
    """Everything the registry knows, as of ``version`` events of its stream."""

    version: int = 0
    schemas: dict[int, StoredSchema] = field(default_factory=dict)
    ids: dict[tuple[str, str], int] = field(default_factory=dict)
    subjects: dict[str, SubjectState] = field(default_factory=dict)
    global_level: Level | None = None

    @property
    def level(self) -> Level:
        """The global compatibility level (``BACKWARD`` unless set)."""
        return self.global_level or DEFAULT_LEVEL

    def next_id(self) -> int:
        """The id a schema never registered before gets."""
        return max(self.schemas, default=0) + 1

    def id_of(self, schema_type: str, text: str) -> int | None:
        """The global id of this canonical text, if registered anywhere."""
        return self.ids.get((schema_type, text))

    def apply(self, event_type: str, data: Mapping[str, Any]) -> None:
        """Apply one event; unknown types are skipped (newer writers may add some)."""
        handler = _HANDLERS.get(event_type)
        if handler is None:
            log.warning("schema registry: skipping unknown event type %r", event_type)
            return
        handler(self, data)


def _registered(state: RegistryState, data: Mapping[str, Any]) -> None:
    schema_id = int(data["id"])
    schema_type = str(data.get("schemaType") or AVRO)
    text = str(data["schema"])
    if schema_id not in state.schemas:
        state.schemas[schema_id] = StoredSchema(schema_id, schema_type, text)
        state.ids.setdefault((schema_type, text), schema_id)
    subject = state.subjects.setdefault(data["subject"], SubjectState(data["subject"]))
    version = int(data["version"])
    subject.versions[version] = VersionEntry(version, schema_id)


def _version_deleted(state: RegistryState, data: Mapping[str, Any]) -> None:
    subject = state.subjects.get(data["subject"])
    if subject is None:
        return
    version = int(data["version"])
    if data.get("permanent"):
        subject.versions.pop(version, None)
        if not subject.versions:
            del state.subjects[subject.name]
    elif version in subject.versions:
        subject.versions[version].deleted = True


def _subject_deleted(state: RegistryState, data: Mapping[str, Any]) -> None:
    subject = state.subjects.get(data["subject"])
    if subject is None:
        return
    for version in data.get("versions", ()):
        entry = subject.versions.get(int(version))
        if entry is None:
            continue
        if data.get("permanent"):
            del subject.versions[entry.version]
        else:
            entry.deleted = True
    if not subject.versions:
        del state.subjects[subject.name]


def _compatibility_set(state: RegistryState, data: Mapping[str, Any]) -> None:
    level = Level.parse(data.get("compatibility"))
    if level is None:
        return
    name = data.get("subject")
    if name is None:
        state.global_level = level
    else:
        state.subjects.setdefault(name, SubjectState(name)).level = level


def _compatibility_deleted(state: RegistryState, data: Mapping[str, Any]) -> None:
    name = data.get("subject")
    if name is None:
        state.global_level = None
    elif name in state.subjects:
        subject = state.subjects[name]
        subject.level = None
        if not subject.versions:
            del state.subjects[name]


_HANDLERS = {
    SCHEMA_REGISTERED: _registered,
    VERSION_DELETED: _version_deleted,
    SUBJECT_DELETED: _subject_deleted,
    COMPATIBILITY_SET: _compatibility_set,
    COMPATIBILITY_DELETED: _compatibility_deleted,
}
