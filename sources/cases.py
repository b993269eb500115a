"""After-sales cases as the connectors hand them over, and the daily metrics computed from them.

Metrics, per day in the team's time zone, each for the scopes ``<cause>`` (all shops), ``shop``
(all causes, all shops) and ``<shop>:<cause>`` (one shop):

- ``complaints``: cases opened that day;
- ``complaint_resolution_rate`` (%): of the cases opened that day, those finished within the
  resolution hours × 100 (a case still open counts as not resolved until it closes);
- ``complaint_handling_hours``: mean hours from opened to finished over the cases finished that day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from sources.causes import CAUSES

COMPLAINTS = "complaints"
RESOLUTION_RATE = "complaint_resolution_rate"
HANDLING_HOURS = "complaint_handling_hours"
CASE_METRICS = (COMPLAINTS, RESOLUTION_RATE, HANDLING_HOURS)
ALL_CAUSES_SCOPE = "shop"
CASES_SOURCE = "aftersales"  # the source name on samples computed from stored cases
CENT = Decimal("0.01")
# Older team files name the logistics KPI's metric this way; it is the rate with scope 物流.
METRIC_ALIASES = {"logistics_issue_resolution_rate": (RESOLUTION_RATE, "物流")}


def metric_alias(metric: object, scope: object) -> tuple[object, object]:
    """A KPI's (metric, scope) with an old metric name read as what it now is."""
    if isinstance(metric, str) and metric in METRIC_ALIASES:
        new_metric, default_scope = METRIC_ALIASES[metric]
        return new_metric, scope or default_scope
    return metric, scope


@dataclass(frozen=True)
class Case:
    """One after-sales case: ``opened``/``closed`` are aware datetimes; ``closed`` None while open."""

    shop: str
    case_id: str
    opened: datetime
    closed: datetime | None
    status: str
    reason: str
    source: str


@dataclass(frozen=True)
class StoredCase:
    """A case as stored, with its cause (what the metrics need)."""

    shop: str
    opened: datetime
    closed: datetime | None
    cause: str


def shop_scope(shop: str, cause: str) -> str:
    return f"{shop}:{cause}"


def _scopes(case: StoredCase) -> tuple[str, ...]:
    return (case.cause, ALL_CAUSES_SCOPE, shop_scope(case.shop, case.cause))


def daily_case_metrics(
    cases: Iterable[StoredCase], days: Iterable[date], tz: ZoneInfo, resolution_hours: int
) -> dict[tuple[str, str, date], Decimal]:
    """The metrics of ``days`` from ``cases`` (which must include every case opened or closed on
    them). ``complaints`` is written as 0 for the five causes and ``shop`` on each day; rates and
    hours only where there is a case to compute them from."""
    wanted = set(days)
    within = timedelta(hours=resolution_hours)
    opened: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])  # [opened, resolved in time]
    handled: dict[tuple[str, date], list[Decimal]] = defaultdict(list)
    for case in cases:
        day_opened = case.opened.astimezone(tz).date()
        if day_opened in wanted:
            resolved = case.closed is not None and case.closed - case.opened <= within
            for scope in _scopes(case):
                counts = opened[(scope, day_opened)]
                counts[0] += 1
                counts[1] += int(resolved)
        if case.closed is not None:
            day_closed = case.closed.astimezone(tz).date()
            if day_closed in wanted:
                hours = Decimal((case.closed - case.opened).total_seconds()) / 3600
                for scope in _scopes(case):
                    handled[(scope, day_closed)].append(hours)
    out: dict[tuple[str, str, date], Decimal] = {}
    for day in wanted:
        for scope in (*CAUSES, ALL_CAUSES_SCOPE):
            out[(COMPLAINTS, scope, day)] = Decimal(0)
    for (scope, day), (count, in_time) in opened.items():
        out[(COMPLAINTS, scope, day)] = Decimal(count)
        out[(RESOLUTION_RATE, scope, day)] = (Decimal(in_time) * 100 / count).quantize(CENT, ROUND_HALF_UP)
    for (scope, day), spans in handled.items():
        out[(HANDLING_HOURS, scope, day)] = (sum(spans, Decimal(0)) / len(spans)).quantize(
            CENT, ROUND_HALF_UP
        )
    return out
