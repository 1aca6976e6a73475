"""What an API process of services mode reports of the deployment in ``/healthz`` and
``/readyz``: its bus connection, and how many workers are alive and how many partitions
have an owner (from ``pg_locks``, looked at most once a second)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psycopg

from .leases import ownership
from .router import Router


def bus_state(nc: Any) -> str:
    """A NATS client's state: ``connected``, ``reconnecting`` or ``closed``."""
    return "connected" if nc.is_connected else "closed" if nc.is_closed else "reconnecting"


class ClusterStatus:
    """The deployment as one API process sees it."""

    def __init__(self, router: Router, nc: Any, *, dsn: str, schema: str) -> None:
        self._router = router
        self._nc = nc
        self._dsn = dsn
        self._schema = schema
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._seen: dict[str, Any] = {}
        self._seen_at = float("-inf")

    async def report(self) -> dict[str, Any]:
        """``bus`` (connected / reconnecting / closed), ``workers``, ``partitions``,
        ``partitions_owned``, ``retries`` (commands sent again while a partition had no
        owner) and ``problems`` (why this process cannot take commands now, if it
        cannot)."""
        bus = bus_state(self._nc)
        if time.monotonic() - self._seen_at > 1.0:
            self._seen = await self._look()
            self._seen_at = time.monotonic()
        report = {
            "bus": bus,
            "partitions": self._router.partitions,
            "retries": self._router.retries,
            **self._seen,
        }
        problems = []
        if bus != "connected":
            problems.append(f"NATS {bus}")
        if "error" in self._seen:
            problems.append(f"ownership unknown: {self._seen['error']}")
        elif self._seen["workers"] == 0:
            problems.append("no worker is running")
        elif self._seen["partitions_owned"] < self._router.partitions:
            missing = self._router.partitions - self._seen["partitions_owned"]
            problems.append(f"{missing} partitions have no owner (yet)")
        report["problems"] = problems
        return report

    async def _look(self) -> dict[str, Any]:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True, connect_timeout=3, application_name="oddstream-api"
                )
            seen = await ownership(self._conn, self._schema)
        except (psycopg.Error, OSError) as exc:
            await self.close()
            return {"error": str(exc).strip().splitlines()[0] if str(exc) else type(exc).__name__}
        return {"workers": len(seen.members), "partitions_owned": len(seen.partitions)}

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.close()
