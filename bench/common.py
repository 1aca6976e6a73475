"""What the benchmarks share: the machine they ran on and how results are written."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def package_version(name: str) -> str | None:
    """The installed version of ``name``, or None."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine(**extra: Any) -> dict[str, Any]:
    """Cores, Python and platform, plus any ``extra`` facts (versions of the peers…)."""
    return {
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        **extra,
    }


def write_results(path: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as JSON, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n")
    tmp.replace(path)
