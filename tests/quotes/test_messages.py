"""Splitting bodies into messages: exact bytes per element or line, brackets and quotes
inside strings, arrays left open, text after them; and the dead-letter domain's purity."""

from __future__ import annotations

import ast
from pathlib import Path

import oddstream.domain.deadletters as deadletters
from oddstream.application.quotes import json_messages, ndjson_lines
from oddstream.domain.deadletters import keep, restore


def raws(body: bytes) -> list[tuple[bytes, str | None]]:
    return [(m.raw, m.problem) for m in json_messages(body)]


def test_array_elements_keep_their_exact_bytes():
    body = b' [ {"a": "x,]}\\"["} ,\n[1, [2]], "s\\\\",null ,{"b":1.50}] '
    assert raws(body) == [
        (b'{"a": "x,]}\\"["}', None),
        (b"[1, [2]]", None),
        (b'"s\\\\"', None),
        (b"null", None),
        (b'{"b":1.50}', None),
    ]


def test_a_body_that_is_no_array_is_one_message_and_broken_arrays_say_why():
    assert raws(b'  {"a": 1} ') == [(b'  {"a": 1} ', None)]
    assert raws(b"[]") == []
    assert raws(b'[{"a": 1}, {"b": 2}') == [
        (b'{"a": 1}', None),
        (b'{"b": 2}', "the array is not closed"),
    ]
    assert raws(b"[1] tail") == [(b"1", None), (b"tail", "text after the end of the array")]
    assert raws(b"[1,]") == [(b"1", None), (b"", None)]


def test_ndjson_lines_are_numbered_and_blank_ones_skipped():
    found = [(m.index, m.line, m.raw) for m in ndjson_lines(b'{"a":1}\r\n\n  \n{"b":2}')]
    assert found == [(0, 1, b'{"a":1}'), (1, 4, b'{"b":2}')]


def test_kept_payloads_round_trip_exactly():
    for raw in (b"plain", "£ é".encode(), b"\xff\xfe", b"nul\x00inside", b"\x01" * 1000):
        kept = keep(raw)
        assert restore(kept.text, kept.encoding) == raw
        assert not kept.truncated
    assert keep(b"\x01" * 10).encoding == "utf-8"
    assert keep(b"\x01" * 400_000).encoding == "base64"  # escaped it would not fit


def test_the_dead_letter_domain_does_no_io():
    allowed = {"__future__", "base64", "binascii", "dataclasses", "hashlib", "msgspec"}
    package = Path(deadletters.__file__).parent
    imported: set[str] = set()
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module or "")
    assert imported - allowed == set()
