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


def test_a_byte_order_mark_at_the_start_is_no_part_of_a_message():
    # RFC 8259 lets a parser ignore one; Windows tools write it: unskipped, it made a
    # whole batch one invalid_json letter, and an import's first line another
    bom = b"\xef\xbb\xbf"
    assert raws(bom + b'[{"a": 1}, 2]') == [(b'{"a": 1}', None), (b"2", None)]
    assert raws(bom + b' {"a": 1}') == [(b' {"a": 1}', None)]
    lines = [(m.line, m.raw) for m in ndjson_lines(bom + b'{"a":1}\n{"b":2}')]
    assert lines == [(1, b'{"a":1}'), (2, b'{"b":2}')]
    # only at the start of the data: a later chunk of a file is not its start
    assert [m.raw for m in ndjson_lines(bom + b"1", first_line=501)] == [bom + b"1"]


def test_an_element_left_open_says_so_rather_than_that_the_array_is_not_closed():
    for body in (b'[{"a": 1, {"b": 2}, {"c": 3}]', b'[1, {"a": [2}, 3]', b'[1, "open]'):
        problem = raws(body)[-1][1]
        assert problem is not None, body
        assert problem.startswith("an element leaves"), body
    assert raws(b"[1, 2")[-1] == (b"2", "the array is not closed")
    # brackets of the wrong kind that balance in number end the element where they do
    assert raws(b'[{"a": [}], 2]') == [(b'{"a": [}]', None), (b"2", None)]
