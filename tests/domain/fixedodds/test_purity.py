"""The fixed-odds domain is pure: its modules import only value types, msgspec and the
domain's own money helpers — no file, network, database or clock."""

from __future__ import annotations

import ast
from pathlib import Path

import oddstream.domain.fixedodds as fixedodds

ALLOWED = {
    "__future__",
    "collections.abc",
    "dataclasses",
    "decimal",
    "enum",
    "fractions",
    "math",
    "msgspec",
    "re",
    "typing",
}


def test_fixedodds_modules_import_nothing_that_does_io():
    package = Path(fixedodds.__file__).parent
    found: dict[str, set[str]] = {}
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = {node.module or ""}
            elif isinstance(node, ast.ImportFrom):
                # relative: this package's modules, and from the domain only the tote's
                # money helpers (pure themselves)
                outside = node.level > 1 and (node.level, node.module) != (2, "tote.money")
                names = {f"{'.' * node.level}{node.module}"} if outside else set()
            else:
                continue
            found.setdefault(module.name, set()).update(names - ALLOWED)
    assert {name: bad for name, bad in found.items() if bad} == {}
    assert len(list(package.glob("*.py"))) >= 8
