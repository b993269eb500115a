"""A leader's manual template switch (切换模板 / 恢复模板), from chat, the card and the CLI.

Template precedence: a manual switch > an active scenario > a period > employee type > the role's
default (``appraisal/selection.py``). A switch covers its team from a day to an end day (or until
cancelled); a new switch ends the earlier ones the day before it starts. Audited as
``template.switch`` / ``template.switch.cancel`` with who, when, from and to.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from appraisal.selection import NoTemplate, Switch, week_of
from appraisal.templates import Template
from cards.builders import AUTO_TEMPLATE, NO_END, TemplateChoice, template_switch_card, template_switched
from cards.model import Card, Option
from handlers.appraisal_chat import acting_person, done_card, led_team, team_today
from handlers.appraisals import AppraisalError, Rules, select_for
from handlers.dates import DateError, parse_day
from handlers.events_out import emit
from handlers.inbound import Inbound
from handlers.router import Context, error_card, router
from storage.models import AuditLog, Person, Team, TemplateSwitch
from storage.models import Template as TemplateRow

# ---------------------------------------------------------------- template switching


def _team_templates(session: Session, team: Team, rules: Rules) -> list[Template]:
    roles = {
        p.role
        for p in session.scalars(select(Person).where(Person.team_id == team.id, Person.active.is_(True)))
    }
    return [t for t in rules.templates if t.role is None or t.role in roles]


def _team_selection(session: Session, team: Team, week: str, rules: Rules) -> list[str]:
    """The templates that apply to the team's members in ``week`` (ids, sorted, distinct)."""
    chosen = set()
    for person in session.scalars(select(Person).where(Person.team_id == team.id, Person.active.is_(True))):
        try:
            chosen.add(select_for(session, person, week, rules).template.id)
        except NoTemplate:
            continue
    return sorted(chosen)


def switch_template(
    session: Session,
    team_id: str,
    template_id: str,
    *,
    by: str,
    now: datetime,
    until: date | None = None,
    start: date | None = None,
    reason: str = "",
) -> TemplateSwitch:
    """A leader's manual switch of ``team_id`` to ``template_id`` from ``start`` (default: today in the
    team's zone) to ``until`` inclusive (None: until cancelled). Earlier switches end the day before.
    Audited as ``template.switch`` with who, when, from and to."""
    team = session.get(Team, team_id)
    if team is None:
        raise AppraisalError(f"没有 id 为“{team_id}”的团队")
    rules = Rules.load(session)
    template = next((t for t in rules.templates if t.id == template_id), None)
    if template is None:
        known = "、".join(t.id for t in _team_templates(session, team, rules)) or "（无）"
        raise AppraisalError(f"没有 id 为“{template_id}”的可用模板（可选：{known}）")
    if template not in _team_templates(session, team, rules):
        raise AppraisalError(
            f"模板“{template.label}”适用于岗位 {template.role}，{team.name}没有这个岗位的成员"
        )
    first = start or team_today(team, now)
    if until is not None and until < first:
        raise AppraisalError(f"截止日期 {until:%Y-%m-%d} 早于开始日期 {first:%Y-%m-%d}")
    week = week_of(first)
    before = _team_selection(session, team, week, rules)
    for old in session.scalars(
        select(TemplateSwitch).where(TemplateSwitch.team_id == team_id, TemplateSwitch.cancelled.is_(False))
    ):
        if old.start >= first:
            old.cancelled = True
        elif old.until is None or old.until >= first:
            old.until = first - timedelta(days=1)
    row = TemplateSwitch(team_id=team_id, template_id=template_id, start=first, until=until, by=by, at=now)
    session.add(row)
    session.flush()
    session.add(
        AuditLog(
            at=now,
            actor=by,
            action="template.switch",
            subject=f"team {team_id}",
            detail={
                "team": team_id,
                "from": before,
                "to": template_id,
                "start": first.isoformat(),
                "until": until.isoformat() if until else None,
                **({"reason": reason} if reason else {}),
            },
        )
    )
    switched = {
        "id": row.id,
        "team": team_id,
        "from": before,
        "to": template_id,
        "start": first.isoformat(),
        "until": until.isoformat() if until else None,
        "by": by,
    }
    emit(session, "template.switched", switched, resource=f"team:{team_id}", now=now)
    return row


def cancel_switch(session: Session, team_id: str, *, by: str, now: datetime) -> int:
    """End the team's manual switches from today: back to the rule (a switch that already covered a day
    of this week still covers this week). Returns switches ended; audited as ``template.switch.cancel``."""
    team = session.get(Team, team_id)
    if team is None:
        raise AppraisalError(f"没有 id 为“{team_id}”的团队")
    today = team_today(team, now)
    ended = []
    for old in session.scalars(
        select(TemplateSwitch).where(TemplateSwitch.team_id == team_id, TemplateSwitch.cancelled.is_(False))
    ):
        if old.until is not None and old.until < today:
            continue
        if old.start >= today:
            old.cancelled = True
        else:
            old.until = today - timedelta(days=1)
        ended.append(old.template_id)
    if ended:
        session.add(
            AuditLog(
                at=now,
                actor=by,
                action="template.switch.cancel",
                subject=f"team {team_id}",
                detail={"team": team_id, "from": sorted(set(ended)), "to": None, "day": today.isoformat()},
            )
        )
    return len(ended)


# ---------------------------------------------------------------- chat: switching templates


_SWITCH = re.compile(
    r"^(?:切换模板|switch-template)\s*(?P<template>\S+)?(?:\s*(?:至|到|until)\s*(?P<until>\S+))?"
    r"(?:\s*(?:团队|team)\s*(?P<team>\S+))?\s*$",
    re.IGNORECASE,
)


def _switch_card(ctx: Context, team: Team, error: str = "") -> Card:
    rules = Rules.load(ctx.session)
    week = week_of(team_today(team, ctx.now))
    choices = []
    for t in _team_templates(ctx.session, team, rules):
        notes = []
        if t.period and t.period in rules.periods:
            notes.append(f"{rules.periods[t.period].name} {rules.periods[t.period].window}")
        if t.scenario:
            notes.append(f"场景：{t.scenario}")
        if t.employee_type:
            notes.append("新员工" if t.employee_type == "new" else "老员工")
        choices.append(TemplateChoice(t.id, t.label, "，".join(notes)))
    current = "、".join(_team_selection(ctx.session, team, week, rules))
    return template_switch_card(
        team_name=team.name,
        current=current,
        choices=choices,
        until=_end_choices(team_today(team, ctx.now)),
        error=error,
    )


def _end_choices(today: date) -> list[Option]:
    """End dates a leader usually means: this Sunday, next Sunday, the month's last day, none."""
    sunday = today + timedelta(days=6 - today.weekday())
    next_month = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    month_end = next_month - timedelta(days=1)
    out = [
        Option(sunday.isoformat(), f"本周日 {sunday:%m-%d}"),
        Option((sunday + timedelta(days=7)).isoformat(), f"下周日 {sunday + timedelta(days=7):%m-%d}"),
    ]
    if month_end > sunday + timedelta(days=7):
        out.append(Option(month_end.isoformat(), f"月底 {month_end:%m-%d}"))
    out.append(Option(NO_END, "不设截止"))
    return out


def _do_switch(ctx: Context, event: Inbound, template_id: str, until_text: str, team_word: str = "") -> Card:
    me = acting_person(ctx)
    team = led_team(ctx, event, team_word)
    today = team_today(team, ctx.now)
    try:
        until = parse_day(until_text, today) if until_text else None
        rules = Rules.load(ctx.session)
        before = _team_selection(ctx.session, team, week_of(today), rules)
        row = switch_template(ctx.session, team.id, template_id, by=me.id, now=ctx.now, until=until)
    except (AppraisalError, DateError) as exc:
        return _switch_card(ctx, team, error=str(exc))
    template = ctx.session.get(TemplateRow, row.template_id)
    label = (template.name or template.id) if template else row.template_id
    window = Switch(row.template_id, row.start, row.until, me.name, row.at).window
    return template_switched(
        team_name=team.name, template=label, window=window, replaced="、".join(before), by=me.name
    )


@router.command("切换模板", "switch-template")
def switch_command(event: Inbound, ctx: Context) -> Card:
    """ "切换模板 ops-promo 至 12-01 [团队 ops]"; without a template, the one-click card."""
    m = _SWITCH.match(event.text.strip().splitlines()[0].strip())
    if m is None:
        return error_card("格式：切换模板 模板id [至 12-01] [团队 团队id]")
    try:
        if not m.group("template"):
            return _switch_card(ctx, led_team(ctx, event, m.group("team") or ""))
        return _do_switch(ctx, event, m.group("template"), m.group("until") or "", m.group("team") or "")
    except AppraisalError as exc:
        return error_card(str(exc))


@router.action("template.switch")
def switch_action(event: Inbound, ctx: Context) -> Card:
    template_id = str(event.values.get("template", "")).strip()
    if template_id == AUTO_TEMPLATE:
        return _cancel(event, ctx)
    try:
        if not template_id:
            return _switch_card(
                ctx, led_team(ctx, event, str(event.values.get("team", ""))), error="请选择模板"
            )
        until = str(event.values.get("until", "")).strip()
        return _do_switch(
            ctx, event, template_id, "" if until == NO_END else until, str(event.values.get("team", ""))
        )
    except AppraisalError as exc:
        return error_card(str(exc))


@router.command("恢复模板", "取消切换")
@router.action("template.switch.cancel")
def cancel_action(event: Inbound, ctx: Context) -> Card:
    return _cancel(event, ctx)


def _cancel(event: Inbound, ctx: Context) -> Card:
    me = acting_person(ctx)
    try:
        team = led_team(ctx, event, str(event.values.get("team", "")))
    except AppraisalError as exc:
        return error_card(str(exc))
    ended = cancel_switch(ctx.session, team.id, by=me.id, now=ctx.now)
    if not ended:
        return done_card("考核模板", f"{team.name}当前没有手动切换，已是按规则自动选择。")
    return done_card("考核模板已恢复", f"{team.name}从今天起恢复按规则自动选择模板。", toast="已恢复")
