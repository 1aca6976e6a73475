"""``oddstream connectors list|create FILE [--wait]|status NAME|watch NAME|pause|resume|
restart|delete|config``: the SQL sinks' connectors through a running service's Kafka
Connect REST API (the main port, or 8083 with --kafka-compat), with the admin key;
``watch`` and ``--wait`` show a sink's progress (``connector_watch``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import typer
from rich.markup import escape
from rich.table import Table

from .client import UrlOption
from .common import _fail, app, console
from .connector_watch import follow

connectors_app = typer.Typer(
    help="SQL sinks' connectors (Kafka Connect's REST API).", no_args_is_help=True
)
app.add_typer(connectors_app, name="connectors")

KeyOption = typer.Option(
    None, "--key", envvar="ODDSTREAM_ADMIN_KEY", help="The admin API key", show_default=False
)
_NAME = typer.Argument(..., help="The connector's name")
_FILE = typer.Argument(
    ..., exists=True, dir_okay=False, help='JSON: {"name": …, "config": {…}} as Connect takes it'
)
_INTERVAL = typer.Option(0.5, min=0.05, help="Seconds between readings of the status")
_TIMEOUT = typer.Option(
    None, min=0, help="Give up (exit code 1) after this many seconds [default: wait]"
)


#: seconds a request may take
REQUEST_TIMEOUT = 30.0


def _call(
    method: str,
    url: str,
    path: str,
    key: str | None,
    body: Any = None,
    timeout: float = REQUEST_TIMEOUT,
) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    try:
        response = httpx.request(
            method, f"{url}{path}", json=body, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {escape(url)}: {escape(str(exc))}")
    if response.status_code >= 400:
        _fail(f"{response.status_code}: {escape(_message(response))}")
    return response


def _message(response: httpx.Response) -> str:
    """A refusal's message: Connect's ``message``, else the body as it came (a proxy's
    page, a JSON body of another shape)."""
    try:
        body = response.json()
    except ValueError:
        return response.text
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return response.text


def _json(response: httpx.Response) -> Any:
    """The answer's JSON (an answer that is not JSON ends the command, e.g. a ``--url``
    that is not oddstream)."""
    try:
        return response.json()
    except ValueError:
        _fail(f"{escape(str(response.url))} did not answer JSON (is it oddstream?)")


def _path(name: str) -> str:
    return "/connectors/" + quote(name, safe="")


@connectors_app.command("list")
def list_connectors(url: str = UrlOption, key: str | None = KeyOption) -> None:
    """The connectors with their connector and task states, lag and rows written."""
    data = _json(_call("GET", url, "/connectors?expand=status", key))
    table = Table(title="connectors")
    for column in ("name", "connector", "task", "lag", "rows", "dead letters"):
        table.add_column(column)
    for name, entry in sorted(data.items()):
        status = entry["status"]
        tasks = status["tasks"]
        details = _json(_call("GET", url, f"{_path(name)}/status?details=true", key))
        figures = details.get("details", {})
        table.add_row(
            escape(name),
            status["connector"]["state"],
            tasks[0]["state"] if tasks else "",
            _figure(figures.get("lag")),
            _figure(figures.get("rows_written")),
            _figure(figures.get("dead_lettered")),
        )
    console.print(table)


def _figure(value: Any) -> str:
    return "" if value is None else f"{value:,}"


@connectors_app.command("create")
def create(
    file: Path = _FILE,
    url: str = UrlOption,
    key: str | None = KeyOption,
    wait: bool = typer.Option(
        False, "--wait", help="Then show its progress until it is caught up (as watch)"
    ),
    interval: float = _INTERVAL,
    timeout: float | None = _TIMEOUT,
) -> None:
    """Create a connector from a file as Connect's ``POST /connectors`` takes it."""
    try:
        body = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        _fail(f"{escape(str(file))}: {escape(str(exc))}")
    answer = _json(_call("POST", url, "/connectors", key, body))
    console.print(f"connector {escape(answer['name'])} created")
    status = _json(_call("GET", url, f"{_path(answer['name'])}/status?details=true", key))
    for line in status.get("details", {}).get("config_report", []):
        console.print(f"[yellow]note:[/] {escape(line)}")
    if wait:
        _follow(answer["name"], url, key, interval, timeout)


@connectors_app.command("watch")
def watch(
    name: str = _NAME,
    url: str = UrlOption,
    key: str | None = KeyOption,
    interval: float = _INTERVAL,
    timeout: float | None = _TIMEOUT,
) -> None:
    """Show a sink's progress (position against the log's head, lag, rows/s, time left)
    until it is caught up; exit code 1 if it FAILs (with the reason), is paused, or
    is not caught up by --timeout."""
    _follow(name, url, key, interval, timeout)


def _follow(name: str, url: str, key: str | None, interval: float, timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout

    def read() -> Any:
        wait = REQUEST_TIMEOUT
        if deadline is not None:  # a server that hangs ends the watch at --timeout too
            wait = min(wait, max(deadline - time.monotonic(), 1.0))
        return _json(_call("GET", url, f"{_path(name)}/status?details=true", key, timeout=wait))

    code = follow(name, read, console, interval=interval, timeout=timeout)
    if code:
        raise typer.Exit(code)


@connectors_app.command("status")
def status(name: str = _NAME, url: str = UrlOption, key: str | None = KeyOption) -> None:
    """The connector's and its task's states, the sink's figures, the trace if FAILED."""
    data = _json(_call("GET", url, f"{_path(name)}/status?details=true", key))
    console.print(f"connector {escape(name)}: {data['connector']['state']}")
    for task in data["tasks"]:
        console.print(f"task {task['id']}: {task['state']}")
    for field, value in data.get("details", {}).items():
        if field != "config_report" and value is not None:
            console.print(f"  {field}: {escape(str(value))}")
    for line in data.get("details", {}).get("config_report", []):
        console.print(f"  note: {escape(line)}")
    trace = data["connector"].get("trace") or next(
        (t["trace"] for t in data["tasks"] if t.get("trace")), None
    )
    if trace:
        console.print(f"[red]trace:[/]\n{escape(trace)}")


@connectors_app.command("config")
def config(name: str = _NAME, url: str = UrlOption, key: str | None = KeyOption) -> None:
    """The connector's config as JSON (passwords hidden)."""
    data = _json(_call("GET", url, f"{_path(name)}/config", key))
    console.print_json(json.dumps(data))


def _action(method: str, suffix: str, done: str) -> Any:
    def command(name: str = _NAME, url: str = UrlOption, key: str | None = KeyOption) -> None:
        _call(method, url, f"{_path(name)}{suffix}", key)
        console.print(f"connector {escape(name)} {done}")

    return command


connectors_app.command("pause", help="Pause a connector (kept across restarts).")(
    _action("PUT", "/pause", "paused")
)
connectors_app.command("resume", help="Resume a paused connector.")(
    _action("PUT", "/resume", "resumed")
)
connectors_app.command("restart", help="Restart a connector (a FAILED task tries again).")(
    _action("POST", "/restart", "restarted")
)
connectors_app.command("delete", help="Delete a connector (its tables stay).")(
    _action("DELETE", "", "deleted")
)
