"""``oddstream browse DB…``: the analysts' SQLite tables in Datasette, read-only, on the
loopback address. Datasette is an optional extra: ``pip install 'oddstream[browse]'``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from ..sinks.config import parse_connection_url, redact_jdbc_url
from .common import _fail, _settings, app, console

#: only this machine: Datasette has no login here, and the tables may hold released
#: personal fields
HOST = "127.0.0.1"
#: the Host headers answered: a page of another site that rebinds its own name to
#: 127.0.0.1 (DNS rebinding) sends its own name, and is refused
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALL = "pip install 'oddstream[browse]' (in a checkout: .venv/bin/pip install -e '.[browse]')"


_DATABASES = typer.Argument(
    None,
    metavar="[DB]...",
    help="SQLite files, as paths or as a sink's connection.url (jdbc:sqlite:PATH)"
    " [default: the quote tables' file: ODDSTREAM_QUOTE_TABLES_URL, else analytics.db"
    " beside an SQLite store, as serve --demo writes it]",
    show_default=False,
)


@app.command()
def browse(
    databases: list[str] | None = _DATABASES,
    port: int = typer.Option(8001, help="Port on 127.0.0.1 (0: any free one)"),
    immutable: bool = typer.Option(
        False,
        "--immutable",
        help="Open with SQLite's immutable=1: only for a file nothing writes (a copy);"
        " a file a sink is writing must be browsed without it",
    ),
) -> None:
    """Browse SQLite tables in Datasette, read-only, on 127.0.0.1: tables a page at a
    time, filters, facets, SELECT queries, JSON and CSV. Needs the browse extra."""
    try:
        from ..integrations.datasette import (
            SqliteFileError,
            check_sqlite_file,
            read_only_datasette,
        )
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "datasette":
            raise
        _fail(f"Datasette is not installed: {escape(INSTALL)}")
    paths = [_path(db) for db in databases or [_quote_tables()]]
    for path in paths:
        try:
            check_sqlite_file(path)
        except SqliteFileError as exc:
            _fail(escape(str(exc)))
    if not 0 <= port <= 65535:
        _fail(f"--port {port}: not a port")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(128)  # connections wait from now on, before the app is ready
    except OSError as exc:
        sock.close()
        _fail(f"cannot listen on {HOST}:{port}: {escape(exc.strerror or str(exc))}")
    ds = read_only_datasette(paths, immutable=immutable)
    url = f"http://{HOST}:{sock.getsockname()[1]}/"
    mode = "immutable" if immutable else "read-only"
    console.print(f"browsing {', '.join(escape(str(p)) for p in paths)} ({mode}) on [bold]{url}[/]")
    console.print("Ctrl-C stops it")
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises it again once stopped
        asyncio.run(_serve(ds, sock))
    console.print("stopped")


def _quote_tables() -> str:
    """The analysts' quote tables' target, where the service writes them:
    ``ODDSTREAM_QUOTE_TABLES_URL``, else where ``serve --demo`` puts them."""
    from ..demo import demo_quote_tables_url

    settings = _settings()
    url = settings.quote_tables_url or demo_quote_tables_url(settings.store_url)
    if url is None:
        _fail(
            "no file given, and no quote tables to default to (ODDSTREAM_QUOTE_TABLES_URL"
            " is unset and the store is not an SQLite file): name the SQLite file"
        )
    return url


def _path(database: str) -> Path:
    """A file path from a path or a ``jdbc:sqlite:`` URL (a sink's ``connection.url``)."""
    if not database.startswith("jdbc:"):
        return Path(database)
    shown = escape(redact_jdbc_url(database))  # a URL may hold a password
    try:
        url = parse_connection_url(database)
    except ValueError as exc:
        _fail(f"{shown}: {escape(str(exc))}")
    if url.dialect != "sqlite" or not url.path:
        _fail(
            f"{shown}: only SQLite files can be browsed (jdbc:sqlite:PATH); browse a"
            " PostgreSQL or MariaDB target with that database's own tools"
        )
    return Path(url.path)


async def _serve(ds: Any, sock: socket.socket) -> None:
    """Datasette's start-up hooks, then its app on ``sock`` until Ctrl-C (as ``datasette
    serve`` runs it)."""
    import uvicorn
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    await ds.invoke_startup()
    app = TrustedHostMiddleware(ds.app(), allowed_hosts=ALLOWED_HOSTS)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve(sockets=[sock])
