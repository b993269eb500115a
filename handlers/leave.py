"""Leave with a first and a last day (issue 16): which days of a week a person was on leave.

A week counts only leave that overlapped it: recording a leave today never changes an earlier
week. Every leave recorded from issue 16 on is a ``leaves`` row (first and last day, who, when);
``Person.on_leave_until`` still says "on leave now, until" for the reminders. A person with no
``leaves`` row (a leave recorded before) is read the old way, from ``on_leave_until``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
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


CHUNK = 1000  # ids per IN (...) list: well inside every database's parameter limit


@dataclass(frozen=True)
class WeekLeave:
    """The leave of many people in one week, read in two queries (a weekly run needs it for
    everyone it appraises); the same answers as ``leave_days`` and ``away_whole_week``."""

    week: str
    days: dict[str, list[date]]  # person → the days of the week a recorded leave covers
    recorded: frozenset[str]  # people with any ``leaves`` row (the others: ``on_leave_until``)

    @classmethod
    def load(cls, session: Session, week: str, people: Collection[str] | None = None) -> WeekLeave:
        days = week_dates(week)
        overlapping = select(Leave).where(Leave.start <= days[-1], Leave.until >= days[0])
        anyone = select(Leave.person_id).distinct()
        rows: list[Leave] = []
        recorded: set[str] = set()
        if people is None:
            rows = list(session.scalars(overlapping))
            recorded = set(session.scalars(anyone))
        else:
            ids = sorted(set(people))
            for n in range(0, len(ids), CHUNK):
                chunk = ids[n : n + CHUNK]
                rows.extend(session.scalars(overlapping.where(Leave.person_id.in_(chunk))))
                recorded.update(session.scalars(anyone.where(Leave.person_id.in_(chunk))))
        covered: dict[str, set[date]] = {}
        for row in rows:
            covered.setdefault(row.person_id, set()).update(d for d in days if row.start <= d <= row.until)
        return cls(week, {pid: sorted(ds) for pid, ds in covered.items()}, frozenset(recorded))

    def leave_days(self, person_id: str) -> list[date]:
        return self.days.get(person_id, [])

    def away_whole_week(self, person: Person) -> bool:
        if person.id in self.recorded:
            return len(self.leave_days(person.id)) == 7
        return person.on_leave_until is not None and person.on_leave_until >= week_dates(self.week)[-1]


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
