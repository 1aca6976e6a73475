"""Generate the Python code of the ``.proto`` files under ``proto/`` (``make proto``).

The code is committed (``src/oddstream/pb``): the runtime needs only ``protobuf``, not
the generator. The generator is ``grpcio-tools``' protoc, at the version ``pyproject.toml``
pins, so the output is reproducible; ``tests/pb/test_generated.py`` runs this into a
temporary directory and compares it with the committed files.

    python scripts/proto.py [--out DIR]    # default: src (writes src/oddstream/pb/*_pb2.py[i])
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
#: the generated modules' package, as a path under ``src`` and under ``proto``
PACKAGE = Path("oddstream/pb")


def proto_files() -> list[Path]:
    """The ``.proto`` files, relative to ``proto/`` (their import names), sorted."""
    return sorted(p.relative_to(PROTO_DIR) for p in (PROTO_DIR / PACKAGE).glob("*.proto"))


def generate(out: Path) -> list[Path]:
    """Run protoc on every ``.proto`` file, writing ``*_pb2.py`` and ``*_pb2.pyi`` under
    ``out`` (``out/oddstream/pb/...``); the files written, relative to ``out``."""
    from importlib.resources import files

    from grpc_tools import protoc  # a dev dependency: pyproject's [dev]

    include = str(files("grpc_tools") / "_proto")  # the well-known types (Timestamp)
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        *(str(p) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed (its message is above)")
    return sorted(p.relative_to(out) for p in (out / PACKAGE).glob("*_pb2.py*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "src")
    written = generate(parser.parse_args().out)
    for path in written:
        print(path)
    if not written:
        sys.exit("nothing generated")


if __name__ == "__main__":
    main()
