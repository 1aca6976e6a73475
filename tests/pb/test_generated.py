"""The committed protobuf code is what ``make proto`` makes of ``proto/``: regenerated
into a temporary directory with the pinned protoc, every file equal, none missing or
extra (so the ``.proto`` files and the code cannot drift apart)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "src"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("proto_script", ROOT / "scripts" / "proto.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_code_is_what_protoc_makes_of_the_proto_files(tmp_path: Path) -> None:
    script = _generator()
    fresh = script.generate(tmp_path)
    committed = sorted(
        p.relative_to(COMMITTED) for p in (COMMITTED / script.PACKAGE).glob("*_pb2.py*")
    )
    assert fresh == committed
    assert len(fresh) == 2 * len(script.proto_files()) > 0
    for path in fresh:
        assert (tmp_path / path).read_bytes() == (COMMITTED / path).read_bytes(), (
            f"{path} differs from what `make proto` generates: run it and commit the result"
        )


def test_the_generated_modules_load_on_the_runtime() -> None:
    from oddstream.pb import fixedodds_pb2, odds_api_pb2, tote_pb2

    odds = fixedodds_pb2.Odds(num=191, den=100)
    assert fixedodds_pb2.Odds.FromString(odds.SerializeToString()) == odds
    name = odds_api_pb2.CommandRequest.DESCRIPTOR.full_name
    assert name == "oddstream.odds_api.v1.CommandRequest"
    assert tote_pb2.RaceEvent.DESCRIPTOR.oneofs_by_name["event"] is not None
