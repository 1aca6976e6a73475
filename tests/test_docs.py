"""The README and docs/ stay true to the repository (issue 10): every file they point to
exists here, none points outside it, every ``ODDSTREAM_*`` variable they name is read
by something, and the README lists every setting and every package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from oddstream.config import ENV_PREFIX, RENAMED, Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PACKAGE = ROOT / "src" / "oddstream"

#: ``ODDSTREAM_*`` variables the docs may name that are not settings (config.Settings):
NOT_SETTINGS = {
    # read by tests/conftest.py: a missing service fails the suite instead of skipping
    "ODDSTREAM_REQUIRE_SERVICES",
    # read by tests/conftest.py and the read-model tests: the services the tests use
    "ODDSTREAM_TEST_PG_URL",
    "ODDSTREAM_TEST_REDIS_URL",
    "ODDSTREAM_TEST_NATS_URL",  # tests/cluster/conftest.py
    "ODDSTREAM_TEST_MARIADB_URL",  # tests/conftest.py: the SQL sinks' MariaDB
    "ODDSTREAM_TEST_PG_BIN",  # tests/sinks/engines.py: the private PostgreSQL's binaries
    # read by bench/store.py: the PostgreSQL the store benchmark uses
    "ODDSTREAM_BENCH_PG_URL",
    # the client commands' --url (a typer envvar in cli/client.py, not a server setting)
    "ODDSTREAM_URL",
}
#: what no document may point into: the workspace around the repository
OUTSIDE = ("../shared", "shared/reference", "/work/", "/home/", "/tmp/")
#: backticked paths rooted in the repository (`src/…`, `tests/…`…), up to a space or ::
REPO_PATH = re.compile(r"`((?:src|tests|bench|docs|scripts)/[^`\s:]*)")
#: a backticked file name or relative path (`race.py`, `runtime/cashier.py`)
FILE_NAME = re.compile(r"`([\w./-]+\.(?:py|md|sql|sh|js|html|css))`")
LINK = re.compile(r"\]\(([^)\s]+)\)")
VARIABLE = re.compile(r"\bODDSTREAM_[A-Z][A-Z0-9_]*")
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def _repo_files() -> list[str]:
    found = []
    for path in ROOT.rglob("*"):
        if path.is_file() and not SKIP_DIRS.intersection(path.relative_to(ROOT).parts):
            found.append(path.relative_to(ROOT).as_posix())
    return found


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_links_and_repo_paths_exist(doc: Path) -> None:
    text = doc.read_text()
    missing = []
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        if not (doc.parent / target.split("#", 1)[0]).exists():
            missing.append(target)
    missing += [p for p in REPO_PATH.findall(text) if not (ROOT / p).exists()]
    assert not missing, f"{doc.name} points to files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_named_files_exist_somewhere(doc: Path) -> None:
    """A file named without its full path (`race.py`, `runtime/cashier.py`) is still the
    tail of some file's path: a renamed or deleted module shows up here."""
    files = _repo_files()
    missing = [
        name
        for name in set(FILE_NAME.findall(doc.read_text()))
        if not name.startswith("/") and not any(f == name or f.endswith("/" + name) for f in files)
    ]
    assert not missing, f"{doc.name} names files that are not in the repository: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_nothing_points_outside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    found = [marker for marker in OUTSIDE if marker in text]
    assert not found, f"{doc.name} points outside the repository: {found}"


def _setting_variables() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_every_variable_named_exists(doc: Path) -> None:
    named = set(VARIABLE.findall(doc.read_text()))
    # a renamed setting's old variable is still read: to refuse it, naming the new one
    unknown = named - _setting_variables() - NOT_SETTINGS - set(RENAMED)
    assert not unknown, f"{doc.name} names variables nothing reads: {sorted(unknown)}"


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_readme_configuration_table_lists_every_setting_once() -> None:
    # the first cell of each row names the variable(s) the row is about
    firsts = [
        line.split("|")[1]
        for line in _section(README.read_text(), "Configuration").splitlines()
        if line.startswith("|")
    ]
    counts = {v: sum(cell.count(f"`{v}`") for cell in firsts) for v in _setting_variables()}
    wrong = {v: n for v, n in counts.items() if n != 1}
    assert not wrong, f"README's configuration table: settings not listed exactly once {wrong}"


def test_the_readme_layout_lists_every_package_and_module() -> None:
    layout = _section(README.read_text(), "Layout")
    wanted = [
        f"{path.name}/"
        for path in PACKAGE.rglob("*")
        if path.is_dir() and not SKIP_DIRS.intersection(path.parts) and path.name != "sql"
    ]
    wanted += [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    missing = [name for name in wanted if not re.search(rf"(?m)^\s+{re.escape(name)}", layout)]
    assert not missing, f"README's layout does not list {missing}"
