"""The REST Proxy's error codes (Confluent REST Proxy v2)."""

from __future__ import annotations

from ..access import forbidden
from ..errors import ConfluentError

TOPIC_NOT_FOUND = 40401
PARTITION_NOT_FOUND = 40402
KEY_SCHEMA_MISSING = 42201
VALUE_SCHEMA_MISSING = 42202
JSON_CONVERSION = 42203
INVALID_SCHEMA = 42205
INVALID_PAYLOAD = 42206
UNPROCESSABLE = 422
KAFKA_ERROR = 50002


def topic_not_found(topic: str) -> ConfluentError:
    """404/40401: the topic does not exist."""
    return ConfluentError(404, TOPIC_NOT_FOUND, f"Topic '{topic}' not found.")


def topic_reserved(topic: str, owner: str) -> ConfluentError:
    """403/40301: the service writes this topic itself; no client may produce to it
    (whatever its key: Kafka's topic authorization failure)."""
    return forbidden(
        f"Topic '{topic}' is written by the service ({owner}): no client may produce to it."
    )


def partition_not_found(topic: str, partition: object) -> ConfluentError:
    """404/40402: the topic has no such partition."""
    return ConfluentError(
        404, PARTITION_NOT_FOUND, f"Partition {partition} of topic '{topic}' not found."
    )


def invalid_payload(reason: str) -> ConfluentError:
    """422/42206: the request or its records are malformed."""
    return ConfluentError(422, INVALID_PAYLOAD, f"Invalid payload: {reason}")


def invalid_schema(reason: str) -> ConfluentError:
    """422/42205: the schema is invalid or cannot be registered."""
    return ConfluentError(422, INVALID_SCHEMA, f"Invalid schema: {reason}")


def conversion_failed(reason: str) -> ConfluentError:
    """422/42203: a key or value does not fit its Avro schema."""
    return ConfluentError(422, JSON_CONVERSION, f"Conversion of JSON to Avro failed: {reason}")


def records_empty() -> ConfluentError:
    """422/422: no records in the request."""
    return ConfluentError(422, UNPROCESSABLE, "records may not be empty")


def key_schema_missing() -> ConfluentError:
    """422/42201: Avro keys without a key schema."""
    return ConfluentError(
        422, KEY_SCHEMA_MISSING, "Request includes keys but does not include key schema"
    )


def value_schema_missing() -> ConfluentError:
    """422/42202: Avro values without a value schema."""
    return ConfluentError(
        422, VALUE_SCHEMA_MISSING, "Request includes values but does not include value schema"
    )
