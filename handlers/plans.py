"""Plan submission, edit and confirm in chat: the plan form, the text plan, versions, deadlines, receipts.

What an item is and how a written one is checked lives in handlers/plan_items.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cards.builders import FormRow, ItemView, KpiChoice, plan_form, plan_receipt, text_plan_errors
from cards.model import Card, Markdown
from handlers.events_out import emit
from handlers.inbound import Inbound
from handlers.personal_scope import with_personal_scopes
from handlers.plan_items import (
    Draft,
    KeptBaseline,
    Resolved,
    latest_value,
    parse_text_plan,
    resubmission_baselines,
    validate,
)
from handlers.plan_template import (
    UNCOUNTED,
    WeekTemplate,
    ordered,
    role_kpi_keys,
    uncounted_lines,
    week_template,
)
from handlers.router import Context, PermissionDenied, error_card, router
from handlers.setup import COMPLAINT_CAUSES, team_kpis
from handlers.workdays import Calendar, iso_week, week_dates
from storage import outbox
from storage.models import AuditLog, Kpi, Person, Plan, PlanItem, Role, Team
from storage.people import led_team_ids, member_named, person_target

SPARE_ROWS = 2
TEXT_PLAN_WORDS = ("计划", "plan")


class PlanLocked(Exception):
    """Re-submitting after the deadline needs the leader's unlock."""


# ---------------------------------------------------------------- weeks and deadlines


def plan_deadline(team: Team, week: str, calendar: Calendar) -> datetime:
    """Re-submission closes at the plan deadline on the week's first workday (team time)."""
    day = calendar.first_workday(week) or week_dates(week)[0]
    hour, minute = map(int, team.plan_deadline_time.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(team.timezone))


def in_promotion(session: Session, day: date) -> bool:
    """Is ``day``'s ISO week touched by a promotion period (role plans switch to promotion sections)?"""
    from storage.models import Period

    monday = day - timedelta(days=day.weekday())
    week_days = [monday + timedelta(days=i) for i in range(7)]
    for period in session.scalars(select(Period)):
        for d in week_days:
            md = d.strftime("%m-%d")
            inside = (
                (period.start_md <= md <= period.end_md)
                if period.start_md <= period.end_md
                else (md >= period.start_md or md <= period.end_md)
            )
            if inside:
                return True
    return False


# ---------------------------------------------------------------- storing


def current_plan(session: Session, person_id: str, week: str) -> Plan | None:
    return session.scalar(
        select(Plan).where(Plan.person_id == person_id, Plan.week == week, Plan.current.is_(True))
    )


def _signature(items: Sequence[Resolved]) -> list[tuple[Any, ...]]:
    return [(r.draft.text.strip(), r.kpi.key, r.draft.target.strip(), r.scope) for r in items]


def store_plan(
    session: Session,
    person: Person,
    week: str,
    items: Sequence[Resolved],
    *,
    now: datetime,
    deadline: datetime,
    via: str,
) -> tuple[Plan, bool]:
    """Save a new version; (plan, False) if the current version already says the same (a double click)."""
    current = current_plan(session, person.id, week)
    if current is not None:
        same = [(i.text, i.kpi_key, i.target_text, i.scope) for i in current.items] == _signature(items)
        if same:
            return current, False
        if now > deadline and not current.unlocked:
            raise PlanLocked()
        current.current = False
    version = (current.version + 1) if current else 1
    status = "late" if (current is None and now > deadline) else (current.status if current else "submitted")
    plan = Plan(
        person_id=person.id,
        team_id=person.team_id,
        week=week,
        version=version,
        current=True,
        status=status,
        submitted_at=now,
        submitted_via=via,
        unlocked=False,
    )
    for n, r in enumerate(items, start=1):
        plan.items.append(
            PlanItem(
                position=n,
                section=r.draft.section,
                text=r.draft.text.strip(),
                kpi_key=r.kpi.key,
                scope=r.scope,
                target_text=r.draft.target.strip(),
                baseline=r.baseline,
                target=r.target,
                changes="",
                causes=list(r.draft.causes),
                note="",
            )
        )
    session.add(plan)
    session.add(
        AuditLog(
            at=now,
            actor=person.id,
            action="plan.submit",
            subject=f"{person.id}/{week}",
            detail={"version": version, "items": len(items), "via": via},
        )
    )
    session.flush()
    emit(session, "plan.submitted", plan_event(plan, person), resource=f"plan:{person.id}/{week}", now=now)
    return plan, True


def _number(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def plan_event(plan: Plan, person: Person) -> dict[str, Any]:
    """A plan as an outgoing webhook's ``data``: one entry of ``planloop export plans``, plus its version."""
    zone = _team_zone(person)
    return {
        "employee": plan.person_id,
        "team": plan.team_id,
        "week": plan.week,
        "version": plan.version,
        "status": plan.status,
        "submitted_at": plan.submitted_at.astimezone(zone).isoformat(),
        "items": [
            {
                "text": i.text,
                "kpi": i.kpi_key,
                "scope": i.scope,
                "baseline": _number(i.baseline),
                "target": _number(i.target),
            }
            for i in plan.items
        ],
    }


# ---------------------------------------------------------------- cards


def _calendar(ctx: Context) -> Calendar:
    return Calendar.load(ctx.session)


def _team_zone(person: Person) -> ZoneInfo:
    return ZoneInfo(person.team.timezone)


def _week_now(ctx: Context, person: Person) -> tuple[str, date]:
    today = ctx.now.astimezone(_team_zone(person)).date()
    return iso_week(today), today


def _kpi_choices(kpis: Sequence[Kpi], template: WeekTemplate | None) -> list[KpiChoice]:
    """Options for the KPI select; a KPI the week's template does not score says so in its label."""
    return [
        KpiChoice(k.key, k.name, k.unit, counted=template is None or template.counts(k.key)) for k in kpis
    ]


def planning_kpis(session: Session, person: Person, week: str) -> tuple[list[Kpi], WeekTemplate | None]:
    """The team's KPIs, the week's template's first, then the role's, then the rest; and the template."""
    kpis = team_kpis(session, person.team)
    template = week_template(session, person, week)
    return ordered(kpis, template, role_kpi_keys(session, person, kpis)), template


def _template_note(template: WeekTemplate | None, names: dict[str, str], rows: Sequence[FormRow]) -> str:
    """Which KPIs this week's template scores, and the rows whose KPI it does not."""
    if template is None:
        return ""
    counted = "、".join(names.get(key, key) for key in template.counted)
    line = f"本周考核模板“{template.label}”计分的指标：{counted}。其他指标可以写进计划，但{UNCOUNTED}。"
    chosen = [
        (n, r.kpi, names.get(r.kpi, r.kpi))
        for n, r in enumerate(rows, start=1)
        if r.kpi and (r.text or r.target or r.scope)
    ]
    flagged = uncounted_lines(template, chosen)
    return "\n".join([line, *flagged])


def _default_rows(session: Session, person: Person, kpis: Sequence[Kpi], today: date) -> list[FormRow]:
    role = session.get(Role, person.role)
    sections: list[Any] = []
    if role is not None:
        sections = (
            role.promo_sections if (role.promo_sections and in_promotion(session, today)) else role.sections
        )
    by_metric = {k.metric: k.key for k in kpis if k.metric}
    rows = [FormRow(section=s[0], kpi=by_metric.get(s[1], "") if len(s) > 1 else "") for s in sections]
    return rows + [FormRow() for _ in range(SPARE_ROWS)]


def _rows_from_plan(plan: Plan) -> list[FormRow]:
    rows = [
        FormRow(
            section=i.section,
            text=i.text,
            kpi=i.kpi_key,
            target=i.target_text,
            scope="" if i.scope == "shop" else i.scope,
            causes="、".join(i.causes),
        )
        for i in plan.items
    ]
    return rows + [FormRow() for _ in range(SPARE_ROWS)]


TEXT_PLAN_HINT = (
    "也可以直接在聊天里发送文字计划：第一行写“计划”，下面每行一项“事项 指标 目标”，"
    "例如：优化详情页首屏 支付转化率 +2pp。"
)


def form_for(
    ctx: Context, person: Person, *, error: str = "", rows: list[FormRow] | None = None, locked: bool = False
) -> Card:
    week, today = _week_now(ctx, person)
    kpis, template = planning_kpis(ctx.session, person, week)
    if rows is None:
        existing = current_plan(ctx.session, person.id, week)
        rows = _rows_from_plan(existing) if existing else _default_rows(ctx.session, person, kpis, today)
        if existing is None and person.role == "customer_service":
            from handlers.aftersales_views import propose_causes

            rows = propose_causes(ctx.session, rows, today, ctx.tz, ctx.now)
    note = ""
    existing = current_plan(ctx.session, person.id, week)
    if existing is not None and not locked:
        note = f"你已提交第 {existing.version} 版；再次提交会生成新版本，旧版本保留。"
    link = ctx.links(person.id, "plan-form", week)
    if not link:  # no web page to offer (no public_url): say which chat paths remain
        note = " ".join(p for p in (note, TEXT_PLAN_HINT) if p)
    counted_note = _template_note(template, {k.key: k.name for k in kpis}, rows)
    note = "\n".join(p for p in (note, counted_note) if p)
    return plan_form(
        week=week,
        person_name=person.name,
        rows=rows,
        kpis=_kpi_choices(kpis, template),
        link=link,
        error=error,
        with_causes=person.role == "customer_service",
        note=note,
    )


def receipt_for(ctx: Context, person: Person, plan: Plan, *, note: str = "", title: str = "") -> Card:
    kpis = {k.key: k for k in ctx.session.scalars(select(Kpi))}
    template = week_template(ctx.session, person, plan.week)
    items = [
        ItemView(
            i.text,
            kpis[i.kpi_key].name,
            kpis[i.kpi_key].unit,
            i.baseline,
            i.target,
            i.target_text,
            i.scope,
            i.section,
            counted=template is None or template.counts(i.kpi_key),
        )
        for i in plan.items
    ]
    zone = _team_zone(person)
    return plan_receipt(
        week=plan.week,
        person_name=person.name,
        version=plan.version,
        status=plan.status,
        items=items,
        submitted_at=plan.submitted_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        detail_url=ctx.links(person.id, "plan", plan.week),
        note=note,
        title=title,
    )


def _drafts_from_form(values: Mapping[str, str]) -> tuple[list[Draft], list[FormRow]]:
    numbers = sorted(
        {int(k[4:].split("_")[0]) for k in values if k.startswith("item") and k[4:].split("_")[0].isdigit()}
    )
    drafts: list[Draft] = []
    rows: list[FormRow] = []
    for n in numbers:
        get = lambda f, n=n: (values.get(f"item{n}_{f}") or "").strip()  # noqa: E731
        row = FormRow(
            section=get("section"),
            text=get("text"),
            kpi=get("kpi"),
            target=get("target"),
            scope=get("scope"),
            causes=get("causes"),
        )
        rows.append(row)
        if not (row.text or row.target or row.scope):
            continue  # an empty spare row, or a section that came with its KPI pre-selected and was left
        causes = tuple(c for c in row.causes.replace(",", "、").replace("，", "、").split("、") if c.strip())
        drafts.append(Draft(f"第{n}项", row.text, row.kpi, row.target, row.scope, row.section, causes))
    return drafts, rows


def _baselines(ctx: Context, today: date) -> Callable[[Kpi, str], Decimal | None]:
    """The real baseline of a KPI and scope at submission: its latest value on or before today."""
    return lambda k, scope: latest_value(ctx.session, k.metric, scope, today) if k.metric else None


def submit(
    ctx: Context, person: Person, drafts: Sequence[Draft], via: str
) -> tuple[Plan | None, dict[str, dict[str, str]], str]:
    """Validate and store; returns (plan, problems, message). Nothing is stored if any item has a problem."""
    week, today = _week_now(ctx, person)
    kpis, _ = planning_kpis(ctx.session, person, week)
    for d in drafts:
        bad = [c for c in d.causes if c not in COMPLAINT_CAUSES]
        if bad:
            return (
                None,
                {
                    d.where: {
                        "causes": f"不认识的投诉原因：{'、'.join(bad)}（可选：{'、'.join(COMPLAINT_CAUSES)}）"
                    }
                },
                "",
            )
    drafts = with_personal_scopes(ctx.session, person.id, drafts, kpis)
    kept: list[KeptBaseline] = []
    again = resubmission_baselines(ctx.session, person, week, today, kept)
    resolved, problems = validate(drafts, kpis, again or _baselines(ctx, today))
    if problems:
        return None, problems, ""
    deadline = plan_deadline(person.team, week, _calendar(ctx))
    try:
        plan, created = store_plan(
            ctx.session, person, week, resolved, now=ctx.now, deadline=deadline, via=via
        )
    except PlanLocked:
        when = deadline.strftime("%m-%d %H:%M")
        return None, {}, f"本周计划已过修改截止时间（{when}），需要主管解锁后才能再次提交。"
    if not created:
        return plan, {}, "内容与当前版本相同，没有生成新版本。"
    if plan.version > 1:
        # an unlock is good for one re-submission
        note = f"已保存为第 {plan.version} 版，之前的版本保留在历史里。"
        if kept:
            both = "；".join(
                f"{k.kpi_name}{'' if k.scope == 'shop' else '@' + k.scope} 基线沿用第 {k.version} 版的 "
                f"{k.kept.normalize():f}（现在最新值 {k.latest.normalize():f}）"
                for k in kept
            )
            note += f"\n{both}"
            _tell_leader(ctx, person, plan, both)
        return plan, {}, note
    return plan, {}, ""


def _tell_leader(ctx: Context, person: Person, plan: Plan, both: str) -> None:
    """The leader sees both values when a re-submission's kept baseline differs from the latest."""
    from storage import outbox
    from storage.people import person_target

    leader = ctx.session.get(Person, person.team.leader_id) if person.team.leader_id else None
    target = (
        person_target(ctx.session, leader, ctx.bots)
        if leader is not None and leader.id != person.id
        else None
    )
    if target is None:
        return
    card = Card(
        title=f"{person.name} 重新提交了 {plan.week} 计划（第 {plan.version} 版）",
        theme="blue",
        blocks=(Markdown(f"{both}\n考核按沿用的基线计算完成度。"),),
    )
    outbox.enqueue(ctx.session, target, card, dedupe_key=f"plan-baseline:{plan.id}", now=ctx.now)


# ---------------------------------------------------------------- handlers


def _me(ctx: Context) -> Person:
    if ctx.person is None:  # the router only calls non-public handlers with a person
        raise PermissionDenied("还不认识你")
    return ctx.person


@router.command("写计划", "填计划", "plan", "新计划")
def plan_command(event: Inbound, ctx: Context) -> Card:
    if len([line for line in event.text.splitlines() if line.strip()]) > 1:
        return text_plan(event, ctx)
    return form_for(ctx, _me(ctx))


@router.command("计划")
def plan_or_show(event: Inbound, ctx: Context) -> Card:
    person = _me(ctx)
    if len([line for line in event.text.splitlines() if line.strip()]) > 1:
        return text_plan(event, ctx)
    week, _ = _week_now(ctx, person)
    plan = current_plan(ctx.session, person.id, week)
    if plan is None:
        return form_for(ctx, person)
    return receipt_for(ctx, person, plan, title=f"我的本周计划 · {week}")


def text_plan(event: Inbound, ctx: Context) -> Card:
    person = _me(ctx)
    drafts, errors = parse_text_plan(event.text)
    # One validation, against the real baselines (as the form uses), so every line's problem is
    # reported in one answer and a valid target is never refused against a placeholder.
    week, today = _week_now(ctx, person)
    _, problems = validate(drafts, planning_kpis(ctx.session, person, week)[0], _baselines(ctx, today))
    if errors or problems or not drafts:
        lines = list(errors)
        for where, fields in problems.items():
            lines.extend(f"{where}：{message}" for message in fields.values())
        if not drafts and not errors:
            lines.append("第1行之后没有计划项")
        return text_plan_errors(sorted(lines, key=_line_number))
    plan, problems, message = submit(ctx, person, drafts, via=f"text:{event.platform}")
    if problems:
        lines = [f"{where}：{m}" for where, fields in problems.items() for m in fields.values()]
        return text_plan_errors(sorted(lines, key=_line_number))
    if plan is None:
        return error_card(message, title="计划未保存")
    return receipt_for(ctx, person, plan, note=message)


def _line_number(line: str) -> int:
    digits = "".join(ch for ch in line.split("：", 1)[0] if ch.isdigit())
    return int(digits) if digits else 0


@router.action("plan.form")
def plan_form_action(event: Inbound, ctx: Context) -> Card:
    return form_for(ctx, _me(ctx))


@router.action("plan.submit")
def plan_submit(event: Inbound, ctx: Context) -> Card:
    person = _me(ctx)
    drafts, rows = _drafts_from_form(event.values)
    plan, problems, message = submit(ctx, person, drafts, via=f"form:{event.platform}")
    if problems:
        by_where = {f"第{n}项": n for n in range(1, len(rows) + 1)}
        shown = [
            FormRow(
                r.section, r.text, r.kpi, r.target, r.scope, r.causes, errors=problems.get(f"第{n}项", {})
            )
            for n, r in enumerate(rows, start=1)
        ]
        summary = "；".join(
            f"{where}：{m}"
            for where, fields in problems.items()
            for m in fields.values()
            if where in by_where or where == "plan"
        )
        return form_for(ctx, person, error=f"计划未保存。{summary}", rows=shown or None)
    if plan is None:  # refused as locked: keep what the person wrote
        kept = [FormRow(r.section, r.text, r.kpi, r.target, r.scope, r.causes) for r in rows]
        return form_for(ctx, person, error=message, rows=kept or None, locked=True)
    return receipt_for(ctx, person, plan, note=message)


@router.command("解锁")
def unlock_command(event: Inbound, ctx: Context) -> Card:
    """A leader lets a member re-submit after the deadline: `解锁 李雷` (or the id, `解锁 lilei`)."""
    words = event.text.split()
    if len(words) < 2:
        return error_card("用法：解锁 姓名（例如：解锁 李雷）")
    return _unlock(ctx, " ".join(words[1:]))


@router.action("plan.unlock")
def unlock_action(event: Inbound, ctx: Context) -> Card:
    return _unlock(ctx, event.values.get("person", ""))


def _unlock(ctx: Context, who: str) -> Card:
    leader = _me(ctx)
    led = led_team_ids(ctx.session, leader.id)
    if not led:
        raise PermissionDenied("只有团队主管可以解锁成员的计划。")
    member = member_named(ctx.session, led, who)
    if member is None:
        return error_card(f"你的团队里没有叫“{who}”的成员。", title="找不到成员")
    week, _ = _week_now(ctx, member)
    plan = current_plan(ctx.session, member.id, week)
    if plan is None:
        return error_card(f"{member.name} 本周还没有提交计划，不需要解锁，直接提交即可。", title="无需解锁")
    plan.unlocked = True
    ctx.session.add(
        AuditLog(at=ctx.now, actor=leader.id, action="plan.unlock", subject=f"{member.id}/{week}")
    )
    sunday = week_dates(week)[-1]
    target = person_target(ctx.session, member, ctx.bots)
    if target is not None:
        told = Card(
            title=f"计划已解锁 · {week}",
            theme="green",
            blocks=(
                Markdown(
                    f"{leader.name} 允许你重新提交 {week} 的计划一次，"
                    f"在 {sunday:%m-%d}（周日）24:00 前有效。发送“写计划”修改。"
                ),
            ),
        )
        outbox.enqueue(
            ctx.session, target, told, dedupe_key=f"unlock:{plan.id}:{ctx.now.isoformat()}", now=ctx.now
        )
    text = f"{member.name} 现在可以重新提交 {week} 的计划（一次）。"
    return Card(title="已解锁", theme="green", blocks=(Markdown(text),))
