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
#: a UTF-8 byte order mark, which some tools write at the start of a file
BOM = b"\xef\xbb\xbf"
#: outside strings: what changes nesting, starts a string or ends an element
_STRUCTURE = re.compile(rb'[\[\]{}",]')
#: inside a string: its end or an escape
_IN_STRING = re.compile(rb'["\\]')


@dataclass(frozen=True, slots=True)
class Message:
    """One message's bytes and where it was: ``index`` (0-based, in the request or
    file) and ``line`` (1-based, NDJSON only). ``problem`` is set for bytes that can be
    no element (an array left open, text after it): they are dead-lettered as
    ``invalid_json`` (or ``reason``) with it."""

    index: int
    raw: bytes
    line: int | None = None
    problem: str | None = None
    #: the dead-letter reason of ``problem`` (``None``: ``invalid_json``)
    reason: str | None = None


def ndjson_lines(data: bytes, *, first_line: int = 1, first_index: int = 0) -> Iterator[Message]:
    """One message per line of NDJSON (``\\n`` ends a line; a ``\\r`` before it is part
    of the line ending). Blank lines (white space only) are no messages; a byte order
    mark before the first line (``first_line`` 1) is skipped."""
    if first_line == 1:
        data = data.removeprefix(BOM)
    index = first_index
    for number, line in enumerate(data.split(b"\n"), start=first_line):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip(_WS):
            continue
        yield Message(index, line, line=number)
        index += 1


def json_messages(body: bytes) -> Iterator[Message]:
    """A JSON array's elements (a batch), else the whole body as one message (a byte
    order mark before it skipped, as RFC 8259 allows)."""
    body = body.removeprefix(BOM)
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
        if closer == _OPEN:
            yield Message(index, raw, problem=_LEFT_OPEN)
            return
        yield Message(index, raw)
        index += 1
        i = _skip(body, end + 1)
        if closer == b"]":
            if i < len(body):
                yield Message(index, body[i:], problem="text after the end of the array")
            return


#: the element leaves a bracket or a string open: where it ends cannot be told
_OPEN = b"{"
_LEFT_OPEN = (
    "an element leaves a bracket or a string open (or closes one with the other kind), "
    "so where it ends cannot be told: the rest of the array is this one message"
)
_OPENER = {b"]": ord("["), b"}": ord("{")}


def _element_end(body: bytes, i: int) -> tuple[int, bytes | None]:
    """Where the element starting at ``i`` ends: the index of the ``,`` or ``]`` at
    the array's level after it, and which; if neither comes, ``(len(body), None)``, or
    ``(len(body), _OPEN)`` when the element's brackets or quotes do not balance."""
    opened = bytearray()  # the brackets open in the element, a byte each
    broken = False  # a bracket closed by the other kind
    while True:
        found = _STRUCTURE.search(body, i)
        if found is None:
            return len(body), (_OPEN if opened or broken else None)
        char = found.group()
        at = found.start()
        if char == b'"':
            i = _string_end(body, at + 1)
            if i > len(body):  # the string never ends
                return len(body), _OPEN
            continue
        if char in (b"[", b"{"):
            opened.append(char[0])
        elif char in (b"]", b"}"):
            if opened:
                broken |= opened.pop() != _OPENER[char]
            elif char == b"]":
                return at, b"]"
        elif not opened:  # a comma at the array's level
            return at, b","
        i = at + 1


def _string_end(body: bytes, i: int) -> int:
    """The index just past the string whose contents start at ``i`` (past the end of
    ``body`` when it never ends)."""
    while True:
        found = _IN_STRING.search(body, i)
        if found is None:
            return len(body) + 1
        if found.group() == b"\\":
            i = found.start() + 2
            continue
        return found.start() + 1
