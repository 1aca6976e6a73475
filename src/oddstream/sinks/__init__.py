"""SQL sinks for analysts, with Kafka Connect JDBC sink semantics.

- :mod:`.config`: a JDBC sink connector's configuration as Confluent users write it.
- :mod:`.schema`: records and their Connect schemas (from Avro or Connect's JSON).
- :mod:`.dialects`: SQLite, PostgreSQL and MariaDB/MySQL: identifiers, types, DDL, writes.
- :mod:`.writer`: :class:`JdbcSink`, each batch written with its position in one
  transaction of the target database.

See ``docs/analytics.md`` ("SQL sinks").
"""

from .config import ConfigProblem, JdbcSinkConfig, SinkConfigError, parse_config
from .dialects import MysqlDialect, PostgresDialect, SqliteDialect, dialect_for
from .errors import (
    InvalidIdentifier,
    PositionConflict,
    RecordError,
    SchemaMismatch,
    SinkError,
    TableMissing,
    UnsupportedSchema,
)
from .schema import FieldSchema, RecordSchema, SinkRecord, from_avro, from_connect_json
from .writer import JdbcSink, WriteResult

__all__ = [
    "ConfigProblem",
    "FieldSchema",
    "InvalidIdentifier",
    "JdbcSink",
    "JdbcSinkConfig",
    "MysqlDialect",
    "PositionConflict",
    "PostgresDialect",
    "RecordError",
    "RecordSchema",
    "SchemaMismatch",
    "SinkConfigError",
    "SinkError",
    "SinkRecord",
    "SqliteDialect",
    "TableMissing",
    "UnsupportedSchema",
    "WriteResult",
    "dialect_for",
    "from_avro",
    "from_connect_json",
    "parse_config",
]
