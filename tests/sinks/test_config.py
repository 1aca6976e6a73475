"""The JDBC sink configuration: Confluent's examples accepted unchanged, its defaults,
every refusal naming its setting, unknown settings kept, passwords never shown."""

from __future__ import annotations

from typing import Any

import pytest

from oddstream.sinks import SinkConfigError, parse_config
from oddstream.sinks.config import HIDDEN, parse_connection_url, redact_jdbc_url

SINK = "io.confluent.connect.jdbc.JdbcSinkConnector"
BASE = {"connector.class": SINK, "connection.url": "jdbc:sqlite:analytics.db", "topics": "t"}

#: The POC's connector, as it was posted to Kafka Connect (string values throughout).
POC = {
    "connector.class": SINK,
    "tasks.max": "1",
    "topics": "tote_win_bets,tote_win_bet_race_runners_odds",
    "connection.url": "jdbc:postgresql://postgres:5432/tote",
    "connection.user": "tote",
    "connection.password": "s3cr3t-pw",
    "auto.create": "true",
    "auto.evolve": "true",
    "insert.mode": "upsert",
    "pk.mode": "record_value",
    "pk.fields": "bet_id",
    "key.converter": "org.apache.kafka.connect.storage.StringConverter",
    "value.converter": "io.confluent.connect.avro.AvroConverter",
    "value.converter.schema.registry.url": "http://schema-registry:8081",
}


def test_confluent_example_accepted_unchanged() -> None:
    c = parse_config(POC)
    assert c.connector_class == SINK
    assert c.topics == ("tote_win_bets", "tote_win_bet_race_runners_odds")
    assert (c.insert_mode, c.pk_mode, c.pk_fields) == ("upsert", "record_value", ("bet_id",))
    assert c.auto_create
    assert c.auto_evolve
    conn = c.connection
    assert (conn.dialect, conn.host, conn.port, conn.database) == (
        "postgresql",
        "postgres",
        5432,
        "tote",
    )
    assert (conn.user, conn.password) == ("tote", "s3cr3t-pw")
    assert c.value_converter_schema_registry_url == "http://schema-registry:8081"
    assert c.unknown == {}
    assert c.ignored == {"tasks.max": "1"}


def test_confluent_defaults() -> None:
    c = parse_config(BASE)
    assert c.table_name_format == "${topic}"
    assert (c.insert_mode, c.pk_mode, c.pk_fields) == ("insert", "none", ())
    assert (c.auto_create, c.auto_evolve, c.delete_enabled) == (False, False, False)
    assert c.batch_size == 3000
    assert (c.max_retries, c.retry_backoff_ms) == (10, 3000)
    assert (c.connection_attempts, c.connection_backoff_ms) == (3, 10_000)
    assert c.errors_tolerance == "none"
    assert c.dlq_topic is None
    assert c.db_timezone == "UTC"
    assert c.key_converter_schemas_enable
    assert c.value_converter_schemas_enable
    assert c.table_name("orders") == "orders"


def test_the_call_deadline_is_ours_generous_by_default_and_set_in_ms() -> None:
    """``db.call.timeout.ms`` is a known setting (not reported as unknown): two minutes
    unless set, read in milliseconds."""
    c = parse_config(BASE)
    assert (c.db_call_timeout_ms, c.call_timeout) == (120_000, 120.0)
    assert c.report() == []
    c = parse_config({**BASE, "db.call.timeout.ms": "2500"})
    assert c.call_timeout == 2.5
    assert "db.call.timeout.ms" not in c.unknown


def test_json_typed_values_and_enum_case() -> None:
    c = parse_config(
        {**BASE, "auto.create": True, "batch.size": 500, "insert.mode": "UPSERT",
         "pk.mode": "Record_Value", "errors.tolerance": "ALL", "delete.enabled": "False"}
    )  # fmt: skip
    assert (c.auto_create, c.batch_size, c.insert_mode) == (True, 500, "upsert")
    assert (c.pk_mode, c.errors_tolerance, c.delete_enabled) == ("record_value", "all", False)


def test_aliases_of_the_connector_class() -> None:
    for alias in ("JdbcSinkConnector", "JdbcSink"):
        assert parse_config({**BASE, "connector.class": alias}).connector_class == SINK


def test_topics_regex_and_table_name_format() -> None:
    c = parse_config(
        {**{k: v for k, v in BASE.items() if k != "topics"}, "topics.regex": "tote_.*",
         "table.name.format": "analytics.sink_${topic}"}
    )  # fmt: skip
    assert c.follows("tote_win_bets")
    assert not c.follows("x_tote_win_bets")
    assert c.table_name("tote_win_bets") == "analytics.sink_tote_win_bets"


REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"connector.class": "io.confluent.connect.jdbc.JdbcSourceConnector"}, "connector.class"),
    ({"connector.class": None}, "connector.class"),
    ({"connection.url": None}, "connection.url"),
    ({"connection.url": "postgresql://h/db"}, "connection.url"),
    ({"connection.url": "jdbc:oracle:thin:@h:1521:x"}, "connection.url"),
    ({"connection.url": "jdbc:sqlite:"}, "connection.url"),
    ({"connection.url": "jdbc:mysql:h/db"}, "connection.url"),
    ({"topics": None}, "topics"),
    ({"topics.regex": "a.*"}, "topics"),
    ({"topics": None, "topics.regex": "a(("}, "topics.regex"),
    ({"table.name.format": ""}, "table.name.format"),
    ({"table.name.format": "${schema}.${topic}"}, "table.name.format"),
    ({"insert.mode": "merge"}, "insert.mode"),
    ({"pk.mode": "kafka"}, "pk.mode"),
    ({"pk.mode": "record"}, "pk.mode"),
    ({"batch.size": "0"}, "batch.size"),
    ({"batch.size": "many"}, "batch.size"),
    ({"auto.create": "yes"}, "auto.create"),
    ({"auto.evolve": "1"}, "auto.evolve"),
    ({"delete.enabled": "on"}, "delete.enabled"),
    ({"max.retries": "-1"}, "max.retries"),
    ({"retry.backoff.ms": "-5"}, "retry.backoff.ms"),
    ({"connection.attempts": "0"}, "connection.attempts"),
    ({"errors.tolerance": "some"}, "errors.tolerance"),
    ({"db.timezone": "Mars/Olympus"}, "db.timezone"),
    ({"db.call.timeout.ms": "0"}, "db.call.timeout.ms"),
    ({"db.call.timeout.ms": "99"}, "db.call.timeout.ms"),
    ({"db.call.timeout.ms": "soon"}, "db.call.timeout.ms"),
    ({"value.converter.schemas.enable": "maybe"}, "value.converter.schemas.enable"),
    # Confluent's and Connect's cross-checks
    ({"insert.mode": "upsert"}, "pk.mode"),
    ({"insert.mode": "update", "pk.mode": "none"}, "pk.mode"),
    ({"delete.enabled": "true", "pk.mode": "record_value"}, "delete.enabled"),
    ({"delete.enabled": "true"}, "delete.enabled"),
    ({"errors.deadletterqueue.topic.name": "t"}, "errors.deadletterqueue.topic.name"),
    (
        {"topics": None, "topics.regex": "t.*", "errors.deadletterqueue.topic.name": "t-dlq"},
        "errors.deadletterqueue.topic.name",
    ),
    ({"value.converter": "io.confluent.connect.avro.AvroConverter"},
     "value.converter.schema.registry.url"),
    ({"key.converter": "io.confluent.connect.protobuf.ProtobufConverter"},
     "key.converter.schema.registry.url"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "setting"), REFUSALS)
def test_each_refusal_names_its_setting(change: dict[str, Any], setting: str) -> None:
    config = {**BASE, **change}
    config = {k: v for k, v in config.items() if v is not None}
    with pytest.raises(SinkConfigError) as err:
        parse_config(config)
    assert setting in [p.setting for p in err.value.problems], err.value
    assert str(err.value).startswith(err.value.problems[0].setting)


def test_all_refused_settings_reported_at_once() -> None:
    with pytest.raises(SinkConfigError) as err:
        parse_config({**BASE, "batch.size": "x", "insert.mode": "merge", "auto.create": "y"})
    assert {p.setting for p in err.value.problems} == {"batch.size", "insert.mode", "auto.create"}


def test_not_a_mapping_refused() -> None:
    with pytest.raises(SinkConfigError):
        parse_config(["connector.class"])  # type: ignore[arg-type]


def test_unknown_settings_kept_and_reported_not_fatal() -> None:
    c = parse_config(
        {**BASE, "my.custom.flag": "x", "transforms": "route", "transforms.route.type": "R",
         "value.converter": "org.apache.kafka.connect.json.JsonConverter",
         "value.converter.decimal.format": "NUMERIC", "quote.sql.identifiers": "always"}
    )  # fmt: skip
    assert c.unknown == {"my.custom.flag": "x"}
    assert set(c.ignored) == {"transforms", "transforms.route.type", "quote.sql.identifiers"}
    assert c.converter_settings == {"value.converter.decimal.format": "NUMERIC"}
    report = c.report()
    assert "unknown setting 'my.custom.flag' kept, not used" in report
    assert any("transforms.route.type" in line for line in report)
    assert c.redacted()["my.custom.flag"] == "x"


PASSWORD = "pa55-w0rd!"


def test_passwords_never_in_plain_text() -> None:
    c = parse_config(
        {**BASE, "connection.url": f"jdbc:mysql://app:{PASSWORD}@db:3306/bets",
         "connection.password": PASSWORD, "ssl.truststore.password": PASSWORD,
         "value.converter": "io.confluent.connect.avro.AvroConverter",
         "value.converter.schema.registry.url": "http://sr:8081",
         "value.converter.basic.auth.user.info": f"user:{PASSWORD}"}
    )  # fmt: skip
    shown = [
        str(c.redacted()),
        repr(c),
        str(c),
        str(c.model_dump()),
        str(c.unknown),
        str(c.ignored),
    ]
    for text in shown:
        assert PASSWORD not in text
    assert c.redacted()["connection.password"] == HIDDEN
    assert c.redacted()["connection.url"] == f"jdbc:mysql://app:{HIDDEN}@db:3306/bets"
    assert c.redacted()["value.converter.basic.auth.user.info"] == HIDDEN
    # what the sink itself uses still has it
    assert c.connection.password == PASSWORD
    assert c.converter_settings["value.converter.basic.auth.user.info"] == f"user:{PASSWORD}"


def test_password_not_repeated_in_errors() -> None:
    with pytest.raises(SinkConfigError) as err:
        parse_config(
            {**BASE, "connection.password": PASSWORD, "connection.url": f"jdbc:x:{PASSWORD}"}
        )
    assert PASSWORD not in str(err.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        # Oracle's thin and OCI forms put user/password before the '@'
        (
            "jdbc:oracle:thin:scott/s3cr3t@db.example:1521/orcl",
            "jdbc:oracle:thin:scott/[hidden]@db.example:1521/orcl",
        ),
        (
            "jdbc:oracle:thin:scott/s3cr3t@//db.example:1521/svc",
            "jdbc:oracle:thin:scott/[hidden]@//db.example:1521/svc",
        ),
        ("jdbc:oracle:oci:scott/s3cr3t@tns", "jdbc:oracle:oci:scott/[hidden]@tns"),
        # a password holding an '@' the user did not escape: all of it hidden
        ("jdbc:mysql://u:s3c@r3t@h/db", "jdbc:mysql://u:[hidden]@h/db"),
        # what is no password is left as it is
        (
            "jdbc:postgresql://h/db?application_name=a@b",
            "jdbc:postgresql://h/db?application_name=a@b",
        ),
        ("jdbc:oracle:thin:@//db.example:1521/svc", "jdbc:oracle:thin:@//db.example:1521/svc"),
        ("jdbc:sqlite:data/a@b.db", "jdbc:sqlite:data/a@b.db"),
    ],
)
def test_every_form_of_password_in_a_url_is_hidden(url: str, shown: str) -> None:
    assert redact_jdbc_url(url) == shown


def test_password_in_url_query_redacted() -> None:
    url = f"jdbc:postgresql://h:5432/db?user=u&password={PASSWORD}&sslmode=require"
    assert (
        redact_jdbc_url(url)
        == f"jdbc:postgresql://h:5432/db?user=u&password={HIDDEN}&sslmode=require"
    )
    parsed = parse_connection_url(url)
    assert (parsed.user, parsed.password, dict(parsed.params)) == (
        "u",
        PASSWORD,
        {"sslmode": "require"},
    )
    assert PASSWORD not in repr(parsed)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("jdbc:postgresql://h/db", ("postgresql", "h", 5432, "db", None)),
        ("jdbc:postgresql:tote", ("postgresql", "localhost", 5432, "tote", None)),
        ("jdbc:mysql://h:3307/db", ("mysql", "h", 3307, "db", None)),
        ("jdbc:mariadb://u@h/db", ("mysql", "h", 3306, "db", None)),
        ("jdbc:sqlite:data/analytics.db", ("sqlite", None, None, None, "data/analytics.db")),
        ("jdbc:sqlite::memory:", ("sqlite", None, None, None, ":memory:")),
    ],
)
def test_connection_urls(url: str, expected: tuple[Any, ...]) -> None:
    u = parse_connection_url(url)
    assert (u.dialect, u.host, u.port, u.database, u.path) == expected


def test_connection_user_overrides_url() -> None:
    c = parse_config({**BASE, "connection.url": "jdbc:mysql://a:b@h/db", "connection.user": "c"})
    assert (c.connection.user, c.connection.password) == ("c", "b")


@pytest.mark.parametrize(
    "url",
    [
        "jdbc:mysql://address=(host=db.example)(port=3306)(user=u)(password=S3cret)/test",
        "jdbc:mysql://(host=db.example,port=3306,user=u,password=S3cret)/test",
        "jdbc:mariadb://db1.example,db2.example/test?password=S3cret",
        "jdbc:postgresql://db1.example,db2.example/test?password=S3cret",
    ],
)
def test_address_forms_refused_never_repeating_the_password(url: str) -> None:
    """Connector/J's key-value host forms carry the password inside the host: taken as a
    host name, it was shown by redacted(), model_dump() and the driver's connect error."""
    with pytest.raises(SinkConfigError) as err:
        parse_config({**BASE, "connection.url": url})
    assert err.value.problems[0].setting == "connection.url"
    assert "S3cret" not in str(err.value)
    assert "db.example" not in str(err.value)


@pytest.mark.parametrize("host", ["db.example", "127.0.0.1", "[::1]", "my_host-2"])
def test_plain_hosts_still_accepted(host: str) -> None:
    assert parse_connection_url(f"jdbc:mysql://{host}:3307/test").port == 3307


def test_tokens_and_credentials_hidden() -> None:
    """A registry's bearer token (``bearer.auth.token``) and credentials are secrets too."""
    c = parse_config(
        {
            **BASE,
            "value.converter.bearer.auth.token": "T0ken-value",
            "key.converter.bearer.auth.token": "T0ken-value",
            "some.api.credentials": "T0ken-value",
            "oauth.token": "T0ken-value",
        }
    )
    for shown in (c.redacted(), c.unknown, repr(c), str(c), c.model_dump_json()):
        assert "T0ken-value" not in str(shown)
    assert c.redacted()["value.converter.bearer.auth.token"] == HIDDEN


def test_url_parameters_not_in_the_parsed_urls_repr() -> None:
    c = parse_config(
        {**BASE, "connection.url": "jdbc:postgresql://db/x?sslpassword=S3cret&password=S3cret"}
    )
    assert c.connection.params["sslpassword"] == "S3cret"
    assert "S3cret" not in repr(c.connection)
    assert "S3cret" not in repr(c)


def test_pretty_printers_show_the_redacted_view() -> None:
    """rich (a dependency: the CLI, tracebacks with locals) and devtools print a pydantic
    model from ``__repr_args__``, which listed connection_url with its password."""
    import rich.pretty

    c = parse_config(
        {**BASE, "connection.url": "jdbc:postgresql://db/x?password=S3cret",
         "connection.password": "S3cret2"}
    )  # fmt: skip
    shown = rich.pretty.pretty_repr(c)
    assert "S3cret" not in shown
    assert "connection.url" in shown
    assert "S3cret" not in str(list(c.__repr_args__()))
