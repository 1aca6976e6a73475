"""``python -m oddstream.cli``: the ``oddstream`` command."""

from . import app

app()
