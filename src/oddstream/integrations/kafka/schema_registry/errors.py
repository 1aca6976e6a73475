"""The Schema Registry's errors, with Confluent's statuses, codes and wording."""

from __future__ import annotations

from ..errors import ConfluentError

SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
SUBJECT_SOFT_DELETED = 40404
SUBJECT_NOT_SOFT_DELETED = 40405
VERSION_SOFT_DELETED = 40406
VERSION_NOT_SOFT_DELETED = 40407
SUBJECT_LEVEL_CONFIG_NOT_FOUND = 40408
INCOMPATIBLE_SCHEMA = 409
INVALID_SCHEMA = 42201
INVALID_VERSION = 42202
INVALID_COMPATIBILITY_LEVEL = 42203
INVALID_SUBJECT = 42208
BACKEND_STORE_ERROR = 50001

MAX_VERSION = 2**31 - 1


def subject_not_found(subject: str) -> ConfluentError:
    """404/40401: no such subject (or no live version)."""
    return ConfluentError(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found.")


def version_not_found(subject: str, version: object) -> ConfluentError:
    """404/40402: no such version of the subject."""
    return ConfluentError(
        404, VERSION_NOT_FOUND, f"Version {version} not found for subject '{subject}'."
    )


def schema_not_found(what: str = "Schema not found") -> ConfluentError:
    """404/40403: no such schema (id, or match in a lookup)."""
    return ConfluentError(404, SCHEMA_NOT_FOUND, what)


def invalid_schema(reason: str) -> ConfluentError:
    """422/42201: the schema is invalid."""
    return ConfluentError(422, INVALID_SCHEMA, f"Invalid schema: {reason}")


def invalid_version(version: object) -> ConfluentError:
    """422/42202: not ``latest``, ``-1`` or a number in 1..2³¹−1."""
    return ConfluentError(
        422,
        INVALID_VERSION,
        f"The specified version '{version}' is not a valid version id. Allowed values are "
        f'between [1, {MAX_VERSION}] and the string "latest" (or -1)',
    )


def invalid_level(level: object) -> ConfluentError:
    """422/42203: not one of the seven compatibility levels."""
    return ConfluentError(
        422,
        INVALID_COMPATIBILITY_LEVEL,
        f"Invalid compatibility level {level!r}. Valid values are none, backward, forward, "
        "full, backward_transitive, forward_transitive, and full_transitive",
    )


def invalid_subject(subject: object) -> ConfluentError:
    """422/42208: an empty subject or one with control characters."""
    return ConfluentError(422, INVALID_SUBJECT, f"The specified subject {subject!r} is not valid")


def no_subject_config(subject: str) -> ConfluentError:
    """404/40408: the subject has no compatibility level of its own."""
    return ConfluentError(
        404,
        SUBJECT_LEVEL_CONFIG_NOT_FOUND,
        f"Subject '{subject}' does not have subject-level compatibility configured",
    )


def unsupported_type(schema_type: str, supported: tuple[str, ...]) -> ConfluentError:
    """422/42201: a schema type other than the supported ones."""
    return invalid_schema(
        f"schema type {schema_type!r} is not supported (supported: {', '.join(supported)})"
    )


def incompatible(subject: str, details: list[str]) -> ConfluentError:
    """409: the schema is incompatible under the subject's level."""
    return ConfluentError(
        409,
        INCOMPATIBLE_SCHEMA,
        f'Schema being registered is incompatible with an earlier schema for subject "{subject}"'
        f", details: {details}",
    )


def subject_soft_deleted(subject: str) -> ConfluentError:
    """404/40404: soft-deleting a subject already soft-deleted."""
    return ConfluentError(
        404,
        SUBJECT_SOFT_DELETED,
        f"Subject '{subject}' was soft deleted. Set permanent=true to delete permanently",
    )


def subject_not_soft_deleted(subject: str) -> ConfluentError:
    """404/40405: a permanent delete needs a soft delete first."""
    return ConfluentError(
        404,
        SUBJECT_NOT_SOFT_DELETED,
        f"Subject '{subject}' was not deleted first before being permanently deleted",
    )


def version_soft_deleted(subject: str, version: int) -> ConfluentError:
    """404/40406: soft-deleting a version already soft-deleted."""
    return ConfluentError(
        404,
        VERSION_SOFT_DELETED,
        f"Subject '{subject}' Version {version} was soft deleted. "
        "Set permanent=true to delete permanently",
    )


def version_not_soft_deleted(subject: str, version: int) -> ConfluentError:
    """404/40407: a permanent delete needs a soft delete first."""
    return ConfluentError(
        404,
        VERSION_NOT_SOFT_DELETED,
        f"Subject '{subject}' Version {version} was not deleted first before being "
        "permanently deleted",
    )
