"""A Confluent-compatible Schema Registry whose state is event-sourced.

Usage::

    registry = await SchemaRegistry.open(store)      # rebuilds state from its stream
    await ensure_tote_subjects(registry)              # tote_win_bets-value → id 1
    app.include_router(schema_registry_router(registry))
    # or a dedicated port: uvicorn.run(schema_registry_app(registry), port=8081)

See ``docs/kafka.md``.
"""

from .api import MEDIA_TYPE, schema_registry_app, schema_registry_router
from .service import (
    DEFAULT_STREAM,
    LATEST,
    SUPPORTED_TYPES,
    CompatibilityResult,
    SchemaRegistry,
    SubjectVersion,
    parse_version,
)
from .state import StoredSchema
from .tote_subjects import TOTE_SUBJECTS, TOTE_WIN_BETS_VALUE, ensure_tote_subjects

__all__ = [
    "DEFAULT_STREAM",
    "LATEST",
    "MEDIA_TYPE",
    "SUPPORTED_TYPES",
    "TOTE_SUBJECTS",
    "TOTE_WIN_BETS_VALUE",
    "CompatibilityResult",
    "SchemaRegistry",
    "StoredSchema",
    "SubjectVersion",
    "ensure_tote_subjects",
    "parse_version",
    "schema_registry_app",
    "schema_registry_router",
]
