"""``planloop db backup FILE`` and ``planloop db restore FILE``: one consistent copy of the whole
database, taken while the service runs, and put back while it is stopped.

SQLite: the online backup API (a consistent snapshot even while the worker writes; WAL included).
PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore --clean --if-exists --no-owner``, the
server's own tools (Debian: postgresql-client), so a dump also restores with them by hand.
After restoring an older backup, ``planloop db upgrade`` brings its schema to this version.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess  # noqa: S404 - pg_dump/pg_restore with an argument list, never a shell
from pathlib import Path

from sqlalchemy.engine import make_url

from storage.db import is_sqlite

# The English sentence of each refusal (logs, str()); the CLI words them in the config's locale
# with the same keys (bot/cli/texts.py, "backup.<key>").
REFUSALS = {
    "no_database": "no database at {path}",
    "no_backup": "no backup at {path}",
    "not_sqlite": "{path} is not an intact SQLite database",
    "in_memory": "an in-memory database has nothing to back up",
    "tool_missing": "{tool} not found: install the PostgreSQL client tools (Debian: postgresql-client)",
    "tool_failed": "{tool} failed: {output}",
}


class BackupError(Exception):
    """The backup or restore could not be made: ``key`` says why (REFUSALS), ``values`` fill it in."""

    def __init__(self, key: str, **values: object):
        super().__init__(REFUSALS[key].format(**values))
        self.key, self.values = key, values


def backup(database_url: str, target: Path) -> str:
    """Write a backup of the database to ``target``; returns what was done, for the console."""
    if is_sqlite(database_url):
        source = _sqlite_path(database_url)
        if not source.exists():
            raise BackupError("no_database", path=source)
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        return f"SQLite {source} → {target}"
    _pg_tool("pg_dump", "--format=custom", "--no-owner", f"--file={target}", _libpq_url(database_url))
    return f"PostgreSQL {make_url(database_url).database} → {target} (pg_dump --format=custom)"


def restore(database_url: str, source: Path) -> str:
    """Replace the database's contents with the backup in ``source`` (stop serve and worker first)."""
    if not source.exists():
        raise BackupError("no_backup", path=source)
    if is_sqlite(database_url):
        target = _sqlite_path(database_url)
        with sqlite3.connect(source) as src:
            try:
                intact = src.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            except sqlite3.DatabaseError:
                intact = False
            if not intact:
                raise BackupError("not_sqlite", path=source)
            with sqlite3.connect(target) as dst:
                src.backup(dst)
        return f"SQLite {source} → {target}"
    _pg_tool(
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        f"--dbname={_libpq_url(database_url)}",
        str(source),
    )
    return f"PostgreSQL {source} → {make_url(database_url).database}"


def _sqlite_path(database_url: str) -> Path:
    name = make_url(database_url).database
    if not name or name == ":memory:":
        raise BackupError("in_memory")
    return Path(name)


def _libpq_url(database_url: str) -> str:
    """postgresql+psycopg://… as the URL libpq's tools take (no SQLAlchemy driver name)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_tool(tool: str, *args: str) -> None:
    path = shutil.which(tool)
    if path is None:
        raise BackupError("tool_missing", tool=tool)
    done = subprocess.run([path, *args], capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError("tool_failed", tool=tool, output=(done.stderr or done.stdout).strip()[:500])
