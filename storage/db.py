"""Engine and sessions: one make_engine(url) per process, SQLite pragmas, migrations status."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the process's engine; on SQLite turn on WAL, foreign keys and a busy timeout."""
    if is_sqlite(url):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling would defer BEGIN; take it over so
            # `BEGIN IMMEDIATE` style locking behaves and pragmas run outside a transaction.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if make_url(url).database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # IMMEDIATE: a transaction that reads, then writes (dedupe, then insert) cannot be refused
            # with "database is locked" when another writer committed in between (WAL snapshot).
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if make_url(url).get_driver_name() == "psycopg":
        # A dead database must fail a probe in seconds, not hang it for the OS's TCP timeout.
        kwargs.setdefault("connect_args", {"connect_timeout": 5})
    return create_engine(url, **kwargs)


def insert_new(dialect: str, table: Table) -> Insert:
    """``INSERT INTO table … ON CONFLICT DO NOTHING`` for ``dialect`` (sqlite or postgresql):
    executed with a row's values, its row count is 1 for a new row and 0 for one whose
    primary or unique key was already there. Build it once and reuse it: the statement's
    compiled form is cached per engine, so a hot path pays no ORM and no compile."""
    stmt: Insert
    if dialect == "sqlite":
        stmt = sqlite_insert(table).on_conflict_do_nothing()
    elif dialect == "postgresql":
        stmt = pg_insert(table).on_conflict_do_nothing()
    else:
        raise ValueError(f"no INSERT … ON CONFLICT DO NOTHING for the {dialect} dialect")
    # SQLAlchemy keeps an INSERT's row count only when asked (psycopg's is gone once the
    # cursor closes: -1, which would read as "inserted").
    return stmt.execution_options(preserve_rowcount=True)


def inserted(result: Any) -> bool:
    """Whether an ``insert_new`` statement added its row (1) or met an existing key (0); any
    other count means the driver did not say, and guessing either way would drop or repeat
    an event, so it is an error."""
    count = result.rowcount
    if count not in (0, 1):
        raise RuntimeError(f"INSERT … ON CONFLICT DO NOTHING reported {count} rows; expected 0 or 1")
    return bool(count == 1)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on error."""
    with factory() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` (what `planloop db upgrade` runs)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


@functools.cache
def head_revision() -> str:
    """The newest migration in the code (read once per process: /readyz asks often)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head() or ""


def migration_status(engine: Engine) -> tuple[str | None, str]:
    """(current revision in the database, head revision of the code)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head_revision()


class NotMigrated(RuntimeError):
    """The database is behind the code; the message says which command fixes it."""

    @classmethod
    def between(cls, current: str | None, head: str) -> NotMigrated:
        where = "empty" if current is None else f"at revision {current}"
        return cls(f"the database is {where} but the code needs {head}: run `planloop db upgrade` first")


def require_current(engine: Engine) -> None:
    current, head = migration_status(engine)
    if current != head:
        raise NotMigrated.between(current, head)
