"""Days as people write them in chat and on the command line ("12-01", "12月1日", "2026-12-01").

Shared by template switches (``切换模板 … 至 12-01``), leave (``请假 至 12-05``) and the CLI's
``--until``; pure, the caller passes today in the team's zone.
"""

from __future__ import annotations

import re
from datetime import date


class DateError(ValueError):
    """A day that cannot be read; the message is shown to the person as is."""


_DATE_FORMS = (
    re.compile(r"^(?P<y>\d{4})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?$"),
    re.compile(r"^(?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?$"),
)


def parse_day(text: str, today: date) -> date:
    """ "2026-12-01", "12-01", "12/1", "12月1日" → a date; without a year, the next such day from today."""
    raw = text.strip()
    for pattern in _DATE_FORMS:
        m = pattern.match(raw)
        if not m:
            continue
        parts = m.groupdict()
        try:
            if parts.get("y"):
                return date(int(parts["y"]), int(parts["m"]), int(parts["d"]))
            day = date(today.year, int(parts["m"]), int(parts["d"]))
            return day if day >= today else date(today.year + 1, day.month, day.day)
        except ValueError:
            break
    raise DateError(f"日期“{text}”看不懂：请写 12-01 或 2026-12-01")
