"""The few statements every inbound event runs, executed on the driver's own cursor.

A Core ``execute`` costs about 40 µs of SQLAlchemy machinery (cache key, execution context,
result set-up) around a 5–10 µs SQLite statement; an inbound webhook runs three of them
(issue 18 §4). A ``HotStatement`` is compiled by SQLAlchemy once per dialect and set of
columns, then each run is one ``cursor.execute`` with the values passed through the same
bind processors SQLAlchemy would use, so the row written is the row ``Connection.execute``
writes (tests/test_hot.py compares them on both databases).

It runs inside the caller's SQLAlchemy transaction, on that transaction's connection: get
it with ``Session.connection()`` or ``Connection.begin()`` first, so the transaction has
begun (on SQLite, ``BEGIN IMMEDIATE`` behind the writer lock). Rows come back as the
driver gives them: no result processing (an SQLite timestamp is its stored text). An INSERT
must be given every column whose default SQLAlchemy computes in Python (refused otherwise),
and the driver's errors arrive unwrapped (``sqlite3.IntegrityError``, not SQLAlchemy's): the
hot statements are ``ON CONFLICT DO NOTHING`` inserts and plain reads, which do not raise one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # every bind, in the order a positional driver wants them
    positional: bool
    defaults: Mapping[str, Any]  # binds with a value of their own (a LIMIT, say)
    processors: Mapping[str, Callable[[Any], Any]]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        merged = {**self.defaults, **values}
        for name, process in self.processors.items():
            merged[name] = process(merged[name])
        if self.positional:
            return tuple(merged[name] for name in self.names)
        return merged


class HotStatement:
    """A Core statement run straight on the DBAPI cursor of the caller's transaction."""

    def __init__(self, statement: ClauseElement):
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def rowcount(self, conn: Connection, values: Mapping[str, Any]) -> int:
        """Run a write with ``values`` (for an INSERT, exactly the columns to write); the
        driver's row count."""
        cursor = self._run(conn, values)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def first(self, conn: Connection, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run a query; its first row as the driver gives it, or None."""
        cursor = self._run(conn, values)
        try:
            row = cursor.fetchone()
            return None if row is None else tuple(row)
        finally:
            cursor.close()

    def _run(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        compiled = self._for(conn.dialect, tuple(values))
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(compiled.sql, compiled.parameters(values))
        return cursor

    def _for(self, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
        found = self._compiled.get((dialect.name, keys))
        if found is None:
            found = self._compiled[(dialect.name, keys)] = _compile(self.statement, dialect, keys)
        return found


def _compile(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    names = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
    processors = {}
    for name in names:
        process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    defaults = {}
    for name in names:
        if name in keys:
            continue
        bind = compiled.binds[name]
        if bind.value is None and bind.callable is None:
            # a column whose default SQLAlchemy computes in Python: it would be written NULL
            raise ValueError(f"HotStatement: give {name!r} a value (SQLAlchemy would compute its default)")
        defaults[name] = bind.effective_value
    return _Compiled(compiled.string, names, bool(compiled.positional), defaults, processors)
