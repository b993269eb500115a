"""Metric samples: set-based upsert on (metric, scope, day) with every replaced value audited;
source runs (rows read / loaded / refused / error); the latest value of a metric for baselines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import insert, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import AuditLog, MetricSample, SourceRun

BATCH = 5000  # rows per batch: SQLAlchemy splits SQLite statements; PostgreSQL takes arrays
SCALE = Decimal(1).scaleb(-8)  # the column keeps 8 digits after the point


class SampleLike(Protocol):
    """What ``sources.base.MetricSample`` looks like (storage does not import sources)."""

    @property
    def metric(self) -> str: ...

    @property
    def scope(self) -> str: ...

    @property
    def date(self) -> date: ...

    @property
    def value(self) -> Decimal: ...

    @property
    def source(self) -> str: ...

    @property
    def fetched_at(self) -> datetime: ...


@dataclass
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)  # the first few replaced values

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


def _dialect_insert(session: Session) -> Any:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert
    if name == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"metric upsert is written for SQLite and PostgreSQL, not {name}")


def upsert_samples(
    session: Session,
    samples: Iterable[SampleLike],
    *,
    now: datetime,
    actor: str = "source",
    batch: int = BATCH,
    keep_changes: int = 20,
) -> UpsertResult:
    """Store samples; a later value for the same (metric, scope, day) replaces the earlier one.

    Set-based: per batch one SELECT of the existing values (for the audit) and one
    ``INSERT … ON CONFLICT DO UPDATE … WHERE value IS DISTINCT FROM excluded.value``, so
    storing the same rows again writes nothing. Each replaced value gets an audit row with the
    old and the new value. Within one call the last sample for a key wins. Never commits.
    """
    dialect_insert = _dialect_insert(session)
    result = UpsertResult()
    pending: dict[tuple[str, str, date], dict[str, Any]] = {}
    for s in samples:
        value = s.value.quantize(SCALE) if s.value.as_tuple().exponent < -8 else s.value  # type: ignore[operator]
        pending[(s.metric, s.scope, s.date)] = {
            "metric": s.metric,
            "scope": s.scope,
            "day": s.date,
            "value": value,
            "source": s.source,
            "fetched_at": s.fetched_at,
        }
        if len(pending) >= batch:
            _flush(session, dialect_insert, pending, result, now, actor, keep_changes)
            pending = {}
    if pending:
        _flush(session, dialect_insert, pending, result, now, actor, keep_changes)
    return result


# PostgreSQL: a whole batch as six array parameters, the old values read in the same statement
# (every CTE sees the snapshot from before the INSERT), so one round trip and no per-value binds.
_PG_UPSERT = text(
    """
    WITH input AS (
        SELECT * FROM unnest(
            CAST(:metric AS text[]), CAST(:scope AS text[]), CAST(:day AS date[]),
            CAST(:value AS numeric[]), CAST(:source AS text[]), CAST(:fetched_at AS timestamptz[])
        ) AS t(metric, scope, day, value, source, fetched_at)
    ),
    old AS (
        SELECT s.metric, s.scope, s.day, s.value, s.source
        FROM metric_samples s JOIN input i USING (metric, scope, day)
    ),
    up AS (
        INSERT INTO metric_samples (metric, scope, day, value, source, fetched_at)
        SELECT metric, scope, day, value, source, fetched_at FROM input
        ON CONFLICT (metric, scope, day) DO UPDATE
            SET value = excluded.value, source = excluded.source, fetched_at = excluded.fetched_at
            WHERE metric_samples.value IS DISTINCT FROM excluded.value
        RETURNING metric, scope, day
    )
    SELECT up.metric, up.scope, up.day, old.value, old.source
    FROM up LEFT JOIN old USING (metric, scope, day)
    """
)


# The audit rows of a batch as one JSON document: no per-row parameters to escape.
_PG_AUDIT = text(
    """
    INSERT INTO audit_log (at, actor, action, subject, detail)
    SELECT CAST(:at AS timestamptz), CAST(:actor AS text), CAST(:action AS text), r.subject, r.detail
    FROM json_to_recordset(CAST(:rows AS json)) AS r(subject text, detail json)
    """
)


def _flush_pg(
    session: Session,
    rows: dict[tuple[str, str, date], dict[str, Any]],
) -> tuple[set[tuple[str, str, date]], dict[tuple[str, str, date], tuple[Any, str]]]:
    values = list(rows.values())
    params = {
        col: [r[col] for r in values] for col in ("metric", "scope", "day", "value", "source", "fetched_at")
    }
    written: set[tuple[str, str, date]] = set()
    old: dict[tuple[str, str, date], tuple[Any, str]] = {}
    for metric, scope, day, old_value, old_source in session.execute(_PG_UPSERT, params):
        key = (metric, scope, day)
        written.add(key)
        if old_source is not None:
            old[key] = (old_value, old_source)
    return written, old


def _flush(
    session: Session,
    dialect_insert: Any,
    rows: dict[tuple[str, str, date], dict[str, Any]],
    result: UpsertResult,
    now: datetime,
    actor: str,
    keep_changes: int,
) -> None:
    table = MetricSample.__table__
    if session.get_bind().dialect.name == "postgresql":
        written, old = _flush_pg(session, rows)
        _account(session, rows, written, old, result, now, actor, keep_changes)
        return
    keys = list(rows)
    old = {
        (m, s, d): (v, src)
        for m, s, d, v, src in session.execute(
            select(table.c.metric, table.c.scope, table.c.day, table.c.value, table.c.source).where(
                tuple_(table.c.metric, table.c.scope, table.c.day).in_(keys)
            )
        )
    }
    # one compiled statement run as executemany: SQLAlchemy batches it into multi-row VALUES
    # ("insertmanyvalues") without compiling a bind parameter per value
    stmt = dialect_insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.metric, table.c.scope, table.c.day],
        set_={
            "value": stmt.excluded.value,
            "source": stmt.excluded.source,
            "fetched_at": stmt.excluded.fetched_at,
        },
        where=table.c.value.is_distinct_from(stmt.excluded.value),
    ).returning(table.c.metric, table.c.scope, table.c.day)
    written = {tuple(r) for r in session.execute(stmt, list(rows.values()))}
    _account(session, rows, written, old, result, now, actor, keep_changes)


def _account(
    session: Session,
    rows: dict[tuple[str, str, date], dict[str, Any]],
    written: set[tuple[str, str, date]],
    old: dict[tuple[str, str, date], tuple[Any, str]],
    result: UpsertResult,
    now: datetime,
    actor: str,
    keep_changes: int,
) -> None:
    """Count inserts, replacements and unchanged rows; audit every replaced value."""
    audit: list[dict[str, Any]] = []
    for key in written:
        if key not in old:
            result.inserted += 1
            continue
        result.updated += 1
        new = rows[key]
        change = {
            "metric": key[0],
            "scope": key[1],
            "day": key[2].isoformat(),
            "old": str(old[key][0]),
            "new": str(new["value"]),
            "old_source": old[key][1],
            "source": new["source"],
        }
        if len(result.changes) < keep_changes:
            result.changes.append(change)
        audit.append(
            {
                "at": now,
                "actor": actor,
                "action": "metric.replace",
                "subject": f"{key[0]}@{key[1]}:{key[2].isoformat()}",
                "detail": change,
            }
        )
    result.unchanged += len(rows) - len(written)
    if not audit:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            _PG_AUDIT,
            {
                "at": now,
                "actor": actor,
                "action": "metric.replace",
                "rows": json.dumps(
                    [{"subject": a["subject"], "detail": a["detail"]} for a in audit], ensure_ascii=False
                ),
            },
        )
    else:
        session.execute(insert(AuditLog), audit)


def latest_sample(
    session: Session, metric: str, scope: str, at_or_before: date
) -> tuple[date, Decimal] | None:
    """The newest (day, value) of ``metric`` for ``scope`` on or before ``at_or_before``."""
    row = session.execute(
        select(MetricSample.day, MetricSample.value)
        .where(
            MetricSample.metric == metric,
            MetricSample.scope == scope,
            MetricSample.day <= at_or_before,
        )
        .order_by(MetricSample.day.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def latest_value(session: Session, metric: str, scope: str, at_or_before: date) -> Decimal | None:
    """The newest value of ``metric`` for ``scope`` on or before the day (a plan item's baseline)."""
    found = latest_sample(session, metric, scope, at_or_before)
    return found[1] if found else None


def values_between(
    session: Session, metric: str, scope: str, start: date, end: date
) -> list[tuple[date, Decimal]]:
    """Every (day, value) of a metric for a scope in [start, end], oldest first."""
    rows = session.execute(
        select(MetricSample.day, MetricSample.value)
        .where(
            MetricSample.metric == metric,
            MetricSample.scope == scope,
            MetricSample.day >= start,
            MetricSample.day <= end,
        )
        .order_by(MetricSample.day)
    )
    return [(d, v) for d, v in rows]


# ---------------------------------------------------------------- source runs


def start_run(session: Session, source_id: str, now: datetime) -> SourceRun:
    run = SourceRun(
        source_id=source_id,
        started_at=now,
        finished_at=None,
        rows_read=0,
        rows_loaded=0,
        rows_refused=0,
        error="",
        detail={},
    )
    session.add(run)
    session.flush()
    return run


def finish_run(
    run: SourceRun,
    now: datetime,
    *,
    rows_read: int = 0,
    rows_loaded: int = 0,
    rows_refused: int = 0,
    error: str = "",
    detail: dict[str, Any] | None = None,
) -> SourceRun:
    run.finished_at = now
    run.rows_read = rows_read
    run.rows_loaded = rows_loaded
    run.rows_refused = rows_refused
    run.error = error
    run.detail = detail or {}
    return run


def recent_runs(session: Session, source_id: str | None = None, limit: int = 20) -> Sequence[SourceRun]:
    """The newest runs first (what the admin looks at)."""
    q = select(SourceRun).order_by(SourceRun.started_at.desc(), SourceRun.id.desc()).limit(limit)
    if source_id:
        q = q.where(SourceRun.source_id == source_id)
    return session.scalars(q).all()
