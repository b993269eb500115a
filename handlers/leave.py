"""Leave with a first and a last day (issue 16): which days of a week a person was on leave.

A week counts only leave that overlapped it: recording a leave today never changes an earlier
week. Every leave recorded from issue 16 on is a ``leaves`` row (first and last day, who, when);
``Person.on_leave_until`` still says "on leave now, until" for the reminders. A person with no
``leaves`` row (a leave recorded before) is read the old way, from ``on_leave_until``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.workdays import week_dates
from storage.models import Leave, Person


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


def has_leaves(session: Session, person_id: str) -> bool:
    return session.scalar(select(Leave.id).where(Leave.person_id == person_id).limit(1)) is not None


def on_leave_day(session: Session, person: Person, day: date) -> bool:
    """Is ``person`` on leave on ``day``? (Leave rows; the old ``on_leave_until`` without them.)"""
    if has_leaves(session, person.id):
        return (
            session.scalar(
                select(Leave.id)
                .where(Leave.person_id == person.id, Leave.start <= day, Leave.until >= day)
                .limit(1)
            )
            is not None
        )
    return person.on_leave_until is not None and person.on_leave_until >= day


def away_whole_week(session: Session, person: Person, week: str) -> bool:
    """On leave every day of ``week`` (Monday to Sunday), counting only leave that overlapped it."""
    if has_leaves(session, person.id):
        return len(leave_days(session, person.id, week)) == 7
    return person.on_leave_until is not None and person.on_leave_until >= week_dates(week)[-1]


def record_leave(
    session: Session, person: Person, start: date, until: date, *, by: str, now: datetime, today: date
) -> Leave:
    """A leave from ``start`` to ``until`` (inclusive); ``on_leave_until`` follows a leave that has begun."""
    row = Leave(person_id=person.id, start=start, until=until, by=by, at=now)
    session.add(row)
    if start <= today:
        person.on_leave_until = until
    session.flush()
    return row


def end_leave(session: Session, person: Person, today: date) -> None:
    """销假: a leave running today ends yesterday (one that began today is dropped)."""
    for row in session.scalars(
        select(Leave).where(Leave.person_id == person.id, Leave.start <= today, Leave.until >= today)
    ):
        if row.start < today:
            row.until = today - timedelta(days=1)
        else:
            session.delete(row)
    person.on_leave_until = None
