"""/readyz while the wallet read model is rebuilding: what it shows is a prefix of the
log (a wallet may be missing), so the process must not say it is ready."""

from __future__ import annotations

import asyncio
import time

from fastapi.testclient import TestClient

from oddstream.api.app import create_app
from oddstream.api.services import Services
from oddstream.config import Settings
from oddstream.domain.wallet import OpenWallet
from oddstream.runtime.wallet_writer import WalletWriter


def test_not_ready_while_the_wallet_read_model_rebuilds(tmp_path) -> None:
    settings = Settings().with_overrides(store_url=f"sqlite:///{tmp_path}/r.db")
    with TestClient(create_app(settings)) as client:
        services: Services = client.app.state.services  # type: ignore[attr-defined]
        portal = client.portal
        assert portal is not None
        wallet_view = services.wallet_view
        storage = wallet_view.storage
        real_apply = storage.apply
        release = asyncio.Event()

        async def open_wallets() -> None:
            writer = WalletWriter(services.store)
            for n in range(3):
                await writer.execute(OpenWallet(wallet_id=f"w{n}"))

        portal.call(open_wallets)
        assert client.get("/readyz").status_code == 200

        async def slow_apply(*args, **kwargs):  # type: ignore[no-untyped-def]
            await release.wait()
            return await real_apply(*args, **kwargs)

        storage.apply = slow_apply  # type: ignore[method-assign]
        rebuild = portal.start_task_soon(wallet_view.rebuild)
        deadline = time.monotonic() + 5
        while not wallet_view.rebuilding:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        try:
            ready = client.get("/readyz")
            health = client.get("/healthz").json()
            assert health["store"]["wallet_read_model_rebuilding"] is True
            assert ready.status_code == 503, ready.json()
        finally:
            portal.call(release.set)
            rebuild.result(timeout=10)
