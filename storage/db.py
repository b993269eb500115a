"""Engine and sessions: one make_engine(url) per process, SQLite pragmas, migrations status."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from storage import sqlite_writer

MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the process's engine; on SQLite turn on WAL, foreign keys and a busy timeout."""
    if is_sqlite(url):
        database = make_url(url).database or ""
        on_disk = database not in ("", ":memory:")
        connect_args: dict[str, Any] = {"timeout": 30, "check_same_thread": False}
        if on_disk:
            connect_args["factory"] = sqlite_writer.WriterConnection
        kwargs.setdefault("connect_args", connect_args)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling would defer BEGIN; take it over so
            # `BEGIN IMMEDIATE` style locking behaves and pragmas run outside a transaction.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            if on_disk:
                cur.execute("PRAGMA journal_mode=WAL")
                sqlite_writer.attach(dbapi_conn, database)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # IMMEDIATE: a transaction that reads, then writes (dedupe, then insert) cannot be refused
            # with "database is locked" when another writer committed in between (WAL snapshot).
            # Writers queue on a file lock first (storage/sqlite_writer.py). Straight to the
            # driver: this runs before every transaction, and SQLAlchemy's statement machinery
            # would cost more than the BEGIN itself.
            driver = conn.connection.driver_connection
            if isinstance(driver, sqlite_writer.WriterConnection):
                driver.begin_immediate()
            else:
                driver.execute("BEGIN IMMEDIATE")

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
    return counted(result.rowcount)


def counted(count: int) -> bool:
    """``inserted`` for a row count already read (a HotStatement's)."""
    if count not in (0, 1):
        raise RuntimeError(f"INSERT … ON CONFLICT DO NOTHING reported {count} rows; expected 0 or 1")
    return bool(count == 1)


def connection_of(holder: Session | Connection) -> Connection:
    """The connection of the caller's transaction, whether the caller holds a Session or a
    Core Connection (the inbound path holds a Connection: storage/hot.py)."""
    return holder if isinstance(holder, Connection) else holder.connection()


def upsert(session: Session, model: Any, ident: Any, values: Mapping[str, Any]) -> tuple[Any, dict | None]:
    """Create the ``model`` row with primary key ``ident`` or set ``values`` on it; the row and
    what those columns held before (None for a new row), for the caller's audit entry."""
    row = session.get(model, ident)
    if row is None:
        row = model(**{model.__mapper__.primary_key[0].key: ident}, **values)
        session.add(row)
        return row, None
    before = {k: getattr(row, k) for k in values}
    for name, value in values.items():
        setattr(row, name, value)
    return row, before


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session inside one transaction: committed on success, rolled back on error."""
    with factory() as session, session.begin():
        yield session


class _Kept:
    """This thread's kept connection; given back to the pool when the thread ends (CPython
    drops a thread's locals then) or when it is replaced."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def __del__(self) -> None:
        self.conn.close()


_kept = threading.local()


@contextmanager
def connection_transaction(engine: Engine) -> Iterator[Connection]:
    """A Core transaction, committed on success and rolled back on error.

    On SQLite the thread keeps its connection between transactions: checking one out of the
    pool and back costs more than the inbound path's three statements (issue 18 §4), and a
    SQLite connection has no server to lose. A failed transaction drops the kept connection,
    so the next one starts on a fresh one. On PostgreSQL each transaction checks one out, so
    the pool's ping finds a connection the server closed."""
    if not is_sqlite(engine):
        with engine.connect() as conn, conn.begin():
            yield conn
        return
    kept: _Kept | None = getattr(_kept, "connection", None)
    if kept is None or kept.conn.engine is not engine or kept.conn.closed:
        kept = _kept.connection = _Kept(engine.connect())
    try:
        with kept.conn.begin():
            yield kept.conn
    except BaseException:
        _kept.connection = None
        kept.conn.close()  # now, not when the collector finds it: it may still hold the writer lock
        raise


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
