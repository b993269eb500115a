"""After-sales cases: upsert on (shop, case id), and the daily metrics recomputed from what is stored.

Storing a case again (a re-import, the next poll) updates it; every day whose numbers it touches —
the day it was opened and the day it was finished, before and after the update — is recomputed
from all stored cases, so two sources never overwrite each other's numbers and a case finished
late changes the rate of the day it was opened. When the ``[aftersales]`` rules change, every
stored case gets its cause again and every day is recomputed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from sources.base import MetricSample as Sample
from sources.cases import (
    CASE_METRICS,
    CASES_SOURCE,
    Case,
    StoredCase,
    daily_case_metrics,
)
from sources.causes import CAUSES, OTHER, AftersalesOptions, CauseMap
from storage.metrics import UpsertResult, upsert_samples
from storage.models import AftersaleCase, MetricSample, Setting

BATCH = 2000
MAPPING_KEY = "aftersales.mapping"


@dataclass
class CaseStoreResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    days: set[date] = field(default_factory=set)
    samples: UpsertResult = field(default_factory=UpsertResult)
    remapped: int = 0


def _day(at: datetime | None, tz: ZoneInfo) -> date | None:
    return at.astimezone(tz).date() if at is not None else None


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def upsert_cases(
    session: Session, cases: Iterable[Case], cause_map: CauseMap, tz: ZoneInfo, now: datetime
) -> CaseStoreResult:
    """Insert new cases, update changed ones; return the days (team zone) whose numbers may change."""
    result = CaseStoreResult()
    table = AftersaleCase.__table__
    causes: dict[str, str] = {}  # reason → cause, looked up once per distinct reason
    latest: dict[tuple[str, str], Case] = {}
    for c in cases:
        latest[(c.shop, c.case_id)] = c  # within one batch of input the last word wins
    for batch in _batches(list(latest.values()), BATCH):
        keys = [(c.shop, c.case_id) for c in batch]
        old = {
            (shop, cid): (opened, closed, status, reason, cause)
            for shop, cid, opened, closed, status, reason, cause in session.execute(
                select(
                    table.c.shop,
                    table.c.case_id,
                    table.c.opened,
                    table.c.closed,
                    table.c.status,
                    table.c.reason,
                    table.c.cause,
                ).where(tuple_(table.c.shop, table.c.case_id).in_(keys))
            )
        }
        rows = []
        for c in batch:
            cause = causes.get(c.reason)
            if cause is None:
                cause = causes[c.reason] = cause_map.cause_of(c.reason)
            row = {
                "shop": c.shop,
                "case_id": c.case_id,
                "source": c.source,
                "opened": c.opened,
                "closed": c.closed,
                "status": c.status[:100],
                "reason": c.reason[:300],
                "cause": cause,
                "updated_at": now,
            }
            before = old.get((c.shop, c.case_id))
            if before == (c.opened, c.closed, row["status"], row["reason"], cause):
                result.unchanged += 1
                continue
            if before is None:
                result.inserted += 1
            else:
                result.updated += 1
                result.days.update(d for d in (_day(before[0], tz), _day(before[1], tz)) if d)
            result.days.update(d for d in (_day(c.opened, tz), _day(c.closed, tz)) if d)
            rows.append(row)
        if rows:
            stmt = _insert(session)(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.shop, table.c.case_id],
                set_={k: stmt.excluded[k] for k in rows[0] if k not in ("shop", "case_id")},
            )
            session.execute(stmt, rows)
    return result


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Sorted days as [first, last] runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if runs and d - runs[-1][1] == timedelta(days=1):
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def stored_cases_touching(session: Session, first: date, last: date, tz: ZoneInfo) -> list[StoredCase]:
    """Every stored case opened or finished on a day in [first, last] (team zone)."""
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    t = AftersaleCase
    rows = session.execute(
        select(t.shop, t.opened, t.closed, t.cause).where(
            or_(
                and_(t.opened >= start, t.opened < end),
                and_(t.closed.is_not(None), t.closed >= start, t.closed < end),
            )
        )
    )
    return [StoredCase(shop, opened, closed, cause) for shop, opened, closed, cause in rows]


def recompute_days(
    session: Session, days: Iterable[date], options: AftersalesOptions, tz: ZoneInfo, now: datetime
) -> UpsertResult:
    """Write the case metrics of ``days`` from the stored cases; drop values no case supports now."""
    total = UpsertResult()
    for first, last in _runs(days):
        cases = stored_cases_touching(session, first, last, tz)
        run_days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        values = daily_case_metrics(cases, run_days, tz, options.resolution_hours)
        ms = MetricSample
        stale = [
            (m, s, d)
            for m, s, d in session.execute(
                select(ms.metric, ms.scope, ms.day).where(
                    ms.metric.in_(CASE_METRICS), ms.day >= first, ms.day <= last, ms.source == CASES_SOURCE
                )
            )
            if (m, s, d) not in values
        ]
        for batch in _batches(stale, BATCH):
            session.execute(delete(ms).where(tuple_(ms.metric, ms.scope, ms.day).in_(batch)))
        samples = [Sample(m, s, d, v, CASES_SOURCE, now) for (m, s, d), v in values.items()]
        got = upsert_samples(session, samples, now=now, actor="aftersales")
        total.inserted += got.inserted
        total.updated += got.updated
        total.unchanged += got.unchanged
        total.changes.extend(got.changes[: max(0, 20 - len(total.changes))])
    return total


def remap_if_rules_changed(
    session: Session, options: AftersalesOptions, tz: ZoneInfo, now: datetime
) -> tuple[int, set[date]]:
    """When ``[aftersales]`` changed since the last store, give every case its cause again; return
    how many changed and every day that must be recomputed (all days with cases)."""
    fingerprint = options.fingerprint()
    setting = session.get(Setting, MAPPING_KEY)
    if setting is not None and setting.value.get("fingerprint") == fingerprint:
        return 0, set()
    cause_map = options.cause_map
    t = AftersaleCase
    changed = 0
    # few distinct reasons, many cases: one UPDATE per reason whose cause changes
    for reason, cause, count in session.execute(
        select(t.reason, t.cause, func.count()).group_by(t.reason, t.cause)
    ):
        new = cause_map.cause_of(reason)
        if new != cause:
            session.execute(update(t).where(t.reason == reason, t.cause == cause).values(cause=new))
            changed += int(count)
    first, last = session.execute(
        select(func.min(t.opened), func.max(func.coalesce(t.closed, t.opened)))
    ).one()
    days: set[date] = set()
    if first is not None and last is not None:
        day, end_day = _day(first, tz), _day(last, tz)
        assert day is not None and end_day is not None
        while day <= end_day:
            days.add(day)
            day += timedelta(days=1)
    value = {"fingerprint": fingerprint, "resolution_hours": options.resolution_hours}
    if setting is None:
        session.add(Setting(key=MAPPING_KEY, value=value, updated_at=now))
    else:
        setting.value = value
        setting.updated_at = now
    return changed, days


def store_cases(
    session: Session, cases: Iterable[Case], options: AftersalesOptions, tz: ZoneInfo, now: datetime
) -> CaseStoreResult:
    """Store cases and recompute the days they touch (all days if the rules changed). Never commits."""
    remapped, all_days = remap_if_rules_changed(session, options, tz, now)
    result = upsert_cases(session, cases, options.cause_map, tz, now)
    result.remapped = remapped
    result.days |= all_days
    if result.days:
        result.samples = recompute_days(session, result.days, options, tz, now)
    return result


# ---------------------------------------------------------------- what cards show


@dataclass(frozen=True)
class CaseWeek:
    """Cases opened in a span, by cause; cases open at its end; the oldest of those."""

    by_cause: dict[str, int]
    open_count: int
    oldest_open: tuple[str, str, datetime] | None  # (shop, case id, opened)

    @property
    def total(self) -> int:
        return sum(self.by_cause.values())


def case_week(
    session: Session,
    first: date,
    last: date,
    tz: ZoneInfo,
    at: datetime,
    shops: Iterable[str] | None = None,
) -> CaseWeek:
    """Cases opened on days [first, last] by cause, and the cases still open at ``at``."""
    start = datetime.combine(first, time(0), tz)
    end = min(datetime.combine(last + timedelta(days=1), time(0), tz), at)
    t = AftersaleCase
    shop_filter = [t.shop.in_(list(shops))] if shops is not None else []
    counts = dict(
        session.execute(
            select(t.cause, func.count())
            .where(t.opened >= start, t.opened < end, *shop_filter)
            .group_by(t.cause)
        ).all()
    )
    by_cause = {c: int(counts.get(c, 0)) for c in CAUSES}
    still_open = and_(t.opened < at, or_(t.closed.is_(None), t.closed > at), *shop_filter)
    open_count = int(session.scalar(select(func.count()).select_from(t).where(still_open)) or 0)
    oldest = session.execute(
        select(t.shop, t.case_id, t.opened).where(still_open).order_by(t.opened, t.case_id).limit(1)
    ).first()
    return CaseWeek(by_cause, open_count, (oldest[0], oldest[1], oldest[2]) if oldest else None)


def unmapped_reasons(session: Session, cause_map: CauseMap, limit: int = 20) -> list[tuple[str, int]]:
    """Reasons no rule maps (counted under 其他), most frequent first: what the admin should map."""
    t = AftersaleCase
    rows = session.execute(
        select(t.reason, func.count())
        .where(t.cause == OTHER)
        .group_by(t.reason)
        .order_by(func.count().desc())
    )
    found: Counter[str] = Counter()
    for reason, count in rows:
        if cause_map.lookup(reason) is None:
            found[reason or "（未填写原因）"] += int(count)
    return found.most_common(limit)
