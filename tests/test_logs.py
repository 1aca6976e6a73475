"""The service's log handler (``oddstream.logs``)."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from oddstream import logs


def test_logs_go_to_stdout_as_it_is_now_not_to_a_stream_closed_since(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Regression: ``configure`` bound its handler to the ``sys.stdout`` of the moment.
    Configured while a CLI runner had swapped in its own stream, every later record went
    to that stream once closed: a "--- Logging error ---" traceback on stderr instead."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    swapped = io.StringIO()
    real = sys.stdout
    try:
        sys.stdout = swapped
        logs.configure("INFO")
        sys.stdout = real
        swapped.close()
        logging.getLogger("oddstream.test").info("after the swap")
    finally:
        sys.stdout = real
        root.handlers[:], root.level = saved_handlers, saved_level
    out, err = capsys.readouterr()
    assert '"message": "after the swap"' in out
    assert "Logging error" not in err
