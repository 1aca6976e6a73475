"""The tote board page in a real browser against a real server.

One race goes through its life by the API and by the page's own admin panel, while the
page is watched: the race and its board appear, a bet placed elsewhere shows up live
over SSE (flashing), and Close / Result / Dividends from the panel change what is shown.
Screenshots land in /tmp/oddstream-e2e/ for a person to look at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from api.conftest import ADMIN_KEY, LiveServer

from .conftest import PageErrors

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.timeout(60)

RACE_ID = "e2e-r1"
# Runner 3's name is markup: the page must show it as text, never parse it.
RUNNERS = ["Harbour Lights", "Silver Comet", "<b>Night Owl</b>", "Paper Tiger", "Sky Lark"]


def schedule_and_open(live: LiveServer) -> None:
    post = datetime.now(UTC) + timedelta(minutes=10)
    race = {
        "race_id": RACE_ID,
        "meeting": "Test Park R1",
        "venue": "Test Park",
        "post_time": post.isoformat(timespec="seconds"),
        "runners": [{"number": i, "name": n} for i, n in enumerate(RUNNERS, start=1)],
        "pools": [{"pool": p, "takeout_bps": 1500} for p in ("WIN", "PLACE", "SHOW")],
    }
    answer = httpx.post(f"{live.url}/races", json=race, headers=live.admin)
    assert answer.status_code == 201, answer.text
    answer = httpx.post(f"{live.url}/races/{RACE_ID}/open", headers=live.admin)
    assert answer.status_code == 200, answer.text


def bet(live: LiveServer, runner: int, cents: int) -> None:
    answer = httpx.post(
        f"{live.url}/races/{RACE_ID}/bets",
        json={"pool": "WIN", "selection": [runner], "stake_cents": cents},
    )
    assert answer.status_code == 201, answer.text


def get(live: LiveServer, path: str) -> Any:
    answer = httpx.get(f"{live.url}{path}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_board_follows_bets_and_admin_commands(
    live: LiveServer, page: Page, page_errors: PageErrors, shots: Path
) -> None:
    from playwright.sync_api import expect

    schedule_and_open(live)
    page.goto(f"{live.url}/")

    # the race is listed and its board is up, streaming
    tile = page.locator(f'.tile[data-race-id="{RACE_ID}"]')
    expect(tile).to_contain_text("Test Park R1")
    expect(tile).to_have_attribute("data-status", "open")
    board = page.locator(f'article.board[data-race-id="{RACE_ID}"]')
    expect(board.locator("tbody tr")).to_have_count(len(RUNNERS))
    expect(board.locator(".feed")).to_have_text("Live")
    night_owl = board.locator('tr[data-runner="3"] th')
    expect(night_owl).to_contain_text("<b>Night Owl</b>")
    assert night_owl.locator("b").count() == 0
    stakes = board.locator('tr[data-runner="2"] [data-field="win_stakes"]')
    expect(stakes).to_have_text("$0")
    page.screenshot(path=shots / "01-open-race.png")

    # a bet placed elsewhere reaches the page within seconds, and the cell flashes;
    # raf polling catches the flash, which lasts about a second
    bet(live, 2, 5000)
    page.wait_for_function(
        "el => el.textContent === '$50' && el.getAnimations().length > 0",
        arg=stakes.element_handle(),
        timeout=5000,
    )
    expect(board.locator('[data-pool="WIN"] dd')).to_have_text("$50")
    expect(board.locator('[data-pool="TOTAL"] dd')).to_have_text("$50")
    bet(live, 4, 3000)
    expect(board.locator('[data-pool="WIN"] dd')).to_have_text("$80")
    # the prices shown are the API's: ladder odds, and the win dividend per the $2 base
    odds = get(live, f"/races/{RACE_ID}/odds")["board"]
    base = odds["price_base_cents"]
    for runner in odds["runners"]:
        if runner["win_dividend_cents"] is None:
            continue
        row = board.locator(f'tr[data-runner="{runner["number"]}"]')
        expect(row.locator('[data-field="ladder"]')).to_have_text(runner["ladder"])
        per_base = round(runner["win_dividend_cents"] * base / 100)
        expect(row.locator('[data-field="win_dividend"]')).to_have_text(f"{per_base / 100:.2f}")
    expect(board.locator('tr[data-runner="2"] .fav-tag')).to_be_visible()
    expect(tile.locator(".tile-pool")).to_have_text("$80")  # the polled race list caught up
    page.screenshot(path=shots / "02-after-bets.png")

    # admin: select the race; without the key the API's refusal is shown
    tile.click()
    expect(page.locator("#admin-race")).to_contain_text("Test Park R1")
    message = page.locator("#admin-msg")
    page.get_by_role("button", name="Close betting").click()
    expect(message).to_contain_text("needs the admin API key")
    expect(tile).to_have_attribute("data-status", "open")

    page.get_by_label("Admin key").fill(ADMIN_KEY)
    page.get_by_role("button", name="Close betting").click()
    expect(tile).to_have_attribute("data-status", "closed")
    expect(board.locator(".badge")).to_have_text("Closed")
    expect(board.locator(".banner")).to_contain_text("Betting closed")
    assert page.evaluate("sessionStorage.getItem('oddstream.adminKey')") == ADMIN_KEY
    page.screenshot(path=shots / "03-closed.png")

    # a bad finishing order is refused on the page; a good one is declared
    page.get_by_label("Finishing order").fill("2,x")
    page.get_by_role("button", name="Declare result").click()
    expect(message).to_contain_text('"x" is not a runner number')
    page.get_by_label("Finishing order").fill("2,4,1")
    page.get_by_role("button", name="Declare result").click()
    expect(tile).to_have_attribute("data-status", "resulted")
    expect(board.locator(".placing").first).to_contain_text("Silver Comet")
    expect(tile.locator(".tile-result")).to_have_text("Result 2 · 4 · 1")

    page.get_by_role("button", name="Declare dividends").click()
    expect(tile).to_have_attribute("data-status", "final")
    declared = get(live, f"/races/{RACE_ID}/dividends")
    win = next(p for p in declared["pools"] if p["pool"] == "WIN")
    pays = f"${win['dividends'][0]['dividend_cents'] / 100:.2f}"
    expect(board.locator('.divs tbody[data-pool="WIN"] .pays')).to_have_text(pays)
    page.screenshot(path=shots / "04-final.png")

    assert page_errors == []


def test_board_fits_a_narrow_screen(
    live: LiveServer, page: Page, page_errors: PageErrors, shots: Path
) -> None:
    from playwright.sync_api import expect

    schedule_and_open(live)
    for runner, cents in [(1, 2000), (2, 5000), (3, 1000), (5, 700)]:
        bet(live, runner, cents)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live.url}/#race={RACE_ID}")

    board = page.locator(f'article.board[data-race-id="{RACE_ID}"]')
    expect(board.locator('[data-pool="WIN"] dd')).to_have_text("$87")
    expect(page.locator("#admin-race")).to_contain_text("Test Park R1")
    # nothing but a board's own table scrolls sideways
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=shots / "05-narrow.png", full_page=True)
    assert page_errors == []
