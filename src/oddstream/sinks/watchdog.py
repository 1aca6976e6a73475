"""A deadline for a sink's calls to its database, kept by a thread of its own.

A database server that stops answering without closing the connection (a frozen
process, a network that silently drops packets) leaves a driver blocked in a read for
ever: neither psycopg nor PyMySQL has a read timeout by default, and a frozen process on
the same host still acknowledges every TCP segment, so keepalives and
``tcp_user_timeout`` never fire. Only the application can tell that no answer came, and
the thread blocked in the driver cannot act: :class:`Watchdog` is the other thread that
does. The writer arms it for each call (:meth:`Watchdog.arm`, renewed at each statement
by :meth:`Watchdog.renew`); past the deadline it runs the connection's *breaker*
(``shutdown(SHUT_RDWR)`` of the driver's socket, ``sqlite3.Connection.interrupt``) and
the blocked call raises at once.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

Breaker = Callable[[], None]


class Watchdog:
    """Breaks the connection of a call that got no answer within ``timeout`` seconds.

    One thread, started at the first :meth:`arm` and ended by :meth:`stop`; a daemon, so
    it never keeps a process from exiting. :meth:`attach` gives it the connection's
    breaker (``None`` before the connection is closed, so that a late expiry never
    touches a socket number reused since)."""

    def __init__(self, name: str, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("a deadline is a positive number of seconds")
        self.name = name
        self.timeout = timeout
        self._cond = threading.Condition(threading.Lock())
        self._deadline: float | None = None
        self._breaker: Breaker | None = None
        self._fired: str | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def attach(self, breaker: Breaker | None) -> None:
        """The breaker of the connection now open (``None``: no connection)."""
        with self._cond:
            self._breaker = breaker

    def arm(self) -> None:
        """A call starts: it has ``timeout`` seconds to get an answer."""
        with self._cond:
            self._deadline = time.monotonic() + self.timeout
            self._fired = None
            self._stopped = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._watch, name=f"{self.name}-watchdog"[:40], daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def renew(self) -> None:
        """The call got an answer and goes on: ``timeout`` seconds again from now."""
        with self._cond:
            if self._deadline is not None:
                self._deadline = time.monotonic() + self.timeout

    def disarm(self) -> str | None:
        """The call ended; answers why its connection was broken (``"deadline"``,
        ``"interrupted"``) or ``None`` if it was not."""
        with self._cond:
            self._deadline = None
            fired, self._fired = self._fired, None
            return fired

    def interrupt(self) -> bool:
        """Break the connection of the call in flight now, if any (from any thread: a
        service stopping while a call hangs); answers whether there was one."""
        with self._cond:
            if self._deadline is None:
                return False
            self._fire("interrupted")
            return True

    def stop(self) -> None:
        """End the thread (it is started again by the next :meth:`arm`)."""
        with self._cond:
            self._stopped = True
            self._deadline = None
            self._cond.notify()

    def _fire(self, why: str) -> None:
        # under the lock: the breaker cannot be detached (its connection closed) meanwhile
        self._deadline = None
        self._fired = why
        breaker = self._breaker
        if breaker is not None:
            with contextlib.suppress(Exception):  # closed already: nothing to break
                breaker()

    def _watch(self) -> None:
        with self._cond:
            while not self._stopped:
                deadline = self._deadline
                if deadline is None:
                    self._cond.wait()
                    continue
                left = deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._fire("deadline")
