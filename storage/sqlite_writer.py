"""SQLite's writers wait for each other on a file lock, not in SQLite's busy handler.

SQLite lets one writer in at a time (every planloop transaction there is ``BEGIN IMMEDIATE``).
A writer that finds the lock taken is refused, and its busy handler sleeps 1, 2, 5, 10 … ms
before the next try, while a webhook transaction holds the lock for well under 1 ms: on a busy
server that sleep, not the work, sets the pace, and the server idles while requests wait
(issue 18 §4). So before ``BEGIN IMMEDIATE`` each transaction
takes an exclusive ``flock`` on ``<database>-writer``, a file beside the database, and gives it
back when the transaction ends. A waiter tries again after 50 µs, then after twice as long
each time up to 1 ms, in this process or another: the web workers, ``planloop worker`` and
the CLI alike. It is not a fair queue (whoever tries first after a release gets in), which is
why a wait is bounded.

The database's own lock stays the guarantee; this only orders who asks for it. A process
that dies drops its file lock with it. A wait is bounded like the busy timeout: a writer that
has not got the lock after ``timeout`` seconds goes on to ``BEGIN IMMEDIATE``, which waits the
busy timeout and fails with SQLite's "database is locked" if the holder still has not finished.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from typing import Any

WAIT_TIMEOUT = 30.0  # seconds: the same bound as the busy timeout
FIRST_PAUSE = 0.00005  # seconds between tries at first (SQLite's own busy handler: 1 ms) ...
LONGEST_PAUSE = 0.001  # ... growing to this


class WriterLock:
    """An exclusive flock on one open file: each connection has its own, so two connections of
    one process exclude each other as two processes do."""

    def __init__(self, path: str):
        try:  # readable by whoever can read the database, as SQLite makes its own files
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError:  # made by another user (a root `db upgrade`): a lock needs no write
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.held = False

    def acquire(self, timeout: float = WAIT_TIMEOUT) -> bool:
        """Take the lock, trying again after 50 µs, then twice as long each time up to 1 ms;
        False after ``timeout``. (A blocking flock would wake sooner but could not give up.)"""
        deadline = time.monotonic() + timeout
        pause = FIRST_PAUSE
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE)
            else:
                self.held = True
                return True

    def release(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.release()
        os.close(self.fd)


class WriterConnection(sqlite3.Connection):
    """A pysqlite connection that gives the writer lock back when its transaction ends."""

    writer: WriterLock | None = None

    def begin_immediate(self) -> None:
        if self.writer is not None:
            self.writer.acquire()
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise

    def commit(self) -> None:
        try:
            super().commit()
        except BaseException:
            if self.in_transaction:  # a failed COMMIT leaves the transaction open: end it
                super().rollback()
            raise
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    def _release(self) -> None:
        if self.writer is not None and not self.in_transaction:
            self.writer.release()


def attach(dbapi_conn: Any, database: str) -> None:
    """Give a new connection to the file database ``database`` its own writer lock."""
    if isinstance(dbapi_conn, WriterConnection):
        dbapi_conn.writer = WriterLock(database + "-writer")
