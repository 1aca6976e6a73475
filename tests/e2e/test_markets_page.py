"""The fixed-odds page (``/markets``) in a real browser against a real server: markets
created, updated and deleted through the REST command API appear, change (flashing) and
disappear on the page live, over GraphQL's ``getInstantOdds``; prices in decimal and
fractional odds. Screenshots land in /tmp/oddstream-e2e/."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from api.conftest import LiveServer

from .conftest import PageErrors

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.timeout(60)


def send(
    live: LiveServer, method: str, path: str, kind: str, rid: str, game: str, **line: Any
) -> Any:
    body = {
        "RequestID": rid,
        "Provider": "e2e",
        "Command": kind,
        "Payload": {"GameID": game},
    }
    if line:  # a DeleteOdds names the game only
        body["Payload"]["MoneyLine"] = {k.capitalize(): v for k, v in line.items()}
    answer = httpx.request(method, f"{live.url}{path}", json=body, headers=live.admin)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def test_markets_appear_change_and_go_live(
    live: LiveServer, page: Page, page_errors: PageErrors, shots: Path
) -> None:
    from playwright.sync_api import expect

    derby = send(live, "POST", "/odds", "NewOdds", "n1", "derby", home=1.91, away=4.2, draw=3.4)
    page.goto(f"{live.url}/markets")

    # the market created before the page opened is there, in both formats
    row = page.locator(f'tr[data-market="{derby["ExternalID"]}"]')
    expect(row.locator("th")).to_have_text("derby")
    home = row.locator('[data-outcome="home"]')
    expect(home.locator('[data-field="decimal"]')).to_have_text("1.91")
    expect(home.locator('[data-field="fractional"]')).to_have_text("91/100")
    expect(row.locator('[data-outcome="away"] [data-field="decimal"]')).to_have_text("4.20")
    expect(row.locator('[data-outcome="away"] [data-field="fractional"]')).to_have_text("16/5")
    expect(row.locator('[data-outcome="draw"] [data-field="fractional"]')).to_have_text("12/5")
    expect(page.locator("#conn")).to_have_text("Live")
    page.screenshot(path=shots / "10-markets.png")

    # a market created now appears, below the older one; a two-way game has no draw
    cup = send(live, "POST", "/odds", "NewOdds", "n2", "cup-final", home=2, away=1.8)
    cup_row = page.locator(f'tr[data-market="{cup["ExternalID"]}"]')
    expect(cup_row.locator('[data-outcome="home"] [data-field="decimal"]')).to_have_text("2.00")
    expect(cup_row.locator('[data-outcome="home"] [data-field="fractional"]')).to_have_text("1/1")
    expect(cup_row.locator('[data-outcome="draw"] [data-field="decimal"]')).to_have_text("—")
    expect(page.locator("tbody tr")).to_have_count(2)
    assert page.locator("tbody tr th").all_text_contents() == ["derby", "cup-final"]
    expect(page.locator("#market-count")).to_have_text("2")

    # an update reaches the page: the shortened price flashes
    decimal = home.locator('[data-field="decimal"]')
    path = f"/odds/{derby['ExternalID']}"
    updated = send(live, "PATCH", path, "UpdateOdds", "u1", "derby", home=1.5, away=5, draw=3.75)
    page.wait_for_function(
        "el => el.textContent === '1.50' && el.getAnimations().length > 0",
        arg=decimal.element_handle(),
        timeout=5000,
    )
    expect(home.locator('[data-field="fractional"]')).to_have_text("1/2")
    expect(row.locator('[data-outcome="draw"] [data-field="fractional"]')).to_have_text("11/4")
    expect(row).to_have_attribute("data-position", str(updated["Position"]))
    # the book: 100 × (1/1.5 + 1/5 + 1/3.75) = 113.3 %
    expect(row.locator('[data-field="book"]')).to_have_text("113.3%")
    page.screenshot(path=shots / "11-markets-updated.png")

    # a deleted market leaves the page; the other stays
    send(live, "DELETE", path, "DeleteOdds", "d1", "derby")
    expect(row).to_have_count(0)
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("#market-count")).to_have_text("1")
    assert page_errors == []


def test_the_page_shows_the_markets_again_after_reconnecting(
    live: LiveServer, page: Page, page_errors: PageErrors
) -> None:
    from playwright.sync_api import expect

    # keep the page's WebSockets where the test can close them
    page.add_init_script(
        "const Native = WebSocket; window.sockets = [];"
        "window.WebSocket = class extends Native {"
        "  constructor(...a) { super(...a); window.sockets.push(this); } };"
    )
    first = send(live, "POST", "/odds", "NewOdds", "r1", "league", home=2.5, away=2.5, draw=3)
    page.goto(f"{live.url}/markets")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("#conn")).to_have_text("Live")
    # the connection drops; while the page is away a market goes and another comes
    page.evaluate("() => window.sockets[0].close()")
    expect(page.locator("#conn")).to_have_text("Offline — retrying")
    send(live, "DELETE", f"/odds/{first['ExternalID']}", "DeleteOdds", "r2", "league")
    later = send(live, "POST", "/odds", "NewOdds", "r3", "league-2", home=3, away=1.4)
    # it reconnects and shows the markets as they are now
    expect(page.locator("#conn")).to_have_text("Live")
    assert page.evaluate("() => window.sockets.length") == 2
    row = page.locator(f'tr[data-market="{later["ExternalID"]}"]')
    expect(row.locator('[data-outcome="home"] [data-field="fractional"]')).to_have_text("2/1")
    expect(page.locator("tbody tr")).to_have_count(1)
    assert page_errors == []


#: a WebSocket that connects, acknowledges, and ends each subscription with an error
#: (as the server does when it refuses one: its subscriber cap, a bad argument)
REFUSING_SOCKET = """
window.connects = [];
window.WebSocket = class extends EventTarget {
  constructor(url, protocol) {
    super();
    window.connects.push(performance.now());
    setTimeout(() => this.dispatchEvent(new Event("open")), 0);
  }
  send(text) {
    const message = JSON.parse(text);
    const reply = (m) => setTimeout(() =>
      this.dispatchEvent(new MessageEvent("message", { data: JSON.stringify(m) })), 0);
    if (message.type === "connection_init") reply({ type: "connection_ack" });
    if (message.type === "subscribe") {
      const errors = [{ message: "too many subscribers" }];
      reply({ id: message.id, type: "next", payload: { data: null, errors } });
      reply({ id: message.id, type: "complete" });
    }
  }
  close() { setTimeout(() => this.dispatchEvent(new CloseEvent("close")), 0); }
};
"""


def test_a_refused_subscription_is_retried_ever_later(
    live: LiveServer, page: Page, page_errors: PageErrors
) -> None:
    """A server that accepts the connection and refuses the subscription each time is
    not asked again every half second: the wait grows as for a server that is down."""
    page.add_init_script(REFUSING_SOCKET)
    page.goto(f"{live.url}/markets")
    page.wait_for_function("() => window.connects.length >= 4", timeout=20_000)
    times = page.evaluate("() => window.connects")
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # 0.5 s, then 1 s, then 2 s (timers are late under load, never early)
    assert gaps[1] >= 1000, gaps
    assert gaps[2] >= 2000, gaps
    assert page_errors == []


def test_a_price_no_decimal_writes_shows_as_the_domain_writes_it(
    live: LiveServer, page: Page, page_errors: PageErrors
) -> None:
    """A provider can quote 8/13 over protobuf (21/13 decimal odds, which no decimal
    writes): the page shows 8/13 and the domain's 1.62, not the six places of the API's
    decimal (1.615385, which would read 123077/200000)."""
    from playwright.sync_api import expect

    from api.test_odds_protobuf import PROTO, odds_api_pb2, price, request_body

    body = request_body(
        odds_api_pb2.COMMAND_NEW_ODDS, "q1", game="quoted", home=price(21, 13), away=price(5, 2)
    )
    headers = {**live.admin, "Content-Type": PROTO, "Accept": "application/json"}
    created = httpx.post(f"{live.url}/odds", content=body, headers=headers)
    assert created.status_code == 201, created.text
    page.goto(f"{live.url}/markets")
    row = page.locator(f'tr[data-market="{created.json()["ExternalID"]}"]')
    home = row.locator('[data-outcome="home"]')
    expect(home.locator('[data-field="fractional"]')).to_have_text("8/13")
    expect(home.locator('[data-field="decimal"]')).to_have_text("1.62")
    expect(row.locator('[data-outcome="away"] [data-field="fractional"]')).to_have_text("3/2")
    expect(row.locator('[data-outcome="away"] [data-field="decimal"]')).to_have_text("2.50")
    assert page_errors == []
