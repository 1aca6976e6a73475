"""Splitting what a client sends into messages, each with its exact bytes: a JSON
object (one message), a JSON array (a batch: one message per element) or NDJSON (one
per line). Nothing is parsed here beyond finding where elements begin and end, so a
bad element cannot take its neighbours with it, and a dead letter keeps the element
exactly as it was sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_WS = b" \t\r\n"
#: outside strings: what changes nesting, starts a string or ends an element
_STRUCTURE = re.compile(rb'[\[\]{}",]')
#: inside a string: its end or an escape
_IN_STRING = re.compile(rb'["\\]')


@dataclass(frozen=True, slots=True)
class Message:
    """One message's bytes and where it was: ``index`` (0-based, in the request or
    file) and ``line`` (1-based, NDJSON only). ``problem`` is set for bytes that can be
    no element (an array left open, text after it): they are dead-lettered as
    ``invalid_json`` with it."""

    index: int
    raw: bytes
    line: int | None = None
    problem: str | None = None


def ndjson_lines(data: bytes, *, first_line: int = 1, first_index: int = 0) -> Iterator[Message]:
    """One message per line of NDJSON (``\\n`` ends a line; a ``\\r`` before it is part
    of the line ending). Blank lines (white space only) are no messages."""
    index = first_index
    for number, line in enumerate(data.split(b"\n"), start=first_line):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip(_WS):
            continue
        yield Message(index, line, line=number)
        index += 1


def json_messages(body: bytes) -> Iterator[Message]:
    """A JSON array's elements (a batch), else the whole body as one message."""
    start = _skip(body, 0)
    if start < len(body) and body[start : start + 1] == b"[":
        yield from _array(body, start)
    elif start < len(body):
        yield Message(0, body)


def _skip(body: bytes, i: int) -> int:
    while i < len(body) and body[i] in _WS:
        i += 1
    return i


def _array(body: bytes, opened: int) -> Iterator[Message]:
    index = 0
    i = _skip(body, opened + 1)
    if body[i : i + 1] == b"]":
        rest = _skip(body, i + 1)
        if rest < len(body):
            yield Message(0, body[rest:], problem="text after the end of the array")
        return
    while True:
        begin = i
        end, closer = _element_end(body, i)
        raw = body[begin:end].strip(_WS)
        if closer is None:  # the array never closes: the element may be cut short
            yield Message(index, raw, problem="the array is not closed")
            return
        yield Message(index, raw)
        index += 1
        i = _skip(body, end + 1)
        if closer == b"]":
            if i < len(body):
                yield Message(index, body[i:], problem="text after the end of the array")
            return


def _element_end(body: bytes, i: int) -> tuple[int, bytes | None]:
    """Where the element starting at ``i`` ends: the index of the ``,`` or ``]`` at
    the array's level after it, and which; ``(len(body), None)`` if neither comes."""
    depth = 0
    while True:
        found = _STRUCTURE.search(body, i)
        if found is None:
            return len(body), None
        char = found.group()
        at = found.start()
        if char == b'"':
            i = _string_end(body, at + 1)
            continue
        if char in (b"[", b"{"):
            depth += 1
        elif char in (b"]", b"}"):
            if depth == 0:
                if char == b"]":
                    return at, b"]"
            else:
                depth -= 1
        elif depth == 0:  # a comma at the array's level
            return at, b","
        i = at + 1


def _string_end(body: bytes, i: int) -> int:
    """The index just past the string whose contents start at ``i``."""
    while True:
        found = _IN_STRING.search(body, i)
        if found is None:
            return len(body)
        if found.group() == b"\\":
            i = found.start() + 2
            continue
        return found.start() + 1
