"""The quote domain is pure: its modules import only the standard library's value types
and msgspec — no file, network, database or clock."""

from __future__ import annotations

import ast
from pathlib import Path

import oddstream.domain.quotes as quotes

ALLOWED = {
    "__future__",
    "collections.abc",
    "dataclasses",
    "datetime",
    "decimal",
    "json",
    "msgspec",
    "typing",
}


def test_quote_modules_import_nothing_that_does_io():
    package = Path(quotes.__file__).parent
    found: dict[str, set[str]] = {}
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = {node.module or ""}
            else:
                continue
            found.setdefault(module.name, set()).update(names - ALLOWED)
    assert {name: bad for name, bad in found.items() if bad} == {}
    assert len(list(package.glob("*.py"))) >= 7
