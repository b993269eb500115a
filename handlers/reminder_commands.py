"""Reminders in chat: leave (请假 / 销假, and the leader's per-person 请假 button), pausing reminders
for oneself or the whole team (暂停提醒 / 恢复提醒 / 暂停团队提醒 / 恢复团队提醒), and the leader's
再提醒一次. Every change is written to the audit log. The scheduled nudges are handlers/reminders.py.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from cards.builders import plan_reminder_card
from cards.i18n import Texts, texts
from cards.model import Card, Markdown
from handlers.dates import DateError, parse_day
from handlers.inbound import Inbound
from handlers.leave import end_leave, record_leave
from handlers.reminders import (
    days_label,
    moment,
    nudge_key,
    on_leave,
    plan_day,
    remindable,
    team_paused,
    zone,
)
from handlers.router import Context, PermissionDenied, router
from handlers.workdays import Calendar, week_of
from storage import outbox
from storage.models import AuditLog, Person, Team
from storage.people import led_team_ids, member_named, person_target

# ---------------------------------------------------------------- chat: replies


MAX_LEAVE = timedelta(days=366)  # how far ahead a leave may run


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
    todo = remindable(ctx.session, team, pd)
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
