"""Row 7 of issue 17: the SQLite one-worker lock belongs to the database file, however it is spelled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.worker.leader import SqliteWorkerLock, WorkerRefused


def _spellings(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir()
    real = data / "planloop.db"
    real.write_bytes(b"")
    (tmp_path / "link.db").symlink_to(real)
    (tmp_path / "linkdir").symlink_to(data)
    os.link(real, tmp_path / "hard.db")
    return {
        "symlink": str(tmp_path / "link.db"),
        "dot-dot": str(data / ".." / "data" / "planloop.db"),
        "dot": str(data / "." / "planloop.db"),
        "symlinked dir": str(tmp_path / "linkdir" / "planloop.db"),
        "relative": os.path.relpath(real),
        "hard link": str(tmp_path / "hard.db"),
    }


@pytest.mark.parametrize("spelling", ["symlink", "dot-dot", "dot", "symlinked dir", "relative", "hard link"])
def test_a_second_worker_is_refused_whatever_the_url_spells(tmp_path, spelling):
    paths = _spellings(tmp_path)
    first = SqliteWorkerLock(str(tmp_path / "data" / "planloop.db"))
    assert first.try_acquire()
    try:
        with pytest.raises(WorkerRefused, match="already runs"):
            SqliteWorkerLock(paths[spelling]).try_acquire()
    finally:
        first.release()
    second = SqliteWorkerLock(paths[spelling])  # released: the other spelling may lead now
    assert second.try_acquire()
    second.release()


def test_two_different_databases_do_not_block_each_other(tmp_path):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    a.write_bytes(b"")
    b.write_bytes(b"")
    la, lb = SqliteWorkerLock(str(a)), SqliteWorkerLock(str(b))
    assert la.try_acquire() and lb.try_acquire()
    la.release()
    lb.release()


def test_a_refused_worker_keeps_no_partial_lock(tmp_path):
    real = tmp_path / "x.db"
    real.write_bytes(b"")
    os.link(real, tmp_path / "y.db")
    holder = SqliteWorkerLock(str(tmp_path / "y.db"))  # holds y's path lock and the file's identity lock
    assert holder.try_acquire()
    with pytest.raises(WorkerRefused):
        SqliteWorkerLock(str(real)).try_acquire()  # gets x's path lock, then fails on the identity
    holder.release()
    again = SqliteWorkerLock(str(real))
    assert again.try_acquire()  # x's path lock was given back
    again.release()
