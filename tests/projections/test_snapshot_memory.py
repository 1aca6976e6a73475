"""Snapshots of a large tote view give their memory back: writing one (as the periodic
``SnapshotCheckpoint`` does) raises the process's resident memory by a few MB while it
lasts and leaves nothing behind, and reading one holds it once, on both adapters.

Measured in a child process (``snapshot_memory_child.py``) with a ~35 MB snapshot.
Before snapshots were written in parts, a save peaked at +145 MB (PostgreSQL) to +218 MB
(SQLite) and PostgreSQL kept +71 MB after saves and +106 MB after a read (libpq's
buffers, which never shrink while the connection lives).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHILD = Path(__file__).with_name("snapshot_memory_child.py")
#: what a save may add to the resident memory while it runs (about two parts, the
#: driver's copies of them, SQLite's page cache of 2 MB)
SAVE_PEAK_MIB = 32
#: what may stay after a save or a read, once the free heap is given back
LEFT_MIB = 8
#: what a read may add beyond the snapshot's own size (it is returned whole, in parts)
LOAD_EXTRA_MIB = 24


def run_child(*args: str) -> dict[str, Any]:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc (VmHWM, clear_refs)")
    done = subprocess.run(
        [sys.executable, str(CHILD), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def check(result: dict[str, Any]) -> None:
    assert result["snapshot_mib"] > 30  # large enough for a copy of it to show
    assert result["parts"] > 10
    assert max(result["save_peak_mib"]) < SAVE_PEAK_MIB, result
    assert max(result["after_save_mib"]) < LEFT_MIB, result
    assert result["load_peak_mib"] < result["snapshot_mib"] + LOAD_EXTRA_MIB, result
    assert result["after_load_mib"] < LEFT_MIB, result


def test_sqlite_snapshots_give_their_memory_back(tmp_path: Path) -> None:
    check(run_child(f"sqlite:///{tmp_path / 'events.db'}"))


def test_postgres_snapshots_give_their_memory_back(pg_url: str, pg_schema: str) -> None:
    check(run_child(pg_url, pg_schema))
