"""The ``oddstream`` command: serve, inspect races, bet, watch odds live, replay.

One module per group of commands, each registering its commands on the one Typer
``app`` (``common``): ``serve``; ``store`` (info, print, replay: they open the event
store themselves); ``client`` (races, bet, watch: they talk to a running service);
``load``; ``quotes`` (``import quotes`` and ``dlq``: they open the store too);
``connectors`` (the SQL sinks' connectors, through the service's Connect REST API);
``browse`` (the analysts' SQLite tables in Datasette, an optional extra).
"""

from __future__ import annotations

from typer.models import CommandInfo

from . import browse, client, cluster, connectors, load, quotes, serve, store  # noqa: F401  importing registers them
from .common import app

__all__ = ["app"]

# --help lists the commands in the order they were registered, which is the modules'
# import order; keep the order they had as one module. A command not named here follows.
_ORDER = (
    "serve",
    "up",
    "api",
    "worker",
    "info",
    "races",
    "bet",
    "watch",
    "print",
    "replay",
    "load",
)


def _position(command: CommandInfo) -> int:
    name = command.name or getattr(command.callback, "__name__", "")
    return _ORDER.index(name) if name in _ORDER else len(_ORDER)


app.registered_commands.sort(key=_position)
