"""Private PostgreSQL and MariaDB servers that a test may shut down, start and crash.

The shared servers (5432, 3306) serve everyone's tests at once and are never stopped;
a test of a target going away runs its own server instead: a data directory made in a
temporary directory (``initdb``, ``mariadb-install-db``), the server started on a free
port of 127.0.0.1 as a child process of the test (its PID is the server's: no
``pg_ctl`` daemon in between, so a crash kills exactly the processes started here),
shut down by the server's own signal for a fast clean shutdown (PostgreSQL SIGINT, as
``pg_ctl stop -m fast`` sends; MariaDB SIGTERM, as ``mariadb-admin shutdown`` asks),
killed with SIGKILL for a crash (the next start recovers from the server's log), frozen
with SIGSTOP (its connections stay open and the kernel still acknowledges what is sent,
but nothing answers: a hung server, or a network that drops packets) and thawed with
SIGCONT, and removed with its directory at the end. Every wait is bounded.

As root (a CI container) a server runs as its own system user (``postgres``,
``mysql``): PostgreSQL refuses to run as root. Durability is traded for speed where a
killed process cannot tell: ``fsync=off`` and ``innodb_flush_log_at_trx_commit=2``
still hand each commit to the operating system before answering, so a killed server
loses nothing the system holds; only a machine crash would.

A missing binary or system user skips the test, or fails it under
``ODDSTREAM_REQUIRE_SERVICES=1`` (``need_service``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conftest import need_service

#: how long a server may take to start (crash recovery included) or to stop
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
#: how long a setup command (``initdb``, ``mariadb-install-db``) may take
SETUP_TIMEOUT = 120.0

PG_BIN = Path(os.environ.get("ODDSTREAM_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(name: str, *candidates: Path) -> str:
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which(name)
    if found is None:
        need_service(f"a private server ({name})", f"{name} not found")
    assert found is not None
    return found


def _pids_of_parent(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid …: comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent:
            children.append(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie holds nothing any more


def _stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped (or the process is gone)."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return True
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] not in "TtZX":
            return False
    return True


class Engine:
    """One private server: ``start``, ``stop`` (clean), ``kill`` (crash), ``close``.

    ``url`` is the sink's ``connection.url``; ``query`` runs a statement on a connection
    of its own (opened and closed each time), ``connections`` counts the clients
    connected besides that one. Use :func:`private_engine` to make one."""

    kind: str
    #: the system user a server runs as when the tests run as root
    system_user: str

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"oddstream-{self.kind}-"))
        self.as_user: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam(self.system_user)
            except KeyError:
                shutil.rmtree(self.dir, ignore_errors=True)
                need_service(f"a private {self.kind}", f"no system user {self.system_user!r}")
                raise
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self.data = self.dir / "data"
        self.port = free_port()
        self.log = self.dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen: list[int] = []

    # ------------------------------------------------------------------ per engine
    url: str

    def setup(self) -> None:
        """Make the data directory (and what the tests need in it)."""
        raise NotImplementedError

    def command(self) -> list[str]:
        """The server's command line."""
        raise NotImplementedError

    def connect(self, timeout: float) -> Any:
        """A DB-API connection to the server (autocommit)."""
        raise NotImplementedError

    def ping(self) -> None:
        """Connect and disconnect: raises while the server takes no connections."""
        self.connect(timeout=1).close()

    def _count_others(self, cur: Any) -> int:
        raise NotImplementedError

    shutdown_signal: signal.Signals

    # ------------------------------------------------------------------ common
    def _setup(self, argv: list[str]) -> None:
        """Run a setup command as the server's user; its output in the failure."""
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=SETUP_TIMEOUT,
            cwd=self.dir,
            check=False,
            **self.as_user,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{output}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the server and wait (bounded) until it takes connections."""
        if self.running:
            return
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,  # a ^C of the test run is not the server's
                **self.as_user,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{self.log_tail()}")
            try:
                self.ping()
                return
            except Exception:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(
                        f"{self.kind} not up in {START_TIMEOUT:.0f}s:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.05)

    def freeze(self) -> None:
        """SIGSTOP the server and every process it started (PostgreSQL's backends):
        connections stay open, nothing answers. :meth:`thaw` undoes it."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"{self.kind} is not running")
        os.kill(proc.pid, signal.SIGSTOP)  # first: it forks no process after the listing
        self.frozen = [proc.pid]
        for pid in _pids_of_parent(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
                self.frozen.append(pid)
        # a signal is delivered later than kill() returns: wait until every thread of
        # every process is stopped, so that nothing sent from now on is answered
        deadline = time.monotonic() + STOP_TIMEOUT
        while not all(_stopped(pid) for pid in self.frozen):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} not stopped in {STOP_TIMEOUT:.0f}s")
            time.sleep(0.001)

    def thaw(self) -> None:
        """SIGCONT what :meth:`freeze` stopped (the server last: its children run on
        before it forks more); nothing if it is not frozen."""
        for pid in reversed(self.frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = []

    def stop(self) -> None:
        """A fast clean shutdown: clients are disconnected, the data flushed; falls back
        to :meth:`kill` past the bound."""
        self.thaw()  # a stopped process would not act on the signal
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(self.shutdown_signal)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"{self.kind} did not stop in {STOP_TIMEOUT:.0f}s") from None

    def kill(self) -> None:
        """A crash: SIGKILL to the server and every process it started, nothing flushed
        or said to the clients; waits (bounded) until they are all gone."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        # stopped first, so that it forks no process between the listing and the kill
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGSTOP)
        children = _pids_of_parent(proc.pid)
        proc.kill()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(_alive(pid) for pid in children):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind}'s processes outlived SIGKILL: {children}")
            time.sleep(0.02)

    def close(self) -> None:
        """Stop the server (killed past the bound) and remove its directory."""
        try:
            self.stop()
        finally:
            with contextlib.suppress(Exception):
                self.kill()
            shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """``sql``'s rows, on a connection of its own."""
        conn = self.connect(timeout=3)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()

    def connections(self) -> int:
        """The clients connected now, besides the connection asking."""
        conn = self.connect(timeout=3)
        try:
            return self._count_others(conn.cursor())
        finally:
            conn.close()

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""


class PostgresEngine(Engine):
    """PostgreSQL 15 from ``ODDSTREAM_TEST_PG_BIN`` (/usr/lib/postgresql/15/bin), trust
    authentication, user ``postgres``, database ``postgres``."""

    kind = "postgres"
    system_user = "postgres"
    shutdown_signal = signal.SIGINT  # "fast" shutdown

    def __init__(self) -> None:
        self.initdb = _binary("initdb", PG_BIN / "initdb")
        self.postgres = _binary("postgres", PG_BIN / "postgres")
        super().__init__()
        self.url = f"jdbc:postgresql://127.0.0.1:{self.port}/postgres?user=postgres"

    def setup(self) -> None:
        self._setup(
            [
                self.initdb,
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ]
        )

    def command(self) -> list[str]:
        return [
            self.postgres,
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-k",
            str(self.dir),  # its unix socket: not the shared server's directory
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=30",
            "-c",
            "shared_buffers=16MB",
        ]

    def connect(self, timeout: float) -> Any:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname="postgres",
            connect_timeout=max(1, round(timeout)),
            autocommit=True,
        )

    def _count_others(self, cur: Any) -> int:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return int(cur.fetchone()[0])


class MariadbEngine(Engine):
    """MariaDB (``mariadbd``, ``mariadb-install-db`` on the PATH or in /usr/sbin,
    /usr/bin), user ``root`` with no password over TCP, database ``test``."""

    kind = "mariadb"
    system_user = "mysql"
    shutdown_signal = signal.SIGTERM  # a normal shutdown

    def __init__(self) -> None:
        self.mariadbd = _binary("mariadbd", Path("/usr/sbin/mariadbd"))
        self.install_db = _binary("mariadb-install-db", Path("/usr/bin/mariadb-install-db"))
        super().__init__()
        self.url = f"jdbc:mariadb://127.0.0.1:{self.port}/test?user=root"

    def setup(self) -> None:
        self._setup(
            [
                self.install_db,
                "--no-defaults",
                f"--datadir={self.data}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ]
        )
        self.start()
        conn = self.connect(timeout=3, database=None)
        try:
            conn.cursor().execute("CREATE DATABASE test")
        finally:
            conn.close()

    def command(self) -> list[str]:
        return [
            self.mariadbd,
            "--no-defaults",
            f"--datadir={self.data}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.dir / 'mariadb.sock'}",
            f"--pid-file={self.dir / 'mariadb.pid'}",
            "--skip-log-bin",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=30",
        ]

    def connect(self, timeout: float, database: str | None = "test") -> Any:
        import pymysql

        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            password="",
            database=database,
            connect_timeout=timeout,
            autocommit=True,
        )

    def ping(self) -> None:
        self.connect(timeout=1, database=None).close()  # ``test`` is made after the first start

    def _count_others(self, cur: Any) -> int:
        cur.execute(
            "SELECT count(*) FROM information_schema.processlist "
            "WHERE id <> CONNECTION_ID() AND command <> 'Daemon' AND user <> 'system user'"
        )
        return int(cur.fetchone()[0])


ENGINES = {"postgres": PostgresEngine, "mariadb": MariadbEngine}


@contextlib.contextmanager
def private_engine(kind: str) -> Iterator[Engine]:
    """A private server of ``kind`` (``postgres``, ``mariadb``), started; stopped and
    removed when the block ends, however it ends."""
    engine = ENGINES[kind]()
    try:
        engine.setup()
        engine.start()
        yield engine
    finally:
        engine.close()
