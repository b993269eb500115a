"""The Chinese workday calendar (holidays and 调休 make-up days) and ISO-week arithmetic.

Built on the ``chinesecalendar`` package, overridden by the team file's ``[[calendar]]``
entries. For a year the package does not know yet (it is updated each November when the
State Council publishes the next year's schedule) it falls back to Monday–Friday plus the
overrides, and logs that once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
_warned_years: set[int] = set()


def iso_week(day: date) -> str:
    """2026-11-23 -> "2026-W48"."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(week: str) -> tuple[int, int]:
    """ "2026-W48" -> (2026, 48); ValueError with a readable message otherwise."""
    try:
        year_text, week_text = week.upper().split("-W")
        year, number = int(year_text), int(week_text)
        date.fromisocalendar(year, number, 1)
    except ValueError:
        raise ValueError(f"not an ISO week: {week!r} (expected e.g. 2026-W48)") from None
    return year, number


def week_dates(week: str) -> list[date]:
    year, number = parse_week(week)
    monday = date.fromisocalendar(year, number, 1)
    return [monday + timedelta(days=i) for i in range(7)]


def week_of(moment: datetime, tz: ZoneInfo) -> str:
    return iso_week(moment.astimezone(tz).date())


def builtin_workday(day: date) -> bool:
    """The State Council schedule as the chinesecalendar package knows it; Mon–Fri beyond it."""
    import chinese_calendar

    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning(
                "no official holiday data for %s: using Mon–Fri plus [[calendar]] overrides", day.year
            )
        return day.weekday() < 5


@dataclass(frozen=True)
class Calendar:
    """Workdays: the built-in Chinese calendar with the team file's overrides on top."""

    overrides: Mapping[date, bool] = field(default_factory=dict)

    @staticmethod
    def load(session: Session) -> Calendar:
        from storage.models import CalendarDay

        return Calendar({d.day: d.workday for d in session.scalars(select(CalendarDay))})

    def is_workday(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        return builtin_workday(day)

    def workdays_in_week(self, week: str) -> list[date]:
        return [d for d in week_dates(week) if self.is_workday(d)]

    def first_workday(self, week: str) -> date | None:
        days = self.workdays_in_week(week)
        return days[0] if days else None

    def last_workday(self, week: str) -> date | None:
        days = self.workdays_in_week(week)
        return days[-1] if days else None

    def workdays_elapsed(self, week: str, now: datetime, tz: ZoneInfo) -> int:
        """Workdays of ``week`` completed by ``now``: a workday counts once it has ended."""
        today = now.astimezone(tz).date()
        return sum(1 for d in self.workdays_in_week(week) if d < today)


def workdays_in_week(week: str, overrides: Mapping[date, bool] | None = None) -> list[date]:
    return Calendar(overrides or {}).workdays_in_week(week)


def first_workday(week: str, overrides: Mapping[date, bool] | None = None) -> date | None:
    return Calendar(overrides or {}).first_workday(week)


def last_workday(week: str, overrides: Mapping[date, bool] | None = None) -> date | None:
    return Calendar(overrides or {}).last_workday(week)


def workdays_elapsed(
    week: str, now: datetime, tz: ZoneInfo, overrides: Mapping[date, bool] | None = None
) -> int:
    return Calendar(overrides or {}).workdays_elapsed(week, now, tz)
