"""The commands that talk to a running service over HTTP: ``races``, ``bet``, ``watch``."""

from __future__ import annotations

import contextlib
import json
import time
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import typer
from rich.live import Live
from rich.table import Table

from .common import _fail, app, console

UrlOption = typer.Option(
    "http://127.0.0.1:8000", "--url", envvar="ODDSTREAM_URL", help="The service's base URL"
)


def _money(cents: int | None) -> str:
    return "" if cents is None else f"${cents / 100:,.2f}"


def _get(url: str, path: str) -> Any:
    try:
        response = httpx.get(f"{url}{path}", timeout=10)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {url}: {exc}")
    if response.status_code >= 400:
        _fail(response.json().get("message", response.text))
    return response.json()


@app.command()
def races(url: str = UrlOption) -> None:
    """List races with their status and pool totals."""
    data = _get(url, "/races")
    table = Table(title=f"races (position {data['position']})")
    for column in ("race", "meeting", "post time", "status", "runners", "bets", "pools"):
        table.add_column(column)
    for race in data["races"]:
        pools = ", ".join(f"{p['pool']} {_money(p['gross_cents'])}" for p in race["pools"])
        table.add_row(
            race["race_id"],
            race["meeting"],
            race["post_time"],
            race["status"],
            str(len(race["runners"])),
            str(race["bets"]),
            pools,
        )
    console.print(table)


@app.command()
def bet(
    race: str = typer.Option(..., help="Race id"),
    runner: list[int] = typer.Option(..., help="Runner number (repeat for exotics)"),  # noqa: B008
    stake: str = typer.Option(..., help="Stake in dollars, e.g. 5 or 2.50"),
    pool: str = typer.Option("WIN", help="WIN, PLACE, SHOW, EXACTA, QUINELLA, TRIFECTA"),
    request_id: str | None = typer.Option(None, help="Makes a retry safe"),
    url: str = UrlOption,
) -> None:
    """Place a bet."""
    try:
        cents = Decimal(stake) * 100
    except InvalidOperation:
        _fail(f"stake {stake!r} is not an amount")
    if cents != cents.to_integral_value():
        _fail("stakes are whole cents")
    body = {
        "pool": pool.upper(),
        "selection": runner,
        "stake_cents": int(cents),
        "request_id": request_id,
    }
    try:
        response = httpx.post(f"{url}/races/{race}/bets", json=body, timeout=10)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach {url}: {exc}")
    answer = response.json()
    if response.status_code >= 400:
        _fail(f"{answer.get('error')}: {answer.get('message')}")
    console.print(f"bet {answer['bet_id']} placed at position {answer['position']}")


def _board_table(race: str, position: int, board: dict[str, Any]) -> Table:
    table = Table(title=f"{race} — {board['status']} — position {position}")
    for column in ("#", "runner", "win pool", "approx $", "odds", "place pays", "show pays"):
        table.add_column(column, justify="right" if column != "runner" else "left")
    for r in board["runners"]:
        name = f"[strike]{r['name']}[/]" if r["scratched"] else r["name"]
        table.add_row(
            str(r["number"]),
            name,
            _money(r["win_stakes_cents"]),
            _money(r["win_dividend_cents"]),
            r["ladder"] or "",
            _range(r["place_pays"]),
            _range(r["show_pays"]),
        )
    totals = "  ".join(f"{p['pool']} {_money(p['gross_cents'])}" for p in board["pools"])
    table.caption = totals
    return table


def _range(pays: list[int] | None) -> str:
    return "" if not pays else f"{_money(pays[0])}–{_money(pays[1])}"


@app.command()
def watch(race: str = typer.Option(..., help="Race id"), url: str = UrlOption) -> None:
    """A live odds table (like ``SELECT … WHERE race_id = R EMIT CHANGES``)."""

    def stream() -> None:
        last: str | None = None
        with Live(console=console, auto_refresh=False) as live:
            while True:
                headers = {"Last-Event-ID": last} if last else {}
                try:
                    with httpx.stream(
                        "GET",
                        f"{url}/races/{race}/odds/stream",
                        headers=headers,
                        timeout=httpx.Timeout(10, read=60),
                    ) as response:
                        if response.status_code >= 400:
                            _fail(json.loads(response.read()).get("message", "refused"))
                        event: dict[str, str] = {}
                        for line in response.iter_lines():
                            if line.startswith("id: "):
                                event["id"] = line[4:]
                            elif line.startswith("data: "):
                                event["data"] = line[6:]
                            elif not line and "data" in event:
                                message = json.loads(event["data"])
                                last = event.get("id", last)
                                live.update(
                                    _board_table(race, message["position"], message["board"]),
                                    refresh=True,
                                )
                                event = {}
                except httpx.HTTPError as exc:
                    console.print(f"[yellow]reconnecting: {exc}[/]")
                    time.sleep(1)

    with contextlib.suppress(KeyboardInterrupt):
        stream()
