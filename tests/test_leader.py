"""Leader election: PostgreSQL advisory lock on a dedicated connection (one wins; a dead leader is
replaced within seconds), and one worker only on SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.worker.leader import (
    POLL_SECONDS,
    AdvisoryLockElection,
    SqliteWorkerLock,
    WorkerRefused,
    elect,
    lock_key,
)
from storage.db import make_engine
from tests.dbs import fresh_database, needs_postgres

ROOT = Path(__file__).resolve().parents[1]
TAKEOVER_SECONDS = 3 * POLL_SECONDS  # a dead leader's successor is leading within this


@pytest.fixture
def pg_engine(tmp_path):
    needs_postgres()
    with fresh_database("postgresql", tmp_path) as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


def poll_until_leader(election, seconds: float) -> float:
    """Poll like a worker does; returns how long it took, fails after ``seconds``."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if election.try_acquire():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"no takeover within {seconds} s")


def holders(engine, key: int) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND classid::bigint = :hi AND objid::bigint = :lo"
                    # advisory locks are per database: another test worker's database may hold
                    # the same key at the same moment
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
            ).scalars()
        )


@pytest.mark.parametrize("name", ["scheduler", "x", "长名字" * 20])
def test_lock_key_is_a_stable_signed_bigint(name):
    key = lock_key(name)
    assert -(2**63) <= key < 2**63
    assert key == lock_key(name) and key != lock_key(name + "!")


def test_one_of_two_wins_and_the_other_takes_over_when_it_releases(pg_engine):
    a, b = AdvisoryLockElection(pg_engine), AdvisoryLockElection(pg_engine)
    try:
        assert a.try_acquire() is True and a.is_leader
        assert b.try_acquire() is False and not b.is_leader
        assert a.try_acquire() is True  # staying leader is idempotent (no stacked lock)
        assert holders(pg_engine, a.key) == [a.backend_pid()]
        assert a.check() and not b.check()
        a.release()
        assert not a.is_leader
        assert b.try_acquire() is True
        assert a.try_acquire() is False
        assert holders(pg_engine, b.key) == [b.backend_pid()]
    finally:
        a.release()
        b.release()


def test_separate_names_are_separate_locks(pg_engine):
    a, b = AdvisoryLockElection(pg_engine, "scheduler"), AdvisoryLockElection(pg_engine, "other")
    try:
        assert a.try_acquire() and b.try_acquire()
    finally:
        a.release()
        b.release()


def test_a_killed_connection_hands_over_within_seconds(pg_engine):
    """The leader's connection is terminated (as when its process dies): the server drops the lock,
    the follower wins on its next polls, and the old leader notices it lost."""
    a, b = AdvisoryLockElection(pg_engine), AdvisoryLockElection(pg_engine)
    try:
        assert a.try_acquire()
        assert not b.try_acquire()
        with pg_engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": a.backend_pid()})
        took = poll_until_leader(b, TAKEOVER_SECONDS)
        assert took < TAKEOVER_SECONDS
        assert a.check() is False and a.is_leader is False
        assert a.try_acquire() is False  # it reconnects, but b holds the lock now
    finally:
        a.release()
        b.release()


LEADER_SCRIPT = """
import sys, time
from storage.db import make_engine
from bot.worker.leader import AdvisoryLockElection
election = AdvisoryLockElection(make_engine(sys.argv[1]))
assert election.try_acquire()
print("leading", flush=True)
time.sleep(120)
"""


def test_a_dead_leader_process_is_replaced_within_seconds(pg_engine):
    url = pg_engine.url.render_as_string(hide_password=False)
    leader = subprocess.Popen(
        [sys.executable, "-c", LEADER_SCRIPT, url],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    follower = AdvisoryLockElection(pg_engine)
    try:
        assert leader.stdout.readline().strip() == "leading"
        assert follower.try_acquire() is False
        leader.send_signal(signal.SIGKILL)  # no release, no goodbye: only the socket closes
        leader.wait(timeout=10)
        took = poll_until_leader(follower, TAKEOVER_SECONDS)
        assert took < TAKEOVER_SECONDS
    finally:
        if leader.poll() is None:
            leader.kill()
        follower.release()


def test_election_survives_the_database_being_away_for_a_moment(pg_engine):
    """A follower whose connection broke just reconnects on the next poll."""
    a = AdvisoryLockElection(pg_engine)
    b = AdvisoryLockElection(pg_engine)
    try:
        assert a.try_acquire()
        assert not b.try_acquire()
        with pg_engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": b.backend_pid()})
        assert b.try_acquire() is False  # broken connection: not leader, connection dropped
        assert b.try_acquire() is False  # reconnected; a still leads
        assert a.check() is True
    finally:
        a.release()
        b.release()


def test_elect_on_postgres_gives_the_advisory_lock(pg_engine):
    election = elect(pg_engine)
    try:
        assert isinstance(election, AdvisoryLockElection) and election.try_acquire()
    finally:
        election.release()


# ---------------------------------------------------------------- SQLite: one worker


def test_sqlite_refuses_a_second_worker_in_the_same_process(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'planloop.db'}")
    first = elect(engine)
    assert first.is_leader and first.try_acquire() and first.check()
    with pytest.raises(WorkerRefused) as refused:
        elect(engine)
    message = str(refused.value)
    assert f"pid {os.getpid()}" in message
    assert "SQLite allows one worker" in message and "PostgreSQL" in message
    assert str(tmp_path / "planloop.db") in message
    first.release()
    second = elect(engine)  # released: the next one may start
    assert second.is_leader
    second.release()


SQLITE_HOLDER = """
import sys, time
from bot.worker.leader import SqliteWorkerLock
lock = SqliteWorkerLock(sys.argv[1])
lock.try_acquire()
print("holding", flush=True)
time.sleep(120)
"""


def test_sqlite_refuses_while_another_process_holds_it_and_not_after_it_dies(tmp_path):
    db_path = str(tmp_path / "planloop.db")
    holder = subprocess.Popen(
        [sys.executable, "-c", SQLITE_HOLDER, db_path],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(WorkerRefused, match=f"pid {holder.pid} on "):
            SqliteWorkerLock(db_path).try_acquire()
        holder.send_signal(signal.SIGKILL)  # a crash leaves the lock file, but not the lock
        holder.wait(timeout=10)
        lock = SqliteWorkerLock(db_path)
        assert lock.try_acquire() is True
        assert Path(db_path + ".worker.lock").read_text().startswith(f"pid {os.getpid()} on ")
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()


def test_sqlite_in_memory_is_always_its_own_leader():
    lock = elect(make_engine("sqlite://"))
    assert lock.is_leader and lock.check()
    lock.release()
    assert not lock.is_leader
