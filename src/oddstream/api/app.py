"""The FastAPI application: health, readiness and a status page for the store.

The tote, wallet and compatibility APIs come with their own issues; for now the service
opens the configured event store and shows that it is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from .. import __version__
from ..config import Settings
from ..eventstore import EventStore, EventStoreError, NewEvent, open_store

DEMO_STREAM = "demo-heartbeat"


def _redact(url: str) -> str:
    """The store URL without a password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}@{host}"
    return url


async def _heartbeat(store: EventStore, every: float) -> None:
    """Demo traffic until the tote demo lands: one event every ``every`` seconds."""
    beat = await store.stream_version(DEMO_STREAM)
    while True:
        beat += 1
        await store.append(DEMO_STREAM, [NewEvent("Heartbeat", {"beat": beat})])
        await asyncio.sleep(every)


def create_app(settings: Settings | None = None, *, demo: bool = False) -> FastAPI:
    """Build the app; the store is opened on startup and closed on shutdown."""
    settings = settings or Settings()
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        store = await open_store(settings.store_url, **settings.store_options())
        state["store"] = store
        tasks = [asyncio.create_task(_heartbeat(store, 1.0))] if demo else []
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, EventStoreError):
                    await task
            await store.close()

    app = FastAPI(title="oddstream", version=__version__, lifespan=lifespan)

    async def store_status() -> dict[str, Any]:
        store: EventStore = state["store"]
        return {
            "backend": store.backend,
            "url": _redact(settings.store_url),
            "head_position": await store.head_position(),
        }

    @app.get("/healthz", summary="Liveness and the store this process opened")
    async def healthz() -> JSONResponse:
        try:
            return JSONResponse(
                {"status": "ok", "version": __version__, "store": await store_status()}
            )
        except EventStoreError as exc:
            return JSONResponse({"status": "error", "reason": str(exc)}, status_code=503)

    @app.get("/", response_class=HTMLResponse, summary="Status page")
    async def index() -> HTMLResponse:
        store: EventStore = state["store"]
        status = await store_status()
        head = status["head_position"]
        recent = await store.read_all(after=max(0, head - 20), limit=20)
        rows = "".join(
            f"<tr><td>{e.position}</td><td>{html.escape(e.stream_id)}</td><td>{e.version}</td>"
            f"<td>{html.escape(e.type)}</td><td>{e.recorded_at:%H:%M:%S}</td></tr>"
            for e in reversed(recent)
        )
        page = f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="refresh" content="2"><title>oddstream</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem;background:#0f1720;color:#e6edf3}}
table{{border-collapse:collapse}}td,th{{padding:.3rem .8rem;border-bottom:1px solid #2d3b4a}}
th{{text-align:left;color:#8aa0b4}}</style></head><body>
<h1>oddstream {__version__}</h1>
<p>Event store: <b>{html.escape(status["backend"])}</b> at
<code>{html.escape(status["url"])}</code>, head position <b>{head}</b>.</p>
<h2>Latest events</h2><table><tr><th>position</th><th>stream</th><th>version</th>
<th>type</th><th>recorded (UTC)</th></tr>{rows}</table></body></html>"""
        return HTMLResponse(page)

    return app
