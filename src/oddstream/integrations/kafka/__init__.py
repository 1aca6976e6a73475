"""Confluent-compatible surfaces over the event store.

* :mod:`oddstream.integrations.kafka.schema_registry`: a Schema Registry (port 8081 API) whose state
  is event-sourced on one stream.
* :mod:`oddstream.integrations.kafka.rest_proxy`: REST Proxy v2 (port 8082 API) producing records
  into ``topic-<name>`` streams.

The Avro building blocks are small pure modules: :mod:`.avro_schema` (parse, validate,
canonical form), :mod:`.avro_compat` (schema-resolution compatibility checks) and
:mod:`.avro_json` (Avro JSON-encoding decoder). See ``docs/kafka.md``.
"""
