"""Leave with a first and a last day (issue 16): which days of a week a person was on leave.

A week counts only leave that overlapped it: recording a leave today never changes an earlier
week. ``Person.on_leave_until`` (the older form: "on leave until") is read as a leave from the
day it was recorded, which the chat button sets; only ``leaves`` rows carry a real start.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.workdays import week_dates
from storage.models import Leave


def leave_days(session: Session, person_id: str, week: str) -> list[date]:
    """The days of ``week`` that a recorded leave of ``person_id`` covers."""
    days = week_dates(week)
    rows = session.scalars(
        select(Leave).where(Leave.person_id == person_id, Leave.start <= days[-1], Leave.until >= days[0])
    )
    covered: set[date] = set()
    for row in rows:
        covered.update(d for d in days if row.start <= d <= row.until)
    return sorted(covered)
