"""``make clean`` removes only what the other targets regenerate, never the event store
(issue 10): ``data/`` is the default store, a ledger."""

from __future__ import annotations

import fnmatch
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")

#: the default store, its read models and SQLite's side files
LEDGERS = ("data", "data/oddstream.db", "oddstream.db", "read_models.db", "oddstream.db-wal")


def _make(cwd: Path, *args: str) -> str:
    assert MAKE is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    done = subprocess.run(
        [MAKE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout


def test_the_clean_dry_run_names_no_store() -> None:
    commands = [shlex.split(line) for line in _make(ROOT, "-n", "clean").splitlines()]
    assert any(words[:2] == ["rm", "-rf"] for words in commands), commands
    for words in commands:
        for word in words:
            assert "data" not in word.split("/"), (word, words)
            assert ".db" not in word, (word, words)
            # nor a pattern that would match one (``*``, ``d*``, ``*.d?``…)
            assert not any(fnmatch.fnmatch(name, word) for name in LEDGERS), (word, words)


def test_clean_keeps_the_store_and_removes_the_caches(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    store = tmp_path / "data" / "oddstream.db"
    store.parent.mkdir()
    store.write_bytes(b"the ledger")
    (tmp_path / "data" / "oddstream.read-models.db").write_bytes(b"read models")
    caches = [
        tmp_path / ".venv" / "bin",
        tmp_path / ".pytest_cache",
        tmp_path / ".ruff_cache",
        tmp_path / "src" / "oddstream" / "__pycache__",
        tmp_path / "tests" / "__pycache__",
    ]
    for cache in caches:
        cache.mkdir(parents=True)
        (cache / "x").write_bytes(b"")

    _make(tmp_path, "clean")

    assert store.read_bytes() == b"the ledger"
    assert (tmp_path / "data" / "oddstream.read-models.db").exists()
    assert [cache for cache in caches if cache.exists()] == []
    assert (tmp_path / "src" / "oddstream").is_dir()  # only the caches under it
