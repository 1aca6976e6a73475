"""A real server and Debian's Chromium driven by Playwright, for the board page.

Chromium and Playwright are services like PostgreSQL: without them the browser tests
skip with a one-line reason, or fail when ``ODDSTREAM_REQUIRE_SERVICES=1``.
``scripts/ensure-chromium.sh`` installs the browser; Playwright's own browser download
is never used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from api.conftest import ADMIN_KEY, LiveServer, run_server
from conftest import need_service
from oddstream.config import Settings

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = Path("/tmp/oddstream-e2e")


def _playwright() -> Any:
    """The Playwright sync API module, or a skip (a failure when services are required)."""
    try:
        from playwright import sync_api
    except ImportError as exc:
        problem = f"the playwright package does not import: {exc}"
    else:
        return sync_api
    need_service("Playwright", f"{problem} (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        need_service("Chromium", f"{CHROMIUM} not found (scripts/ensure-chromium.sh installs it)")
    sync_api = _playwright()
    with sync_api.sync_playwright() as pw:
        launched, problem = None, ""
        try:
            launched = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
        except sync_api.Error as exc:
            problem = str(exc).strip().splitlines()[0]
        if launched is None:
            need_service("Chromium", f"{CHROMIUM} does not start: {problem}")
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings().with_overrides(
        store_url=f"sqlite:///{tmp_path}/e2e.db", admin_key=ADMIN_KEY, push_coalesce_ms=20
    )
    yield from run_server(settings)


class PageErrors(list[str]):
    """Uncaught script errors of a page (console noise such as a 404 is not one)."""


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(browser: Browser, page_errors: PageErrors) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        yield opened
    finally:
        context.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
