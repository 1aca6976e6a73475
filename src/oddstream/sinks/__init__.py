"""SQL sinks for analysts, with Kafka Connect JDBC sink semantics.

- :mod:`.config`: a JDBC sink connector's configuration as Confluent users write it.
- :mod:`.schema`: records and their Connect schemas (from Avro or Connect's JSON).
- :mod:`.dialects`: SQLite, PostgreSQL and MariaDB/MySQL: identifiers, types, DDL, writes.
- :mod:`.writer`: :class:`JdbcSink`, each batch written with its position in one
  transaction of the target database.
- :mod:`.consumer`: :class:`SinkConsumer`, a sink run on the consumer runner (retries,
  dead letters, the bisection of a failed batch).
- :mod:`.connectors`: :class:`ConnectorManager`, connectors as events in the log.

See ``docs/analytics.md`` ("SQL sinks").
"""

from .config import ConfigProblem, JdbcSinkConfig, SinkConfigError, parse_config
from .connectors import (
    ConnectorConflict,
    ConnectorError,
    ConnectorExists,
    ConnectorInfo,
    ConnectorManager,
    ConnectorNotFound,
    ConnectorStatus,
    InvalidConnectorName,
)
from .consumer import NO_ITEMS, EventItems, RecordSource, SinkConsumer
from .dialects import MysqlDialect, PostgresDialect, SqliteDialect, dialect_for
from .errors import (
    InvalidIdentifier,
    NotTransactional,
    PositionConflict,
    RecordError,
    SchemaMismatch,
    SinkError,
    TableMissing,
    UnsupportedSchema,
)
from .failures import TargetUnavailable
from .schema import FieldSchema, RecordSchema, SinkRecord, from_avro, from_connect_json
from .writer import JdbcSink, WriteResult

__all__ = [
    "NO_ITEMS",
    "ConfigProblem",
    "ConnectorConflict",
    "ConnectorError",
    "ConnectorExists",
    "ConnectorInfo",
    "ConnectorManager",
    "ConnectorNotFound",
    "ConnectorStatus",
    "EventItems",
    "FieldSchema",
    "InvalidConnectorName",
    "InvalidIdentifier",
    "JdbcSink",
    "JdbcSinkConfig",
    "MysqlDialect",
    "NotTransactional",
    "PositionConflict",
    "PostgresDialect",
    "RecordError",
    "RecordSchema",
    "RecordSource",
    "SchemaMismatch",
    "SinkConfigError",
    "SinkConsumer",
    "SinkError",
    "SinkRecord",
    "SqliteDialect",
    "TableMissing",
    "TargetUnavailable",
    "UnsupportedSchema",
    "WriteResult",
    "dialect_for",
    "from_avro",
    "from_connect_json",
    "parse_config",
]
