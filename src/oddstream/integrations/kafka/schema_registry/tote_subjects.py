"""The subject the Kafka POC's ``tote_win_bets`` topic uses, so its scripts find it."""

from __future__ import annotations

import orjson

from .service import SchemaRegistry

#: ksqlDB's value schema of the POC's ``tote_win_bets`` stream.
TOTE_WIN_BETS_VALUE = orjson.dumps(
    {
        "type": "record",
        "name": "KsqlDataSourceSchema",
        "namespace": "io.confluent.ksql.avro_schemas",
        "fields": [
            {"name": "RUNNER_ID", "type": ["null", "int"], "default": None},
            {"name": "RACE_ID", "type": ["null", "int"], "default": None},
            {"name": "AMOUNT", "type": ["null", "double"], "default": None},
        ],
    }
).decode()

TOTE_SUBJECTS: dict[str, str] = {"tote_win_bets-value": TOTE_WIN_BETS_VALUE}


async def ensure_tote_subjects(registry: SchemaRegistry) -> dict[str, int]:
    """Register the tote subjects if they are not there yet; answers their ids.

    Idempotent: a schema already live in its subject writes nothing. On a fresh store
    ``tote_win_bets-value`` gets id 1.
    """
    return {
        subject: await registry.register(subject, text) for subject, text in TOTE_SUBJECTS.items()
    }
