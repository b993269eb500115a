"""Which worker runs the scheduler: a PostgreSQL advisory lock, or one worker only on SQLite.

Every worker relays the outbox (rows are claimed with SKIP LOCKED), but only one runs the
scheduler. ``elect(engine)`` gives the worker an election with one face:

    election = elect(services.engine)      # raises WorkerRefused on SQLite if one already runs
    while not stop.is_set():
        if election.try_acquire():          # cheap; call every POLL_SECONDS
            ...start or keep the scheduler...
        else:
            ...stop the scheduler if it runs...
        stop.wait(POLL_SECONDS)
    election.release()

PostgreSQL: ``pg_try_advisory_lock`` on a connection of its own (never a pooled one, which
would be handed back and reused while still holding the lock). The server releases a
session-level advisory lock the moment that connection ends, so when the leader's process
dies (crash, SIGKILL, OOM, container stop) the kernel closes its socket and the next
``try_acquire`` of another worker wins — within one poll interval. If the leader's host
vanishes without closing the socket, server-side TCP keepalives (set on the connection)
end it in about ``KEEPALIVE_IDLE + KEEPALIVE_INTERVAL × KEEPALIVE_COUNT`` seconds. The
leader checks on every poll that it still holds the lock (``pg_locks``); a leader whose
connection broke steps down. The ``job_runs`` claim stays the safety net: even two leaders
for a moment would not send a summary twice.

SQLite: one worker per database file. An exclusive ``flock`` on ``<database>.worker.lock``
(with the holder's PID and host written inside for the message). Chosen over a row lease
in the database: the kernel drops the lock the instant the holder dies, even on SIGKILL,
so a restarted worker never waits for a lease to expire, and nothing heartbeats into a
database whose single writer lock the relay and the web app need.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

log = logging.getLogger("planloop.leader")

POLL_SECONDS = 2.0  # how often a worker calls try_acquire(); a dead leader is replaced within this
KEEPALIVE_IDLE = 5
KEEPALIVE_INTERVAL = 2
KEEPALIVE_COUNT = 3


class WorkerRefused(RuntimeError):
    """A second worker on a SQLite database: the message says which process holds it and what to do."""


class LeaderElection(Protocol):
    @property
    def is_leader(self) -> bool: ...

    def try_acquire(self) -> bool:
        """Become (or stay) leader if possible; True while this worker leads. Never blocks long."""
        ...

    def check(self) -> bool:
        """Liveness: does this worker still hold the leadership? Steps down (False) if not."""
        ...

    def release(self) -> None:
        """Give the leadership up (on shutdown), so another worker takes over at once."""
        ...


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name`` (advisory locks are per database)."""
    digest = hashlib.sha256(f"planloop:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def elect(engine: Engine, name: str = "scheduler") -> LeaderElection:
    """The election fitting the engine's database. On SQLite this takes the worker lock at once
    and raises WorkerRefused if another worker holds it."""
    if engine.dialect.name == "sqlite":
        lock = SqliteWorkerLock(engine.url.database)
        lock.try_acquire()
        return lock
    if engine.dialect.name == "postgresql":
        return AdvisoryLockElection(engine, name)
    raise WorkerRefused(f"no leader election for {engine.dialect.name}: use PostgreSQL or SQLite")


class AdvisoryLockElection:
    """Leader while holding ``pg_try_advisory_lock(key)`` on a dedicated connection."""

    def __init__(self, engine: Engine, name: str = "scheduler"):
        self.name = name
        self.key = lock_key(name)
        self._hi, self._lo = (self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF
        connect_args: dict[str, Any] = {
            "application_name": f"planloop-leader-{name}",
            "connect_timeout": 5,
            # Client side: the leader notices its own dead link and steps down.
            "keepalives": 1,
            "keepalives_idle": KEEPALIVE_IDLE,
            "keepalives_interval": KEEPALIVE_INTERVAL,
            "keepalives_count": KEEPALIVE_COUNT,
        }
        # NullPool: the one connection is ours alone and really closes when we close it.
        self._engine = create_engine(
            engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=connect_args
        )
        self._conn: Connection | None = None
        self._leader = False
        self._lock = threading.Lock()

    @property
    def is_leader(self) -> bool:
        return self._leader

    def _connect(self) -> Connection:
        if self._conn is None:
            conn = self._engine.connect()
            # Server side: a leader whose host vanished without a FIN loses the lock in ~11 s.
            conn.execute(text(f"SET tcp_keepalives_idle = {KEEPALIVE_IDLE}"))
            conn.execute(text(f"SET tcp_keepalives_interval = {KEEPALIVE_INTERVAL}"))
            conn.execute(text(f"SET tcp_keepalives_count = {KEEPALIVE_COUNT}"))
            self._conn = conn
        return self._conn

    def _drop(self, why: str) -> None:
        was = self._leader
        self._leader = False
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:  # noqa: BLE001, S110 - the connection is already gone; nothing to undo
                pass
            self._conn = None
        if was:
            log.warning("lost the %s leadership: %s", self.name, why)

    def try_acquire(self) -> bool:
        with self._lock:
            if self._leader:
                return self._check()
            try:
                conn = self._connect()
                got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
            except Exception as exc:  # noqa: BLE001 - the database is away: not the leader, try later
                self._drop(f"database unavailable ({type(exc).__name__})")
                return False
            if got:
                self._leader = True
                log.info("elected %s leader", self.name, extra={"pid": os.getpid()})
            return got

    def check(self) -> bool:
        with self._lock:
            return self._check()

    def _check(self) -> bool:
        if not self._leader or self._conn is None:
            return False
        try:
            held = self._conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                    " AND pid = pg_backend_pid() AND granted"
                    " AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1)"
                ),
                {"hi": self._hi, "lo": self._lo},
            ).scalar()
        except Exception as exc:  # noqa: BLE001 - connection broken: the server has released the lock
            self._drop(f"connection lost ({type(exc).__name__})")
            return False
        if not held:
            self._drop("the advisory lock is no longer held")
            return False
        return True

    def release(self) -> None:
        with self._lock:
            if self._leader and self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                except Exception:  # noqa: BLE001, S110 - closing the connection releases it anyway
                    pass
            self._leader = False
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._engine.dispose()

    def backend_pid(self) -> int | None:
        """The server process of the dedicated connection (for operators and tests)."""
        if self._conn is None:
            return None
        return int(self._conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


class SqliteWorkerLock:
    """One worker per SQLite file: an exclusive flock the kernel releases when the holder dies.

    The lock belongs to the database file, whatever the URL spells (a symlink, ``./x/../x``, a
    relative path, a hard link): ``<real path>.worker.lock`` beside the file the path resolves to,
    and, once the file exists, ``planloop-worker-<device>-<inode>.lock`` in the temp directory."""

    def __init__(self, database: str | None):
        self.database = database or ""
        in_memory = self.database in ("", ":memory:") or self.database.startswith("file::memory:")
        self.paths: list[Path] = [] if in_memory else lock_paths(self.database)
        self.path: Path | None = self.paths[0] if self.paths else None
        self._fds: list[int] = []
        self._leader = False

    @property
    def is_leader(self) -> bool:
        return self._leader

    def try_acquire(self) -> bool:
        """True once held; raises WorkerRefused if another live process holds the file."""
        import fcntl

        if self._leader:
            return True
        if not self.paths:  # an in-memory database lives in this process only
            self._leader = True
            return True
        started = datetime.now(UTC).isoformat(timespec="seconds")
        for path in self.paths:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                self._unlock()
                raise WorkerRefused(
                    f"another planloop worker ({holder}) already runs against {self.database}; "
                    "SQLite allows one worker: stop that one first, or move to PostgreSQL to run several"
                ) from None
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {started}\n".encode())
            self._fds.append(fd)
        self._leader = True
        return True

    def check(self) -> bool:
        return self._leader  # a held flock cannot be lost while the file stays open

    def _unlock(self) -> None:
        import fcntl

        for fd in self._fds:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._fds = []

    def release(self) -> None:
        self._unlock()
        self._leader = False


def lock_paths(database: str) -> list[Path]:
    """The lock files of one SQLite database: by its real path, and by its identity when it exists."""
    real = Path(database).resolve()  # symlinks, "..", relative paths: one spelling
    paths = [real.with_name(real.name + ".worker.lock")]
    try:
        st = os.stat(real)
    except OSError:
        return paths  # not created yet: `planloop db upgrade` comes first anyway
    paths.append(Path(tempfile.gettempdir()) / f"planloop-worker-{st.st_dev}-{st.st_ino}.lock")
    return paths
