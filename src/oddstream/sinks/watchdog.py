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


class CallBroken(Exception):
    """Raised by :meth:`Watchdog.renew` in the thread of a call whose connection was
    broken: the call must not go on (SQLite forgets an ``interrupt()`` that comes
    between two statements, so the break alone would not end it)."""


class Watchdog:
    """Breaks the connection of a call that got no answer within ``timeout`` seconds.

    One thread, started at the first :meth:`arm` and ended by :meth:`stop`; a daemon, so
    it never keeps a process from exiting. :meth:`attach` gives it the connection's
    breaker (``None`` before the connection is closed, so that a late expiry never
    touches a socket number reused since).

    A deadline met, or an :meth:`interrupt`, while there is no breaker yet (a new
    connection's handshake, bounded by the driver's own timeout) breaks nothing, and is
    not forgotten: when the breaker comes, an interrupt breaks the connection at once,
    and a deadline starts again (the handshake was answered), so that the rest of the
    call is never left without one."""

    def __init__(self, name: str, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("a deadline is a positive number of seconds")
        self.name = name
        self.timeout = timeout
        self._cond = threading.Condition(threading.Lock())
        self._deadline: float | None = None
        self._breaker: Breaker | None = None
        self._fired: str | None = None
        self._unbroken: str | None = None  # fired with no breaker: acted on by attach
        self._armed = False  # a call in flight (between arm and disarm)
        self._thread: threading.Thread | None = None
        self._stopped = False

    def attach(self, breaker: Breaker | None) -> None:
        """The breaker of the connection now open (``None``: no connection)."""
        with self._cond:
            self._breaker = breaker
            why, self._unbroken = self._unbroken, None
            if breaker is None or why is None:
                return
            if why == "interrupted":
                self._fire(why)
            else:
                self._deadline = time.monotonic() + self.timeout
                self._cond.notify()

    def arm(self) -> None:
        """A call starts: it has ``timeout`` seconds to get an answer."""
        with self._cond:
            self._deadline = time.monotonic() + self.timeout
            self._fired = self._unbroken = None
            self._armed = True
            self._stopped = False
            # not is_alive(): a thread that saw a stop and left its loop is alive a while
            # longer, and would watch nothing; it clears ``_thread`` under the lock
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name=f"{self.name}-watchdog"[:40], daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def renew(self) -> None:
        """The call got an answer and goes on to its next statement: ``timeout`` seconds
        again from now; raises :class:`CallBroken` if its connection was broken."""
        with self._cond:
            if self._fired is not None:
                raise CallBroken(self._fired)
            if self._deadline is not None:
                self._deadline = time.monotonic() + self.timeout

    def disarm(self) -> str | None:
        """The call ended; answers why its connection was broken (``"deadline"``,
        ``"interrupted"``) or ``None`` if it was not."""
        with self._cond:
            self._deadline = None
            self._armed = False
            fired = self._fired or self._unbroken
            self._fired = self._unbroken = None
            return fired

    def interrupt(self) -> bool:
        """Break the connection of the call in flight now, if any (from any thread: a
        service stopping while a call hangs); answers whether there was one."""
        with self._cond:
            if not self._armed:
                return False
            self._fire("interrupted")
            return True

    def stop(self) -> None:
        """End the thread (it is started again by the next :meth:`arm`)."""
        with self._cond:
            self._stopped = True
            self._deadline = None
            self._armed = False
            self._cond.notify()

    def _fire(self, why: str) -> None:
        # under the lock: the breaker cannot be detached (its connection closed) meanwhile
        self._deadline = None
        breaker = self._breaker
        if breaker is None:  # nothing to break yet: :meth:`attach` acts on it
            self._unbroken = "interrupted" if "interrupted" in (why, self._unbroken) else why
            return
        self._fired = self._fired or why
        with contextlib.suppress(Exception):  # closed already: nothing to break
            breaker()

    def _watch(self) -> None:
        with self._cond:
            try:
                self._watch_locked()
            finally:
                self._thread = None  # under the lock: the next arm starts another

    def _watch_locked(self) -> None:
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
