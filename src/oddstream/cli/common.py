"""What the ``oddstream`` commands share: the Typer app they register on, the console,
the store option, failing cleanly and reading the settings."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from ..config import Settings, SettingsError

app = typer.Typer(help="oddstream: an event-sourced betting platform.", no_args_is_help=True)
console = Console()

StoreOption = typer.Option(None, help="Event store URL [env ODDSTREAM_STORE_URL]")


def _fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/] {message}")
    raise typer.Exit(1)


def _settings(**overrides: Any) -> Settings:
    """The settings from the environment with the command's options over them; a bad
    value ends the command with the message naming it (no traceback)."""
    try:
        return Settings().with_overrides(**overrides)
    except SettingsError as exc:
        _fail(f"bad settings:\n{escape(str(exc))}")
