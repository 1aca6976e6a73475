"""The one exception of the fixed-odds domain."""

from __future__ import annotations


class FixedOddsRejection(ValueError):
    """A price, command or bet the fixed-odds domain refuses; ``code`` is stable,
    ``message`` says exactly why.

    A ``ValueError``: it is bad input, and msgspec turns it into a ``ValidationError``
    when a stored :class:`~.odds.Odds` fails its checks on decoding.
    """

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
