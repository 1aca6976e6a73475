"""What the OpenAPI document says of the Schema Registry's and REST Proxy's operations
beyond what their routes declare (they read their own bodies and path parameters, as
Confluent's servers do): the path parameters' forms and the request bodies.

Each says what the route takes and refuses, as Confluent documents it: a version is
``latest``, ``-1`` or 1..2³¹−1 (else 422/42202), a subject holds no control character
(else 422/42208 on writes, 404 on reads), a compatibility level is one of the seven
(any case). Two things no JSON Schema can say are left to the routes' 422: that a
``schema`` is a valid Avro schema, and that Avro records match their schema."""

from __future__ import annotations

from typing import Any

from ...sinks.connectors import MAX_NAME_LENGTH
from .avro_compatibility import Level
from .rest_proxy.records import MAX_TOPIC_LENGTH


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


#: 1..2³¹−1, leading zeros allowed
_VERSION_NUMBER = (
    "0*(?:[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}"
    "|2147[0-3][0-9]{5}|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}"
    "|21474836[0-3][0-9]|214748364[0-7])"
)
VERSION_PATTERN = rf"^\s*(?:{_any_case('latest')}|-1|{_VERSION_NUMBER})\s*$"
#: not blank, no control character (:func:`.schema_registry.service.check_subject`)
SUBJECT_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
LEVEL_PATTERN = r"^\s*(?:" + "|".join(_any_case(level.value) for level in Level) + r")\s*$"

#: what a connector's name may not hold anywhere (control characters, line separators,
#: ``/``), and at its ends (white space): :func:`oddstream.sinks.connectors.check_name`
_NAME_BAD = r"\x00-\x1f\x7f-\x9f\u2028\u2029/"
_NAME_CORE = rf"[^\s{_NAME_BAD}](?:[^{_NAME_BAD}]*[^\s{_NAME_BAD}])?"
#: a connector's name in a path: as it is
CONNECTOR_NAME_PATTERN = rf"^{_NAME_CORE}$"
#: a connector's name in ``POST /connectors``: white space at its ends is trimmed, as
#: Connect trims it
CONNECTOR_BODY_NAME_PATTERN = rf"^\s*{_NAME_CORE}\s*$"

PARAMETERS: dict[str, dict[str, Any]] = {
    "subject": {
        "type": "string",
        "pattern": SUBJECT_PATTERN,
        "description": "a subject; `/` inside it is sent as `%2F`",
    },
    "version": {
        "type": "string",
        "pattern": VERSION_PATTERN,
        "description": "a version number (1 to 2147483647), or `latest` (also `-1`)",
    },
    "schema_id": {"type": "integer", "minimum": 0, "description": "a schema's global id"},
    "topic": {
        "type": "string",
        "pattern": rf"^[A-Za-z0-9._-]{{1,{MAX_TOPIC_LENGTH}}}$",
        "description": "a topic name (Kafka's characters)",
    },
    "partition": {"type": "integer", "minimum": 0, "description": "a partition number"},
    "name": {
        "type": "string",
        "pattern": CONNECTOR_NAME_PATTERN,
        "maxLength": MAX_NAME_LENGTH,
        "description": "a connector's name (no control characters, no `/`, no white space "
        "at either end)",
    },
}

SCHEMA_REQUEST: dict[str, Any] = {
    "title": "SchemaRequest",
    "type": "object",
    "required": ["schema"],
    "properties": {
        "schema": {"type": "string", "minLength": 1, "description": "an Avro schema as JSON text"},
        "schemaType": {
            "anyOf": [{"type": "string", "pattern": f"^{_any_case('avro')}$"}, {"type": "null"}],
            "description": "AVRO (the default; any case): the one type supported",
        },
        "references": {
            "anyOf": [{"type": "array", "maxItems": 0}, {"type": "null"}],
            "description": "schema references are not supported",
        },
    },
}
_LEVEL = {"type": "string", "pattern": LEVEL_PATTERN}
CONFIG_REQUEST: dict[str, Any] = {
    "title": "ConfigRequest",
    "type": "object",
    "description": "`compatibility` (or, without it, `compatibilityLevel`): "
    + ", ".join(level.value for level in Level)
    + " (any case)",
    "anyOf": [
        {"required": ["compatibility"], "properties": {"compatibility": _LEVEL}},
        {
            "required": ["compatibilityLevel"],
            "properties": {"compatibilityLevel": _LEVEL},
            "not": {"required": ["compatibility"]},
        },
    ],
}


def _records(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["records"],
        "properties": {
            "records": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "key": value,
                        "value": value,
                        "partition": {
                            "anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]
                        },
                    },
                },
            },
        },
    }


_BASE64 = {
    "anyOf": [
        {
            "type": "string",
            "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
            "contentEncoding": "base64",
        },
        {"type": "null"},
    ]
}
_BINARY_RECORDS = _records(_BASE64)
_AVRO_RECORDS = _records({"description": "the record's key or value as Avro's JSON encoding"})
#: an Avro schema as JSON text, or (leniently) as the JSON itself; unread when the
#: part's schema id is given
_SCHEMA_TEXT = {
    "anyOf": [{"type": "string"}, {"type": "object"}, {"type": "array"}, {"type": "null"}],
    "description": "an Avro schema as JSON text (or as JSON); the id wins when both are given",
}
_AVRO_RECORDS["properties"] |= {
    "key_schema": _SCHEMA_TEXT,
    "value_schema": _SCHEMA_TEXT,
    "key_schema_id": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
    "value_schema_id": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
}
_AVRO_RECORDS["description"] = (
    "a value schema (`value_schema` or `value_schema_id`) when any value is not null, a"
    " key schema likewise for keys; each key and value must match its schema (else 422)"
)
PRODUCE_REQUEST: dict[str, Any] = {
    "required": True,
    "content": {
        "application/vnd.kafka.binary.v2+json": {"schema": _BINARY_RECORDS},
        "application/json": {"schema": _BINARY_RECORDS},
        "application/vnd.kafka.json.v2+json": {"schema": _records({})},
        "application/vnd.kafka.avro.v2+json": {"schema": _AVRO_RECORDS},
    },
}
_REGISTRY_MEDIA = ("application/vnd.schemaregistry.v1+json", "application/json")


def _registry_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {m: {"schema": schema} for m in _REGISTRY_MEDIA}}


_SETTING = {
    "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}],
    "description": "a setting's value (Connect's are strings; numbers and booleans are read "
    "as they are)",
}
CONNECTOR_CONFIG: dict[str, Any] = {
    "title": "ConnectorConfig",
    "type": "object",
    "additionalProperties": _SETTING,
    "description": "a JDBC sink connector's configuration as Confluent documents it "
    "(`connector.class`, `connection.url`, `topics` …; see docs/analytics.md); a `name` must "
    "be the connector's; an invalid one is 400 naming every refused setting",
}
CREATE_CONNECTOR: dict[str, Any] = {
    "title": "CreateConnectorRequest",
    "type": "object",
    "required": ["name", "config"],
    "properties": {
        "name": {
            "type": "string",
            "pattern": CONNECTOR_BODY_NAME_PATTERN,
            "maxLength": MAX_NAME_LENGTH,
        },
        "config": CONNECTOR_CONFIG,
    },
}


def _connect_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


#: (method, path) → the operation's request body
REQUEST_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/subjects/{subject}/versions"): _registry_body(SCHEMA_REQUEST),
    ("post", "/subjects/{subject}"): _registry_body(SCHEMA_REQUEST),
    ("post", "/compatibility/subjects/{subject}/versions"): _registry_body(SCHEMA_REQUEST),
    ("post", "/compatibility/subjects/{subject}/versions/{version}"): _registry_body(
        SCHEMA_REQUEST
    ),
    ("put", "/config"): _registry_body(CONFIG_REQUEST),
    ("put", "/config/{subject}"): _registry_body(CONFIG_REQUEST),
    ("post", "/topics/{topic}"): PRODUCE_REQUEST,
    ("post", "/topics/{topic}/partitions/{partition}"): PRODUCE_REQUEST,
    ("post", "/connectors"): _connect_body(CREATE_CONNECTOR),
    ("put", "/connectors/{name}/config"): _connect_body(CONNECTOR_CONFIG),
}


def complete(method: str, path: str, operation: dict[str, Any]) -> None:
    """Complete a Confluent operation of the document with its parameters' forms and
    its request body."""
    for parameter in operation.get("parameters") or []:
        schema = PARAMETERS.get(parameter["name"])
        if schema is not None and parameter.get("in") == "path":
            parameter["schema"] = dict(schema)
    body = REQUEST_BODIES.get((method, path))
    if body is not None:
        operation["requestBody"] = body
