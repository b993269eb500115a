"""Plan reminders: the scheduled "plan not submitted" nudges and the leader's list of who has not planned.

On the team's plan day (the first workday of the ISO week by the workday calendar, so a
holiday week moves it) each member without a plan gets one direct reminder from
``Team.plan_day_time`` (default 10:00); from ``Team.plan_deadline_time`` (default 14:00) the
leader gets one card listing who has not planned. Skipped: the leader (appraising, not
appraised), people not hired yet, people on leave (``Person.on_leave_until``), people who
paused reminders (still listed to the leader, marked so), and teams the leader paused
(``Team.reminders_paused_until``). Nothing is sent from 21:00 team time, and nothing twice:
every message has an outbox dedupe key (an admin's explicit re-run adds its own suffix).

The chat side (请假, 销假, 暂停提醒 …, the leader's 再提醒一次 and per-person leave buttons) is
handlers/reminder_commands.py.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from cards.builders import MissingPlan, plan_missing_card, plan_reminder_card
from cards.i18n import Texts, texts
from handlers.events_out import emit
from handlers.leave import on_leave_day
from handlers.progress import INACTIVE_PLAN_STATUSES
from handlers.router import LinkMaker
from handlers.workdays import Calendar, shift_week, week_dates, week_of
from storage import outbox
from storage.models import OutboxMessage, Person, Plan, Team
from storage.people import leader_of, person_target

log = logging.getLogger(__name__)

QUIET_FROM = time(21, 0)  # no reminder or list is sent from this time of the evening (team time)
REMIND = "remind"
DEADLINE = "deadline"


def zone(team: Team) -> ZoneInfo:
    return ZoneInfo(team.timezone or "Asia/Shanghai")


def _hhmm(text: str | None, default: time) -> time:
    try:
        hour, minute = (int(x) for x in (text or "").split(":"))
        return time(hour, minute)
    except ValueError:
        log.warning("team time %r is not HH:MM; using %s", text, default.strftime("%H:%M"))
        return default


def days_label(week: str) -> str:
    """ "11-23–11-29": the week's Monday to Sunday."""
    days = week_dates(week)
    return f"{days[0]:%m-%d}–{days[-1]:%m-%d}"


def moment(value: datetime, tz: ZoneInfo) -> str:
    """How cards show a time: "11-23 14:00" in the team's zone."""
    return value.astimezone(tz).strftime("%m-%d %H:%M")


@dataclass(frozen=True)
class PlanDay:
    """The week's plan day for one team and its two moments, aware, in the team's zone."""

    week: str
    day: date
    start: datetime  # reminders from here
    deadline: datetime  # the leader's list from here; re-submission closes here (handlers.plans)


def plan_day(team: Team, week: str, calendar: Calendar) -> PlanDay | None:
    """None for a week without a workday (nobody plans a week off)."""
    day = calendar.first_workday(week)
    if day is None:
        return None
    tz = zone(team)
    start = datetime.combine(day, _hhmm(team.plan_day_time, time(10, 0)), tzinfo=tz)
    deadline = datetime.combine(day, _hhmm(team.plan_deadline_time, time(14, 0)), tzinfo=tz)
    return PlanDay(week, day, start, deadline)


def next_plan_time(team: Team, at: datetime, calendar: Calendar) -> datetime | None:
    """When ``team``'s plan reminders are next due after ``at`` (this week's plan day, else the next)."""
    week = week_of(at, zone(team))
    for _ in range(LOOK_AHEAD_WEEKS):
        pd = plan_day(team, week, calendar)
        if pd is not None and pd.start > at:
            return pd.start
        week = shift_week(week, 1)
    return None


LOOK_AHEAD_WEEKS = 8


def team_paused(team: Team, today: date) -> bool:
    return team.reminders_paused_until is not None and today <= team.reminders_paused_until


def on_leave(person: Person, day: date) -> bool:
    session = object_session(person)
    if session is None:
        return person.on_leave_until is not None and person.on_leave_until >= day
    return on_leave_day(session, person, day)  # leave with a start (issue 16)


def phase(team: Team, at: datetime, calendar: Calendar) -> tuple[PlanDay, str] | str:
    """What is due for ``team`` at ``at``: (plan day, "remind" | "deadline"), or why nothing is."""
    tz = zone(team)
    local = at.astimezone(tz)
    pd = plan_day(team, week_of(at, tz), calendar)
    if pd is None:
        return "no workday this week"
    if local.date() != pd.day:
        return f"not the plan day ({pd.day:%m-%d})"
    if team_paused(team, pd.day):
        return f"paused until {team.reminders_paused_until}"
    if local < pd.start:
        return f"before {pd.start:%H:%M}"
    if local.time() >= QUIET_FROM:
        return f"after {QUIET_FROM:%H:%M}"
    if pd.deadline <= pd.start or local < pd.deadline:
        return pd, REMIND
    return pd, DEADLINE


def expected_planners(session: Session, team: Team, day: date) -> list[Person]:
    """Active members who plan for ``day``'s week: not the leader, already hired (leave not considered)."""
    people = session.scalars(
        select(Person).where(Person.team_id == team.id, Person.active.is_(True)).order_by(Person.id)
    )
    return [p for p in people if p.id != team.leader_id and (p.hire_date is None or p.hire_date <= day)]


def planned_ids(session: Session, week: str, person_ids: Iterable[str]) -> set[str]:
    """Who of ``person_ids`` has a current, live plan for ``week``."""
    ids = list(person_ids)
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Plan.person_id).where(
                Plan.week == week,
                Plan.current.is_(True),
                Plan.status.not_in(INACTIVE_PLAN_STATUSES),
                Plan.person_id.in_(ids),
            )
        )
    )


def _existing(session: Session, keys: Collection[str]) -> set[str]:
    if not keys:
        return set()
    return set(session.scalars(select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys))))


def reminder_key(person_id: str, week: str) -> str:
    return f"remind:plan:{person_id}:{week}"


def missing_key(team_id: str, week: str) -> str:
    return f"remind:missing:{team_id}:{week}"


def nudge_key(person_id: str, week: str) -> str:
    return f"remind:nudge:{person_id}:{week}"


@dataclass
class ReminderRun:
    """What one pass did: reminders to members, lists to leaders, and teams passed over (why)."""

    due: int = 0  # teams with something due
    reminded: int = 0
    leaders: int = 0
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def enqueued(self) -> int:
        return self.reminded + self.leaders


def run_plan_reminders(
    session: Session,
    at: datetime,
    *,
    bots: Collection[str],
    links: LinkMaker,
    locale: str = "zh-CN",
    dedupe_suffix: str = "",
) -> ReminderRun:
    """Enqueue the reminders and leader lists due at ``at`` for every active team (caller's transaction)."""
    run = ReminderRun()
    calendar = Calendar.load(session)
    tr = texts(locale)
    for team in session.scalars(select(Team).where(Team.active.is_(True)).order_by(Team.id)):
        due = phase(team, at, calendar)
        if isinstance(due, str):
            upcoming = next_plan_time(team, at, calendar)
            run.skipped[team.id] = due + (f"; next due {upcoming:%Y-%m-%d %H:%M}" if upcoming else "")
            continue
        pd, what = due
        run.due += 1
        if what == REMIND:
            run.reminded += _remind_members(session, team, pd, at, tr, bots, links, dedupe_suffix)
        else:
            run.leaders += _tell_leader(session, team, pd, at, tr, bots, dedupe_suffix)
    return run


def remindable(session: Session, team: Team, pd: PlanDay) -> list[Person]:
    """Members without a plan whom a reminder may reach: not on leave, not paused."""
    members = expected_planners(session, team, pd.day)
    planned = planned_ids(session, pd.week, (m.id for m in members))
    return [m for m in members if m.id not in planned and not on_leave(m, pd.day) and not m.reminders_paused]


def _remind_members(
    session: Session,
    team: Team,
    pd: PlanDay,
    at: datetime,
    tr: Texts,
    bots: Collection[str],
    links: LinkMaker,
    suffix: str,
) -> int:
    todo = remindable(session, team, pd)
    keys = {m.id: reminder_key(m.id, pd.week) + suffix for m in todo}
    done = _existing(session, keys.values())
    sent = 0
    for person in todo:
        if keys[person.id] in done:
            continue
        target = person_target(session, person, bots)
        if target is None:
            log.warning("plan reminder: %s has no chat identity on a configured bot", person.id)
            continue
        card = plan_reminder_card(
            tr,
            week=pd.week,
            days=days_label(pd.week),
            person_name=person.name,
            deadline=moment(pd.deadline, zone(team)),
            link=links(person.id, "plan-form", pd.week),
        )
        sent += outbox.enqueue(session, target, card, dedupe_key=keys[person.id], now=at) is not None
    return sent


def missing_people(session: Session, team: Team, pd: PlanDay) -> tuple[list[Person], list[Person]]:
    """(members without a plan, members on leave) on the plan day."""
    members = expected_planners(session, team, pd.day)
    planned = planned_ids(session, pd.week, (m.id for m in members))
    away = [m for m in members if on_leave(m, pd.day)]
    missing = [m for m in members if m.id not in planned and not on_leave(m, pd.day)]
    return missing, away


def _tell_leader(
    session: Session, team: Team, pd: PlanDay, at: datetime, tr: Texts, bots: Collection[str], suffix: str
) -> int:
    key = missing_key(team.id, pd.week) + suffix
    if _existing(session, [key]):
        return 0
    missing, away = missing_people(session, team, pd)
    if not missing:
        return 0
    for person in missing:
        late = {"employee": person.id, "team": team.id, "week": pd.week, "deadline": pd.deadline.isoformat()}
        emit(
            session,
            "plan.late",
            late,
            resource=f"plan:{person.id}/{pd.week}",
            now=at,
            key=f"late:{person.id}:{pd.week}",
        )
    leader = leader_of(session, team)
    target = person_target(session, leader, bots) if leader is not None else None
    if target is None:
        log.warning(
            "plan reminders: team %s has no reachable leader; list of missing plans not sent", team.id
        )
        return 0
    reminded = _existing(
        session,
        [reminder_key(m.id, pd.week) for m in missing]
        + [reminder_key(m.id, pd.week) + suffix for m in missing],
    )

    def state(person: Person) -> str:
        if person.reminders_paused:
            return "paused"
        sent = {reminder_key(person.id, pd.week), reminder_key(person.id, pd.week) + suffix} & reminded
        return "reminded" if sent else "unreminded"

    card = plan_missing_card(
        tr,
        team_id=team.id,
        team_name=team.name,
        week=pd.week,
        days=days_label(pd.week),
        deadline=moment(pd.deadline, zone(team)),
        missing=[MissingPlan(m.id, m.name, state(m)) for m in missing],
        on_leave=[m.name for m in away],
        leave_until=week_dates(pd.week)[-1].isoformat(),
    )
    return outbox.enqueue(session, target, card, dedupe_key=key, now=at) is not None
