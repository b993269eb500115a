"""A team's own database (kind = "sql"): one read-only SELECT with bound parameters and a timeout.

The query comes from the config, never from a chat message; the only values put into it are
the window's ``:start`` and ``:end`` (and ``:scope``), always as bound parameters. The query must
be one SELECT (or WITH … SELECT) statement; it runs in a read-only transaction (PostgreSQL,
MySQL) or a ``query_only`` connection (SQLite) that is always rolled back, under a statement
timeout, and at most ``max_rows`` rows are read.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from sources.base import (
    FetchResult,
    NeedsAdmin,
    RetryLater,
    RowError,
    SourceConfigLike,
    SourceDeps,
    Window,
)
from sources.presets import METRIC_KEY
from sources.values import ValueParseError, parse_date

DIALECTS = ("sqlite", "postgresql", "mysql")
MAX_ROWS = 100_000
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRINGS = re.compile(r"'(?:[^']|'')*'")


def check_query(query: str) -> str:
    """One SELECT/WITH statement (a trailing ``;`` is allowed); raise NeedsAdmin otherwise."""
    bare = _STRINGS.sub("''", _COMMENTS.sub(" ", query)).strip()
    if bare.endswith(";"):
        bare = bare[:-1].rstrip()
    if not re.match(r"(?is)^(select|with)\b", bare):
        raise NeedsAdmin("query 只能是一条 SELECT（或 WITH … SELECT）语句")
    if ";" in bare:
        raise NeedsAdmin("query 只能有一条语句")
    return query.strip().rstrip(";")


class SqlSource:
    kind = "sql"

    def __init__(self, config: SourceConfigLike, deps: SourceDeps):
        self.id = config.id
        self.deps = deps
        self.url = config.secret("url_secret") or str(config.get("url", "") or "")
        if not self.url:
            raise NeedsAdmin(f'sources.{config.id}.url：需要数据库地址（含密码时用 url_secret = "env:…"）')
        try:
            self.dialect = make_url(self.url).get_backend_name()
        except ArgumentError:
            raise NeedsAdmin(f"sources.{config.id}.url：不是有效的数据库地址") from None
        if self.dialect not in DIALECTS:
            raise NeedsAdmin(f"sources.{config.id}.url：只支持 {', '.join(DIALECTS)}")
        self.query = check_query(str(config.get("query", "") or ""))
        self.timeout = float(config.get("timeout", 30))
        self.max_rows = int(config.get("max_rows", MAX_ROWS))
        self.date_column = str(config.get("date_column", "day"))
        self.scope = str(config.get("scope", "shop"))
        self.scope_column = str(config.get("scope_column", "") or "")
        self.metric_column = str(config.get("metric_column", "") or "")
        self.value_column = str(config.get("value_column", "value"))
        self.columns = {str(k): str(v) for k, v in (config.get("columns") or {}).items()}
        bad = [f"{k} = {v}" for k, v in self.columns.items() if not METRIC_KEY.fullmatch(v)]
        if bad:
            raise NeedsAdmin(f"sources.{config.id}.columns：指标键无效：{', '.join(bad)}")
        if not self.columns and not self.metric_column:
            raise NeedsAdmin(f'sources.{config.id}：需要 columns = {{ 列名 = "指标键" }} 或 metric_column')

    def _engine(self) -> Any:
        engine = create_engine(self.url, poolclass=NullPool)
        if self.dialect == "sqlite":

            @event.listens_for(engine, "connect")
            def _read_only(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute("PRAGMA query_only = ON")
                deadline = time.monotonic() + self.timeout
                # SQLite has no statement timeout: interrupt the query from its progress handler
                dbapi_conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)

        return engine

    def _guard(self, conn: Any) -> None:
        ms = max(int(self.timeout * 1000), 1)
        if self.dialect == "postgresql":
            conn.execute(text("SET TRANSACTION READ ONLY"))
            conn.execute(text(f"SET LOCAL statement_timeout = {ms}"))
        elif self.dialect == "mysql":
            conn.execute(text("SET SESSION TRANSACTION READ ONLY"))
            conn.execute(text(f"SET SESSION MAX_EXECUTION_TIME = {ms}"))

    def fetch(self, window: Window, now: datetime) -> FetchResult:
        params = {"start": window.start, "end": window.end, "scope": self.scope}
        try:
            engine = self._engine()
        except (NoSuchModuleError, ArgumentError, SQLAlchemyError) as exc:
            raise NeedsAdmin(f"无法连接数据库：{type(exc).__name__}") from None
        try:
            with engine.connect() as conn:
                trans = conn.begin()
                try:
                    self._guard(conn)
                    cursor = conn.execute(text(self.query), params)
                    names = list(cursor.keys())
                    rows = cursor.fetchmany(self.max_rows + 1)
                finally:
                    trans.rollback()
        except OperationalError as exc:
            message = str(exc.orig) if exc.orig is not None else str(exc)
            if "interrupt" in message or "timeout" in message.lower() or "cancel" in message.lower():
                raise RetryLater(f"查询超过 {self.timeout:g} 秒被中止") from None
            if "readonly" in message.lower() or "read-only" in message.lower():
                raise NeedsAdmin(f"查询试图写入数据库（只允许读取）：{message}") from None
            raise RetryLater(f"数据库不可用：{message}") from None
        except DBAPIError as exc:
            message = str(exc.orig) if exc.orig is not None else str(exc)
            if "read-only" in message or "cancel" in message:
                kind = RetryLater if "cancel" in message else NeedsAdmin
                raise kind(f"查询被数据库拒绝：{message.splitlines()[0]}") from None
            raise NeedsAdmin(f"查询出错：{message.splitlines()[0]}") from None
        finally:
            engine.dispose()
        if len(rows) > self.max_rows:
            raise NeedsAdmin(f"查询结果超过 {self.max_rows} 行：请在 query 里按日期过滤（:start、:end）")
        return self._samples(names, rows, now)

    def _samples(self, names: list[str], rows: list[Any], now: datetime) -> FetchResult:
        index = {n: i for i, n in enumerate(names)}
        needed = [self.date_column] + (
            [self.metric_column, self.value_column] if self.metric_column else list(self.columns)
        )
        if self.scope_column:
            needed.append(self.scope_column)
        missing = [c for c in needed if c not in index]
        if missing:
            raise NeedsAdmin(f"查询结果缺少列：{', '.join(missing)}（实际有：{', '.join(names)}）")
        result = FetchResult(detail={"rows": len(rows)})
        label = f"sources.{self.id}.query"
        for n, row in enumerate(rows, start=1):
            result.rows_read += 1
            errors: list[RowError] = []
            try:
                day = parse_date(row[index[self.date_column]])
            except ValueParseError as exc:
                errors.append(RowError(label, n, self.date_column, str(exc)))
                day = None
            scope = self.scope
            if self.scope_column and row[index[self.scope_column]] not in (None, ""):
                scope = str(row[index[self.scope_column]])
            pairs: list[tuple[str, str]]  # (column, metric)
            if self.metric_column:
                metric = row[index[self.metric_column]]
                if not isinstance(metric, str) or not METRIC_KEY.fullmatch(metric):
                    errors.append(RowError(label, n, self.metric_column, f"指标键无效：{metric!r}"))
                    pairs = []
                else:
                    pairs = [(self.value_column, metric)]
            else:
                pairs = list(self.columns.items())
            cells = [(column, metric, row[index[column]]) for column, metric in pairs]
            result.add_row((label, n), scope, day, cells, errors, self.id, now)
        return result
