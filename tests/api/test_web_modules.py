"""The board page's JavaScript is ES modules loaded as they are (no build step): every
module the page imports, directly or through another module, must be served, as
JavaScript (browsers refuse a module script of any other type), and be shipped in the
package; and every name a module imports must be exported by the module it names. A
file left out of a commit, of the package data, or a name left behind by a move, fails
here without a browser."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from fastapi.testclient import TestClient

from oddstream.api.app import WEB, create_app
from oddstream.config import Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "oddstream"
JS_TYPES = {"text/javascript", "application/javascript"}

#: the module a static import or re-export names: `… from "./x.js"`, `import "./x.js"`
SPECIFIER = re.compile(
    r"""(?m)^\s*(?:import|export)\b[^;"']*?\bfrom\s*["']([^"']+)["']"""
    r"""|^\s*import\s*["']([^"']+)["']"""
)
#: `import { a, b as c } from "./x.js"` (over several lines too)
NAMED_IMPORT = re.compile(r"""import\s*\{([^}]*)\}\s*from\s*["']([^"']+)["']""")
EXPORT_DECLARED = re.compile(
    r"(?m)^export\s+(?:async\s+)?(?:function\*?|class|const|let|var)\s+([A-Za-z_$][\w$]*)"
)
EXPORT_LIST = re.compile(r"(?m)^export\s*\{([^}]*)\}")


class _ModuleScripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("type") == "module" and found.get("src"):
            self.sources.append(found["src"] or "")


def _names(clause: str) -> list[str]:
    """`a, b as c` → the names as exported: a, b."""
    return [part.split(" as ")[0].strip() for part in clause.split(",") if part.strip()]


def _exports(text: str) -> set[str]:
    names = set(EXPORT_DECLARED.findall(text))
    for clause in EXPORT_LIST.findall(text):
        names.update(_names(clause))
    return names


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    store = tmp_path_factory.mktemp("web") / "w.db"
    with TestClient(create_app(Settings().with_overrides(store_url=f"sqlite:///{store}"))) as c:
        yield c


@pytest.fixture(scope="module", params=["/", "/markets"])
def served(client: TestClient, request: pytest.FixtureRequest) -> dict[str, str]:
    """Every module reachable from a page's module scripts (the tote board's, the
    fixed-odds page's): its URL path → its text."""
    page = client.get(request.param)
    assert page.status_code == 200
    parser = _ModuleScripts()
    parser.feed(page.text)
    assert parser.sources, "the page loads no module script"
    modules: dict[str, str] = {}
    pending = [urljoin("/", src) for src in parser.sources]
    while pending:
        path = pending.pop()
        if path in modules:
            continue
        answer = client.get(path)
        assert answer.status_code == 200, f"{path} is imported but answers {answer.status_code}"
        kind = answer.headers["content-type"].split(";")[0].strip()
        assert kind in JS_TYPES, f"{path} is served as {kind!r}, not JavaScript"
        modules[path] = answer.text
        for specifier in (a or b for a, b in SPECIFIER.findall(answer.text)):
            assert specifier.startswith(("./", "../", "/")), (
                f"{path} imports {specifier!r}: a bare name needs a build step"
            )
            pending.append(urlsplit(urljoin(path, specifier)).path)
    return modules


def test_every_module_is_served_as_javascript(served: dict[str, str]) -> None:
    # the page is split into modules: more than the entry is reached
    assert len(served) > 1, sorted(served)


def test_every_module_served_is_a_packaged_file(served: dict[str, str]) -> None:
    """Served from web/ as it is, and matched by pyproject's package-data, so a wheel
    carries it (setuptools globs the patterns from the package's directory)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["oddstream"]
    packaged = {path for pattern in patterns for path in PACKAGE.glob(pattern) if path.is_file()}
    for url, text in served.items():
        assert url.startswith("/static/"), url
        file = WEB / url.removeprefix("/static/")
        assert file.read_text() == text, url
        assert file in packaged, f"{file.relative_to(ROOT)} is not in the package data"


def test_every_imported_name_is_exported(served: dict[str, str]) -> None:
    missing = []
    for path, text in served.items():
        for clause, specifier in NAMED_IMPORT.findall(text):
            target = urlsplit(urljoin(path, specifier)).path
            exported = _exports(served[target])
            missing += [f"{path}: {n} from {target}" for n in _names(clause) if n not in exported]
    assert not missing, f"imported but not exported: {missing}"
