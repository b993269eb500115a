"""The Chinese workday calendar and ISO weeks: holidays, 调休 make-up days, team overrides.

Pure: the only outside facts are the ``chinesecalendar`` package's tables and the
``overrides`` a caller passes in (``[[calendar]]`` entries of the team file, loaded by
``storage.calendar.load_overrides`` or ``Calendar.load``). Beyond the years the package
knows (it is updated each November when the State Council publishes the next year's
schedule), a day is a workday when it is Monday to Friday, unless an override says
otherwise; that fallback is logged once per year so an admin knows to upgrade the
package or add overrides.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import chinese_calendar

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Overrides = Mapping[date, bool]

WORK_START = time(9, 0)
WORK_END = time(18, 0)

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$", re.IGNORECASE)
_warned_years: set[int] = set()


def builtin_workday(day: date) -> bool:
    """The State Council schedule as the chinesecalendar package knows it; Mon–Fri beyond it."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning(
                "chinesecalendar has no holiday data for %s: treating Monday–Friday as workdays "
                "plus the [[calendar]] overrides; upgrade chinesecalendar or add overrides",
                day.year,
            )
        return day.weekday() < 5


def is_workday(day: date, overrides: Overrides | None = None) -> bool:
    """True when people work on ``day``: an override first, then the official calendar."""
    if overrides and day in overrides:
        return bool(overrides[day])
    return builtin_workday(day)


def is_working_time(moment: datetime, tz: ZoneInfo, overrides: Overrides | None = None) -> bool:
    """Inside 09:00–18:00 local time on a workday (when nudging a person is acceptable)."""
    local = moment.astimezone(tz)
    return is_workday(local.date(), overrides) and WORK_START <= local.time() < WORK_END


def iso_week(day: date) -> str:
    """2026-11-23 -> "2026-W48" (ISO year, so 2027-01-01 is "2026-W53")."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


def week_of(moment: datetime, tz: ZoneInfo) -> str:
    """The ISO week of ``moment`` as seen in ``tz`` (a Sunday 23:30 in Shanghai is still that week)."""
    if moment.tzinfo is None:
        raise ValueError("week_of needs an aware datetime")
    return iso_week(moment.astimezone(tz).date())


def parse_week(week: str) -> tuple[int, int]:
    """ "2026-W48" -> (2026, 48); ValueError for anything else, including W53 in a 52-week year."""
    m = _WEEK.match(week.strip())
    if not m:
        raise ValueError(f"not an ISO week: {week!r} (expected e.g. 2026-W48)")
    year, number = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, number, 1)
    except ValueError:
        raise ValueError(f"not an ISO week: {week!r} ({year} has no week {number})") from None
    return year, number


def week_dates(week: str) -> list[date]:
    """Monday to Sunday of ``week``."""
    year, number = parse_week(week)
    monday = date.fromisocalendar(year, number, 1)
    return [monday + timedelta(days=i) for i in range(7)]


def shift_week(week: str, weeks: int) -> str:
    """The week ``weeks`` after (or before, if negative) ``week``."""
    return iso_week(week_dates(week)[0] + timedelta(weeks=weeks))


def workdays_in_week(week: str, overrides: Overrides | None = None) -> list[date]:
    """The week's workdays in order; a 调休 Saturday counts, a holiday Monday does not."""
    return [d for d in week_dates(week) if is_workday(d, overrides)]


def first_workday(week: str, overrides: Overrides | None = None) -> date | None:
    days = workdays_in_week(week, overrides)
    return days[0] if days else None


def last_workday(week: str, overrides: Overrides | None = None) -> date | None:
    days = workdays_in_week(week, overrides)
    return days[-1] if days else None


def workdays_elapsed(week: str, now: datetime, tz: ZoneInfo, overrides: Overrides | None = None) -> int:
    """Workdays of ``week`` already over at ``now`` (days before today, in ``tz``).

    Daily reports describe yesterday, so on a Wednesday two workdays (Mon, Tue) are
    behind us; after the week every workday is; before it none is.
    """
    today = now.astimezone(tz).date()
    return sum(1 for d in workdays_in_week(week, overrides) if d < today)


@dataclass(frozen=True)
class Calendar:
    """The same rules bound to one set of overrides (what handlers load once per request)."""

    overrides: Mapping[date, bool] = field(default_factory=dict)

    @staticmethod
    def load(session: Session) -> Calendar:
        from storage.calendar import load_overrides

        return Calendar(load_overrides(session))

    def is_workday(self, day: date) -> bool:
        return is_workday(day, self.overrides)

    def workdays_in_week(self, week: str) -> list[date]:
        return workdays_in_week(week, self.overrides)

    def first_workday(self, week: str) -> date | None:
        return first_workday(week, self.overrides)

    def last_workday(self, week: str) -> date | None:
        return last_workday(week, self.overrides)

    def workdays_elapsed(self, week: str, now: datetime, tz: ZoneInfo) -> int:
        return workdays_elapsed(week, now, tz, self.overrides)
