"""Plan reminders ("plan not submitted" nudges), leave, and pausing reminders.

On the team's plan day (the first workday of the ISO week by the workday calendar, so a
holiday week moves it) each member without a plan gets one direct reminder from
``Team.plan_day_time`` (default 10:00); from ``Team.plan_deadline_time`` (default 14:00) the
leader gets one card listing who has not planned. Skipped: the leader (appraising, not
appraised), people not hired yet, people on leave (``Person.on_leave_until``), people who
paused reminders (still listed to the leader, marked so), and teams the leader paused
(``Team.reminders_paused_until``). Nothing is sent from 21:00 team time, and nothing twice:
every message has an outbox dedupe key (an admin's explicit re-run adds its own suffix).

Commands: 请假 [姓名] 至 12-01 · 销假 [姓名] · 暂停提醒 · 恢复提醒 · 暂停团队提醒 至 02-20 · 恢复团队提醒;
buttons on the leader's card: 再提醒一次 (``plan.remind``) and a per-person leave (``leave.mark``).
Every change of leave or pause is written to the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from cards.builders import MissingPlan, plan_missing_card, plan_reminder_card
from cards.i18n import Texts, texts
from cards.model import Card, Markdown
from handlers.dates import DateError, parse_day
from handlers.inbound import Inbound
from handlers.leave import end_leave, on_leave_day, record_leave
from handlers.progress import INACTIVE_PLAN_STATUSES
from handlers.router import Context, LinkMaker, PermissionDenied, router
from handlers.workdays import Calendar, shift_week, week_dates, week_of
from storage import outbox
from storage.models import AuditLog, OutboxMessage, Person, Plan, Team
from storage.people import leader_of, led_team_ids, member_named, person_target

log = logging.getLogger(__name__)

QUIET_FROM = time(21, 0)  # no reminder or list is sent from this time of the evening (team time)
MAX_LEAVE = timedelta(days=366)
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


def _remindable(session: Session, team: Team, pd: PlanDay) -> list[Person]:
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
    todo = _remindable(session, team, pd)
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


# ---------------------------------------------------------------- chat: replies


def _reply(tr: Texts, title_key: str, text: str, *, ok: bool = True) -> Card:
    return Card(
        title=tr(title_key),
        theme="green" if ok else "red",
        blocks=(Markdown(text),),
        toast=text if ok and len(text) <= 40 else "",
    )


def _me(ctx: Context) -> Person:
    if ctx.person is None:  # the router calls non-public handlers with a person only
        raise PermissionDenied("还不认识你")
    return ctx.person


def _today(ctx: Context, person: Person) -> date:
    return ctx.now.astimezone(zone(person.team)).date()


_CONNECTORS = ("至", "到")
_CONNECTOR_WORDS = {"至", "到", "until", "till", "to"}
_TEAM_WORDS = {"团队", "team"}


def _words(text: str) -> list[str]:
    """The words after the command, with 至 / 到 / until split off and dropped ("至12-01" too)."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    out: list[str] = []
    for word in first.split()[1:]:
        for c in _CONNECTORS:
            if word.startswith(c) and len(word) > len(c):
                out += [c, word[len(c) :]]
                break
        else:
            out.append(word)
    return [w for w in out if w.lower() not in _CONNECTOR_WORDS]


def _split_team(words: list[str]) -> tuple[list[str], str]:
    """ "… 团队 ops" → (the other words, "ops")."""
    for n, word in enumerate(words[:-1]):
        if word.lower() in _TEAM_WORDS:
            return words[:n] + words[n + 2 :], words[n + 1]
    return words, ""


def _audit(ctx: Context, action: str, subject: str, **detail: object) -> None:
    actor = ctx.person.id if ctx.person else "system"
    ctx.session.add(AuditLog(at=ctx.now, actor=actor, action=action, subject=subject, detail=dict(detail)))


def _member(ctx: Context, me: Person, word: str) -> Person:
    """A member of a team ``me`` leads, by id or name."""
    tr = texts(ctx.locale)
    led = led_team_ids(ctx.session, me.id)
    if not led:
        raise PermissionDenied(tr("leave.not_leader"))
    found = member_named(ctx.session, led, word)
    if found is None:
        raise _Refused(tr("leave.unknown", who=word))
    return found


class _Refused(Exception):
    """A request that cannot be done; the message is shown as is."""


def _day(tr: Texts, text: str, today: date) -> date:
    try:
        return parse_day(text, today)
    except DateError:
        raise _Refused(tr("bad_date", text=text)) from None


def set_leave(ctx: Context, person: Person, until: date, *, via: str, start: date | None = None) -> None:
    """Record ``person`` on leave from ``start`` (default today) through ``until`` (inclusive); audited
    as ``person.leave``."""
    before = person.on_leave_until
    today = _today(ctx, person)
    first = start or today
    record_leave(ctx.session, person, first, until, by=_me(ctx).id, now=ctx.now, today=today)
    _audit(
        ctx,
        "person.leave",
        person.id,
        start=first.isoformat(),
        until=until.isoformat(),
        before=before.isoformat() if before else None,
        via=via,
    )


@router.command("请假", "leave")
def leave_command(event: Inbound, ctx: Context) -> Card:
    """ "请假 [12-01] 至 12-05" for oneself (from today without a start); a leader:
    "请假 李雷 [12-01] 至 12-05"."""
    tr = texts(ctx.locale)
    me = _me(ctx)
    words = _words(event.text)
    today_me = _today(ctx, me)
    if len(words) == 1 or (len(words) == 2 and _is_day(words[0], today_me)):
        name, dates = "", words  # 请假 至 12-05 · 请假 12-01 至 12-05
    elif len(words) == 2 or (len(words) == 3 and _is_day(words[1], today_me)):
        name, dates = words[0], words[1:]  # 请假 李雷 至 12-05 · 请假 李雷 12-01 至 12-05
    else:
        return _reply(tr, "leave.title", tr("leave.usage"), ok=False)
    try:
        who = _member(ctx, me, name) if name and name not in (me.id, me.name) else me
        today = _today(ctx, who)
        # a start may lie a few weeks back (recorded late); the end is the next such day after it
        start = _day(tr, dates[0], today - RECORD_BACK) if len(dates) == 2 else today
        until = _day(tr, dates[-1], start)
    except _Refused as exc:
        return _reply(tr, "leave.title", str(exc), ok=False)
    if start > today + MAX_LEAVE or start < today - RECORD_BACK:
        return _reply(tr, "leave.title", tr("leave.usage"), ok=False)
    if until < today:
        return _reply(tr, "leave.title", tr("leave.past", until=until.isoformat()), ok=False)
    if until > today + MAX_LEAVE:
        return _reply(tr, "leave.title", tr("leave.too_far", limit=(today + MAX_LEAVE).isoformat()), ok=False)
    set_leave(ctx, who, until, via="command", start=start)
    if start != today:
        return _reply(
            tr,
            "leave.title",
            tr("leave.set_range", name=who.name, start=start.isoformat(), until=until.isoformat()),
        )
    if who.id == me.id:
        return _reply(tr, "leave.title", tr("leave.set_self", until=until.isoformat()))
    return _reply(tr, "leave.title", tr("leave.set_other", name=who.name, until=until.isoformat()))


RECORD_BACK = timedelta(days=31)  # how far back a leave's start may be recorded


def _is_day(word: str, today: date) -> bool:
    try:
        parse_day(word, today)
    except DateError:
        return False
    return True


@router.action("leave.mark")
def leave_button(event: Inbound, ctx: Context) -> Card:
    """The leader's one-click leave on the missing-plans card (to the week's Sunday)."""
    tr = texts(ctx.locale)
    me = _me(ctx)
    try:
        who = _member(ctx, me, str(event.values.get("person", "")))
        until = date.fromisoformat(str(event.values.get("until", "")))
    except _Refused as exc:
        return _reply(tr, "leave.title", str(exc), ok=False)
    except ValueError:
        return _reply(tr, "leave.title", tr("bad_date", text=event.values.get("until", "")), ok=False)
    today = _today(ctx, who)
    if until < today:
        return _reply(tr, "leave.title", tr("leave.past", until=until.isoformat()), ok=False)
    if who.on_leave_until is None or who.on_leave_until < until:
        set_leave(ctx, who, min(until, today + MAX_LEAVE), via="button")
    shown = (who.on_leave_until or until).isoformat()
    return _reply(tr, "leave.title", tr("leave.set_other", name=who.name, until=shown))


@router.command("销假", "back")
def back_command(event: Inbound, ctx: Context) -> Card:
    """End a leave today: "销假" (oneself) or, a leader, "销假 李雷"."""
    tr = texts(ctx.locale)
    me = _me(ctx)
    words = _words(event.text)
    try:
        who = _member(ctx, me, words[0]) if words and words[0] not in (me.id, me.name) else me
    except _Refused as exc:
        return _reply(tr, "leave.title", str(exc), ok=False)
    today = _today(ctx, who)
    if not on_leave(who, today):
        return _reply(tr, "leave.title", tr("leave.not_on_leave", name=who.name), ok=False)
    before = who.on_leave_until
    end_leave(ctx.session, who, today)
    _audit(
        ctx, "person.leave.end", who.id, before=before.isoformat() if before else None, day=today.isoformat()
    )
    if who.id == me.id:
        return _reply(tr, "leave.title", tr("leave.ended_self"))
    return _reply(tr, "leave.title", tr("leave.ended_other", name=who.name))


@router.command("暂停提醒", "pause-reminders")
def pause_command(event: Inbound, ctx: Context) -> Card:
    tr = texts(ctx.locale)
    me = _me(ctx)
    if me.reminders_paused:
        return _reply(tr, "pause.title", tr("pause.already"), ok=False)
    me.reminders_paused = True
    _audit(ctx, "reminders.pause", me.id)
    return _reply(tr, "pause.title", tr("pause.done"))


@router.command("恢复提醒", "resume-reminders")
def resume_command(event: Inbound, ctx: Context) -> Card:
    tr = texts(ctx.locale)
    me = _me(ctx)
    if not me.reminders_paused:
        return _reply(tr, "pause.title", tr("resume.already"), ok=False)
    me.reminders_paused = False
    _audit(ctx, "reminders.resume", me.id)
    return _reply(tr, "pause.title", tr("resume.done"))


def _led_team(ctx: Context, me: Person, named: str) -> Team:
    tr = texts(ctx.locale)
    teams = list(
        ctx.session.scalars(
            select(Team).where(Team.leader_id == me.id, Team.active.is_(True)).order_by(Team.id)
        )
    )
    if not teams:
        raise PermissionDenied(tr("team_pause.not_leader"))
    if named:
        team = next((t for t in teams if named in (t.id, t.name)), None)
        if team is None:
            raise PermissionDenied(tr("team_pause.not_leader"))
        return team
    if len(teams) > 1:
        raise _Refused(tr("team_pause.which"))
    return teams[0]


@router.command("暂停团队提醒", "pause-team-reminders")
def pause_team_command(event: Inbound, ctx: Context) -> Card:
    """ "暂停团队提醒 至 02-20 [团队 ops]": no plan reminders or lists for the team through that day."""
    tr = texts(ctx.locale)
    me = _me(ctx)
    words, named = _split_team(_words(event.text))
    if len(words) != 1:
        return _reply(tr, "team_pause.title", tr("team_pause.usage"), ok=False)
    try:
        team = _led_team(ctx, me, named)
        today = ctx.now.astimezone(zone(team)).date()
        until = _day(tr, words[0], today)
    except _Refused as exc:
        return _reply(tr, "team_pause.title", str(exc), ok=False)
    if until < today:
        return _reply(tr, "team_pause.title", tr("leave.past", until=until.isoformat()), ok=False)
    if until > today + MAX_LEAVE:
        limit = (today + MAX_LEAVE).isoformat()
        return _reply(tr, "team_pause.title", tr("leave.too_far", limit=limit), ok=False)
    before = team.reminders_paused_until
    team.reminders_paused_until = until
    _audit(
        ctx,
        "team.reminders.pause",
        f"team {team.id}",
        until=until.isoformat(),
        before=before.isoformat() if before else None,
    )
    return _reply(tr, "team_pause.title", tr("team_pause.done", team=team.name, until=until.isoformat()))


@router.command("恢复团队提醒", "resume-team-reminders")
def resume_team_command(event: Inbound, ctx: Context) -> Card:
    tr = texts(ctx.locale)
    me = _me(ctx)
    _, named = _split_team(_words(event.text))
    try:
        team = _led_team(ctx, me, named)
    except _Refused as exc:
        return _reply(tr, "team_pause.title", str(exc), ok=False)
    today = ctx.now.astimezone(zone(team)).date()
    if not team_paused(team, today):
        return _reply(tr, "team_pause.title", tr("team_resume.none", team=team.name), ok=False)
    before = team.reminders_paused_until
    team.reminders_paused_until = None
    _audit(ctx, "team.reminders.resume", f"team {team.id}", before=before.isoformat() if before else None)
    return _reply(tr, "team_pause.title", tr("team_resume.done", team=team.name))


@router.action("plan.remind")
def remind_again(event: Inbound, ctx: Context) -> Card:
    """The leader's "再提醒一次": one more reminder this week to each member still without a plan."""
    tr = texts(ctx.locale)
    me = _me(ctx)
    team = ctx.session.get(Team, str(event.values.get("team", "")))
    if team is None or team.leader_id != me.id:
        raise PermissionDenied(tr("team_pause.not_leader"))
    tz = zone(team)
    week = week_of(ctx.now, tz)
    if event.values.get("week", week) != week:
        return _reply(tr, "nudge.title", tr("nudge.stale", week=event.values.get("week")), ok=False)
    pd = plan_day(team, week, Calendar.load(ctx.session))
    if pd is None:
        return _reply(tr, "nudge.title", tr("nudge.none"), ok=False)
    todo = _remindable(ctx.session, team, pd)
    if not todo:
        return _reply(tr, "nudge.title", tr("nudge.none"), ok=False)
    sent: list[Person] = []
    for person in todo:
        target = person_target(ctx.session, person, ctx.bots)
        if target is None:
            continue
        card = plan_reminder_card(
            tr,
            week=week,
            days=days_label(week),
            person_name=person.name,
            deadline=moment(pd.deadline, tz),
            link=ctx.links(person.id, "plan-form", week),
            late=ctx.now >= pd.deadline,
            leader_name=me.name,
        )
        if outbox.enqueue(ctx.session, target, card, dedupe_key=nudge_key(person.id, week), now=ctx.now):
            sent.append(person)
    if not sent:
        return _reply(tr, "nudge.title", tr("nudge.already"), ok=False)
    _audit(ctx, "plan.remind", f"team {team.id}", week=week, people=[p.id for p in sent])
    return _reply(tr, "nudge.title", tr("nudge.done", count=len(sent), names=tr.names(p.name for p in sent)))
