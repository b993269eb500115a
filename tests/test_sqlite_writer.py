"""storage/sqlite_writer.py and the kept connection: SQLite's writers queue on a file lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import sqlite_writer
from storage.db import connection_transaction, make_engine


@pytest.fixture
def engine(tmp_path: Path):  # noqa: ANN201 - a file database of its own, on SQLite whatever the run
    made = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with made.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    yield made
    made.dispose()


def test_a_lock_is_held_from_begin_to_commit_or_rollback(engine, tmp_path):
    other = sqlite_writer.WriterLock(str(tmp_path / "w.db-writer"))
    try:
        for end in ("commit", "rollback"):
            with engine.connect() as conn:
                conn.begin()
                conn.execute(text("INSERT INTO t VALUES (1)"))
                assert other.acquire(timeout=0.01) is False  # taken by the transaction
                getattr(conn, end)()
                assert other.acquire(timeout=0.01) is True  # given back at its end
                other.release()
    finally:
        other.close()


def test_a_writer_waits_for_the_holder_and_goes_on_the_moment_it_commits(engine):
    """The second transaction starts within a few ms of the first's commit, not after SQLite's
    busy-handler sleeps, and both rows are written."""
    started = threading.Event()
    committed_at: list[float] = []

    def hold() -> None:
        with connection_transaction(engine) as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            started.set()
            time.sleep(0.2)
        committed_at.append(time.monotonic())

    holder = threading.Thread(target=hold)
    holder.start()
    started.wait(5)
    with connection_transaction(engine) as conn:
        began = time.monotonic()
        conn.execute(text("INSERT INTO t VALUES (2)"))
    holder.join(5)
    assert began >= committed_at[0] and began - committed_at[0] < 0.1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 2]


def test_a_wait_gives_up_after_its_timeout(tmp_path):
    path = str(tmp_path / "x-writer")
    first, second = sqlite_writer.WriterLock(path), sqlite_writer.WriterLock(path)
    try:
        assert first.acquire(timeout=0)
        started = time.monotonic()
        assert second.acquire(timeout=0.05) is False
        assert 0.05 <= time.monotonic() - started < 1
        first.release()
        assert second.acquire(timeout=0)
    finally:
        first.close()
        second.close()


def test_the_kept_connection_is_reused_dropped_after_a_failure_and_returned_when_its_thread_ends(engine):
    def connection() -> object:
        with connection_transaction(engine) as conn:
            return conn

    first = connection()
    assert connection() is first and engine.pool.checkedout() == 1  # kept between transactions
    with pytest.raises(ZeroDivisionError), connection_transaction(engine):
        1 / 0  # noqa: B018
    assert first.closed and connection() is not first  # closed after a failure; the next is new

    seen: list[object] = []
    thread = threading.Thread(target=lambda: seen.append(connection()))
    thread.start()
    thread.join(5)
    assert seen and seen[0] is not connection()  # each thread its own
    assert seen[0].closed and engine.pool.checkedout() == 1  # the ended thread's went back to the pool


def test_memory_databases_have_no_writer_lock():
    memory = make_engine("sqlite://")
    with memory.connect() as conn:
        assert not isinstance(conn.connection.driver_connection, sqlite_writer.WriterConnection)
        conn.begin()
        conn.execute(text("SELECT 1"))
        conn.commit()
    memory.dispose()
