"""Workday-calendar overrides from the team file (``[[calendar]]``), as a plain dict for handlers.workdays."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import CalendarDay


def load_overrides(session: Session) -> dict[date, bool]:
    """Every override: a 调休 make-up day maps to True, an extra day off to False."""
    return {
        day: bool(workday) for day, workday in session.execute(select(CalendarDay.day, CalendarDay.workday))
    }
