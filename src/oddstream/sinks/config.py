"""A Kafka Connect JDBC sink configuration, as users of Confluent's connector write it.

:func:`parse_config` takes the ``config`` object of a connector exactly as it would be
posted to Kafka Connect (string values, dotted names) and answers a typed
:class:`JdbcSinkConfig` with Confluent's defaults, or raises :class:`SinkConfigError`
listing every refused setting by its name and why. Settings oddstream does not know are
kept (:attr:`JdbcSinkConfig.unknown`) and reported, never fatal; known settings that
change nothing here are kept apart (:attr:`JdbcSinkConfig.ignored`). Passwords never
appear in plain text: not in :meth:`JdbcSinkConfig.redacted`, ``repr`` or error messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, unquote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
)

SINK_CLASS = "io.confluent.connect.jdbc.JdbcSinkConnector"
#: Connect resolves a plugin by its full class name or its simple-name aliases.
SINK_CLASS_ALIASES = frozenset({SINK_CLASS, "JdbcSinkConnector", "JdbcSink"})

AVRO_CONVERTER = "io.confluent.connect.avro.AvroConverter"
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"
#: Converters that read their schemas from a Schema Registry (need ``schema.registry.url``).
REGISTRY_CONVERTERS = frozenset(
    {
        AVRO_CONVERTER,
        "io.confluent.connect.json.JsonSchemaConverter",
        "io.confluent.connect.protobuf.ProtobufConverter",
    }
)

HIDDEN = "[hidden]"

#: ``db.call.timeout.ms``'s default: generous, so that only a database that does not
#: answer at all meets it (a batch's statement normally answers in well under a second)
DEFAULT_CALL_TIMEOUT_MS = 120_000

#: Settings of Kafka Connect or of Confluent's connector accepted as they are but acting on
#: nothing in oddstream (one task per connector; identifiers are always quoted; ...).
IGNORED_SETTINGS = frozenset(
    {
        "tasks.max",
        "quote.sql.identifiers",
        "header.converter",
        "errors.log.enable",
        "errors.log.include.messages",
        "errors.retry.timeout",
        "errors.retry.delay.max.ms",
        "errors.deadletterqueue.topic.replication.factor",
        "errors.deadletterqueue.context.headers.enable",
        "dialect.name",
        "sql.quote.identifiers",
        "table.types",
        "transforms",
        "predicates",
        "config.action.reload",
    }
)
_IGNORED_PREFIXES = ("transforms.", "predicates.", "consumer.override.", "header.converter.")
_CONVERTER_PREFIXES = ("key.converter.", "value.converter.")

Dialect = Literal["sqlite", "postgresql", "mysql"]
InsertMode = Literal["insert", "upsert", "update"]
PkMode = Literal["none", "record_key", "record_value"]
ErrorsTolerance = Literal["none", "all"]


class SinkConfigError(ValueError):
    """A connector configuration was refused: :attr:`problems` names each refused
    setting and why (a password's value is never repeated)."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.setting}: {p.message}" for p in problems))


@dataclass(frozen=True)
class ConfigProblem:
    """One refused setting (``setting`` is its Connect name, e.g. ``pk.mode``)."""

    setting: str
    message: str


@dataclass(frozen=True)
class ConnectionUrl:
    """A parsed ``connection.url``: which database, where, and the URL's own
    parameters (a ``user``/``password`` given in the URL is kept apart from them)."""

    dialect: Dialect
    host: str | None = None
    port: int | None = None
    database: str | None = None
    path: str | None = None  # SQLite: the file (``:memory:`` for an in-memory database)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    params: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets


_SECRET_PARAM = re.compile(r"(password|secret|user\.info|jaas|token|credential)", re.IGNORECASE)


def _is_secret(name: str) -> bool:
    return bool(_SECRET_PARAM.search(name))


def redact_jdbc_url(url: str) -> str:
    """``url`` with any password it holds (``//user:pw@host``, Oracle's
    ``user/pw@host``, ``?password=pw``) hidden; a password holding an unescaped ``@``
    is hidden up to the host's ``@``."""
    url = re.sub(r"(//[^/@:?;]*:)[^/?;]*@", rf"\1{HIDDEN}@", url)
    if not url.startswith("jdbc:sqlite:"):  # a file path may hold an '@' and a '/'
        url = re.sub(r"^(jdbc:(?:[\w-]+:)+[^/@:?;]+/)[^?;]*@", rf"\1{HIDDEN}@", url)
    return re.sub(
        r"([?&;]([^=&;]*)=)([^&;]*)",
        lambda m: m.group(1) + HIDDEN if _is_secret(m.group(2)) else m.group(0),
        url,
    )


_NETWORK_URL = re.compile(
    r"^(?:(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@)?"
    r"(?P<host>\[[^\]]+\]|[^:/?;]*)(?::(?P<port>\d+))?"
    r"(?:/(?P<database>[^?;]*))?(?:[?;](?P<params>.*))?$"
)


#: One host: a name or IPv4 address, or an IPv6 address in brackets.
_HOST = re.compile(r"^(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?\])$")


def parse_connection_url(url: str) -> ConnectionUrl:
    """Parse a JDBC URL of one of the three supported databases, or raise ``ValueError``
    with the reason (without the password)."""
    if not url.startswith("jdbc:"):
        raise ValueError("a JDBC URL starts with 'jdbc:' (jdbc:postgresql://…, jdbc:sqlite:…)")
    rest = url[len("jdbc:") :]
    subprotocol, _, tail = rest.partition(":")
    if subprotocol == "sqlite":
        if not tail:
            raise ValueError("jdbc:sqlite: needs a file path (jdbc:sqlite:analytics.db)")
        path, _, query = tail.partition("?")
        return ConnectionUrl("sqlite", path=path, params=dict(parse_qsl(query)))
    if subprotocol not in ("postgresql", "mysql", "mariadb"):
        raise ValueError(
            f"unsupported database {subprotocol!r}: oddstream's JDBC sink writes to "
            "jdbc:postgresql:, jdbc:mysql:, jdbc:mariadb: and jdbc:sqlite:"
        )
    dialect: Dialect = "postgresql" if subprotocol == "postgresql" else "mysql"
    if not tail.startswith("//"):
        if dialect == "postgresql" and tail and "/" not in tail:
            return ConnectionUrl(dialect, host="localhost", port=5432, database=tail)
        raise ValueError(f"expected jdbc:{subprotocol}://host[:port]/database")
    m = _NETWORK_URL.match(tail[2:])
    if m is None or not m.group("host"):
        raise ValueError(f"expected jdbc:{subprotocol}://host[:port]/database")
    if not _HOST.match(m.group("host")):
        # Connector/J's address=(…)(password=…) and (host=…,password=…) forms, host lists:
        # not supported, and never repeated (they may hold the password)
        raise ValueError(
            f"expected jdbc:{subprotocol}://host[:port]/database with one host name or "
            "address (address=(…) forms and host lists are not supported)"
        )
    sep = "&" if dialect == "postgresql" or ";" not in (m.group("params") or "") else ";"
    params = dict(parse_qsl(m.group("params") or "", separator=sep))
    user = params.pop("user", None) or (unquote(m.group("user")) if m.group("user") else None)
    password = params.pop("password", None)
    if password is None and m.group("password") is not None:
        password = unquote(m.group("password"))
    default_port = 5432 if dialect == "postgresql" else 3306
    return ConnectionUrl(
        dialect,
        host=m.group("host").strip("[]"),
        port=int(m.group("port")) if m.group("port") else default_port,
        database=unquote(m.group("database")) if m.group("database") else None,
        user=user,
        password=password,
        params=params,
    )


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _strip(value: object) -> object:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _csv(value: object) -> object:
    """Connect's list type: comma-separated, spaces around items dropped."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _bool(value: object) -> object:
    """Connect's booleans: ``true``/``false`` in any case (nothing else)."""
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        raise ValueError("expected true or false")
    return value


Lower = BeforeValidator(_lower)
Csv = BeforeValidator(_csv)
Bool = Annotated[bool, BeforeValidator(_bool)]
OptStr = Annotated[str | None, BeforeValidator(_strip)]


class JdbcSinkConfig(BaseModel):
    """A parsed JDBC sink configuration (Confluent's names as aliases, its defaults).

    Build it with :func:`parse_config`. ``unknown`` holds the settings oddstream does not
    know, ``ignored`` the known ones that act on nothing here, ``converter_settings`` the
    converters' other ``key.converter.*`` / ``value.converter.*`` settings.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=False, extra="forbid")

    name: OptStr = Field(None, alias="name")
    connector_class: str = Field(alias="connector.class")
    connection_url: str = Field(alias="connection.url")
    connection_user: OptStr = Field(None, alias="connection.user")
    connection_password: SecretStr | None = Field(None, alias="connection.password")
    connection_attempts: int = Field(3, ge=1, alias="connection.attempts")
    connection_backoff_ms: int = Field(10_000, ge=0, alias="connection.backoff.ms")
    topics: Annotated[tuple[str, ...], Csv] = Field((), alias="topics")
    topics_regex: OptStr = Field(None, alias="topics.regex")
    table_name_format: str = Field("${topic}", min_length=1, alias="table.name.format")
    insert_mode: Annotated[InsertMode, Lower] = Field("insert", alias="insert.mode")
    pk_mode: Annotated[PkMode, Lower] = Field("none", alias="pk.mode")
    pk_fields: Annotated[tuple[str, ...], Csv] = Field((), alias="pk.fields")
    fields_whitelist: Annotated[tuple[str, ...], Csv] = Field((), alias="fields.whitelist")
    auto_create: Bool = Field(False, alias="auto.create")
    auto_evolve: Bool = Field(False, alias="auto.evolve")
    batch_size: int = Field(3000, ge=1, alias="batch.size")
    delete_enabled: Bool = Field(False, alias="delete.enabled")
    db_timezone: str = Field("UTC", alias="db.timezone")
    errors_tolerance: Annotated[ErrorsTolerance, Lower] = Field("none", alias="errors.tolerance")
    dlq_topic: OptStr = Field(None, alias="errors.deadletterqueue.topic.name")
    max_retries: int = Field(10, ge=0, alias="max.retries")
    retry_backoff_ms: int = Field(3000, ge=0, alias="retry.backoff.ms")
    #: oddstream's own (Confluent's sink has none): the longest a call to the database
    #: (connecting, one statement, the commit) may go without an answer
    db_call_timeout_ms: int = Field(
        DEFAULT_CALL_TIMEOUT_MS, ge=100, le=86_400_000, alias="db.call.timeout.ms"
    )
    key_converter: OptStr = Field(None, alias="key.converter")
    value_converter: OptStr = Field(None, alias="value.converter")
    key_converter_schemas_enable: Bool = Field(True, alias="key.converter.schemas.enable")
    value_converter_schemas_enable: Bool = Field(True, alias="value.converter.schemas.enable")
    key_converter_schema_registry_url: OptStr = Field(
        None, alias="key.converter.schema.registry.url"
    )
    value_converter_schema_registry_url: OptStr = Field(
        None, alias="value.converter.schema.registry.url"
    )

    # Filled by parse_config, not by the configuration's own names.
    # (excluded from model_dump: they may hold secrets; ``unknown`` and ``ignored`` are
    # kept with secret-looking values hidden)
    converter_settings: Mapping[str, str] = Field(
        default_factory=dict, alias="_converters", exclude=True, repr=False
    )
    ignored: Mapping[str, str] = Field(default_factory=dict, alias="_ignored")
    unknown: Mapping[str, str] = Field(default_factory=dict, alias="_unknown")
    raw: Mapping[str, Any] = Field(default_factory=dict, alias="_raw", exclude=True, repr=False)

    @field_validator("connector_class")
    @classmethod
    def _connector_class(cls, value: str) -> str:
        value = value.strip()
        if value not in SINK_CLASS_ALIASES:
            raise ValueError(f"this sink is {SINK_CLASS} (got {value!r})")
        return SINK_CLASS

    @field_validator("connection_url")
    @classmethod
    def _connection_url(cls, value: str) -> str:
        parse_connection_url(value.strip())
        return value.strip()

    @field_serializer("connection_url")
    def _dump_url(self, value: str) -> str:
        return redact_jdbc_url(value)

    @field_validator("db_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("topics_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("table_name_format")
    @classmethod
    def _table_format(cls, value: str) -> str:
        leftover = value.replace("${topic}", "")
        if "${" in leftover:
            raise ValueError("the only placeholder is ${topic}")
        return value

    # --- what the sink uses -------------------------------------------------------

    @property
    def connection(self) -> ConnectionUrl:
        """``connection.url`` parsed; ``connection.user`` / ``connection.password``
        take precedence over credentials written in the URL."""
        url = parse_connection_url(self.connection_url)
        password = (
            self.connection_password.get_secret_value()
            if self.connection_password is not None
            else url.password
        )
        return ConnectionUrl(
            url.dialect,
            host=url.host,
            port=url.port,
            database=url.database,
            path=url.path,
            user=self.connection_user or url.user,
            password=password,
            params=url.params,
        )

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.db_timezone)

    @property
    def call_timeout(self) -> float:
        """``db.call.timeout.ms`` in seconds."""
        return self.db_call_timeout_ms / 1000

    def follows(self, topic: str) -> bool:
        """Whether ``topic`` is one of the connector's (``topics`` or ``topics.regex``,
        which must match the whole name, as Connect's does)."""
        if self.topics_regex is not None:
            return re.fullmatch(self.topics_regex, topic) is not None
        return topic in self.topics

    def table_name(self, topic: str) -> str:
        """The table a topic's records go to (``table.name.format``, ``${topic}``
        replaced). Checked and quoted by the dialect, never used as SQL as it is."""
        return self.table_name_format.replace("${topic}", topic)

    def report(self) -> list[str]:
        """One line for each setting kept but not acted on (unknown or ignored)."""
        lines = [f"unknown setting {k!r} kept, not used" for k in sorted(self.unknown)]
        lines += [f"setting {k!r} accepted, has no effect here" for k in sorted(self.ignored)]
        return lines

    def redacted(self) -> dict[str, str]:
        """The configuration as it was given, with every password hidden (fit to be
        shown: Connect's ``GET /connectors/{name}/config``, logs)."""
        return {key: _redact_value(key, value) for key, value in self.raw.items()}

    def __repr__(self) -> str:
        return f"JdbcSinkConfig({self.redacted()!r})"

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # what rich's and devtools' pretty printers (and rich tracebacks' locals) show:
        # pydantic's own would list connection_url with its password
        yield from self.redacted().items()

    __str__ = __repr__


def _redact_value(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else _connect_text(value)
    if _is_secret(key):
        return HIDDEN
    if key == "connection.url" or "url" in key:
        return redact_jdbc_url(text)
    return text


def _connect_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_FIELD_ALIASES = {
    f.alias for f in JdbcSinkConfig.model_fields.values() if f.alias and f.alias[0] != "_"
}


def _setting_of(loc: tuple[int | str, ...]) -> str:
    return str(loc[0]) if loc else "config"


def parse_config(config: Mapping[str, Any]) -> JdbcSinkConfig:
    """Parse a connector's ``config`` (Connect's names and string values; JSON numbers
    and booleans are accepted too). Raises :class:`SinkConfigError` naming every
    refused setting."""
    if not isinstance(config, Mapping):
        raise SinkConfigError([ConfigProblem("config", "expected an object of settings")])
    known: dict[str, Any] = {}
    converters: dict[str, str] = {}
    ignored: dict[str, str] = {}
    unknown: dict[str, str] = {}
    problems: list[ConfigProblem] = []
    for key, value in config.items():
        if not isinstance(key, str):
            problems.append(ConfigProblem(str(key), "a setting's name is a string"))
            continue
        if value is not None and not isinstance(value, str | int | float | bool):
            problems.append(ConfigProblem(key, "a setting's value is a string"))
            continue
        if key in _FIELD_ALIASES:
            if value is not None:
                known[key] = value
        elif key in IGNORED_SETTINGS or key.startswith(_IGNORED_PREFIXES):
            ignored[key] = _redact_value(key, value)
        elif key.startswith(_CONVERTER_PREFIXES):
            converters[key] = _connect_text(value)
        else:
            unknown[key] = _redact_value(key, value)
    try:
        parsed = JdbcSinkConfig.model_validate(
            {
                **known,
                "_converters": converters,
                "_ignored": ignored,
                "_unknown": unknown,
                "_raw": dict(config),
            }
        )
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            setting = _setting_of(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "required"
            problems.append(ConfigProblem(setting, message))
        raise SinkConfigError(problems) from None
    if problems:
        raise SinkConfigError(problems)
    problems = _cross_checks(parsed)
    if problems:
        raise SinkConfigError(problems)
    return parsed


def _cross_checks(c: JdbcSinkConfig) -> list[ConfigProblem]:
    """The checks Kafka Connect and Confluent's connector make across settings."""
    out: list[ConfigProblem] = []
    if c.topics and c.topics_regex is not None:
        out.append(ConfigProblem("topics", "topics and topics.regex are mutually exclusive"))
    elif not c.topics and c.topics_regex is None:
        out.append(ConfigProblem("topics", "must configure one of topics or topics.regex"))
    if c.dlq_topic is not None and c.dlq_topic in c.topics:
        out.append(
            ConfigProblem(
                "errors.deadletterqueue.topic.name",
                f"the dead letter queue topic {c.dlq_topic!r} may not be one of the topics",
            )
        )
    if c.dlq_topic is not None and c.topics_regex is not None and c.follows(c.dlq_topic):
        out.append(
            ConfigProblem(
                "errors.deadletterqueue.topic.name",
                f"the dead letter queue topic {c.dlq_topic!r} may not match topics.regex",
            )
        )
    if c.insert_mode in ("upsert", "update") and c.pk_mode == "none":
        out.append(
            ConfigProblem(
                "pk.mode",
                f"insert.mode={c.insert_mode} needs key fields: pk.mode record_key or "
                "record_value, not none",
            )
        )
    if c.delete_enabled and c.pk_mode != "record_key":
        out.append(
            ConfigProblem(
                "delete.enabled",
                "primary key mode must be 'record_key' when delete support is enabled",
            )
        )
    for side in ("key", "value"):
        converter = getattr(c, f"{side}_converter")
        if converter in REGISTRY_CONVERTERS and not getattr(
            c, f"{side}_converter_schema_registry_url"
        ):
            out.append(
                ConfigProblem(
                    f"{side}.converter.schema.registry.url",
                    f"required by {converter}",
                )
            )
    return out
