"""What the /p/ pages show and who may see it: the permission rule, the plan form's baselines and
target previews, the plan detail (daily values, expected pace, lag), the appraisal detail with its
score history, and a leader's team table. Reads storage; returns plain views for cards.render.page.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from appraisal.targets import TargetError, parse_target, resolve
from cards import format as fmt
from cards.model import Card
from cards.render.page import (
    AppraisalView,
    FormulaRow,
    KpiInfo,
    PlanItemView,
    PlanView,
    TeamRow,
    TeamTable,
)
from handlers.appraisal_runs import template_why
from handlers.plan_items import latest_value
from handlers.plan_template import UNCOUNTED
from handlers.plans import current_plan, planning_kpis
from handlers.progress import completion, expected_pace, is_lagging
from handlers.router import PermissionDenied
from handlers.workdays import Calendar, iso_week, week_dates
from storage.models import Appraisal, Kpi, MetricSample, Person, Team, Template

WEEKDAYS = "一二三四五六日"
HISTORY_WEEKS = 8
SORTS = ("name", "score", "grade", "template")


# ---------------------------------------------------------------- who may see whose page


def subject_for(session: Session, viewer: Person, requested: str) -> Person:
    """The person whose page ``viewer`` asked for: themselves, or a member of a team they lead."""
    if not requested or requested == viewer.id:
        return viewer
    subject = session.get(Person, requested)
    if subject is None or subject.team is None or subject.team.leader_id != viewer.id:
        raise PermissionDenied("只能查看自己的页面，或你所带团队成员的页面。")
    return subject


def led_teams(session: Session, viewer: Person) -> list[Team]:
    return list(
        session.scalars(
            select(Team).where(Team.leader_id == viewer.id, Team.active.is_(True)).order_by(Team.id)
        )
    )


# ---------------------------------------------------------------- the plan form


def form_kpis(session: Session, person: Person, today: date) -> list[KpiInfo]:
    """The team's KPIs with the baseline a submission now would take (the latest value)."""
    out = []
    for k in planning_kpis(session, person, iso_week(today))[0]:
        scope = k.scope or "shop"
        baseline = latest_value(session, k.metric, scope, today) if k.metric and k.kind == "metric" else None
        out.append(KpiInfo(k.key, k.name, k.unit, k.direction, k.kind, baseline, scope))
    return out


def preview(kpi: KpiInfo | None, target_text: str, scope: str = "") -> tuple[str, bool]:
    """The resolved level a target would get, or the problem (text, is_problem); the page's script
    computes the same words in the browser."""
    if kpi is None:
        return "", False
    if kpi.kind == "rating":
        return "由主管评分，无需写目标", False
    raw = target_text.strip()
    if not raw:
        if kpi.kind == "checklist":
            return "写计划完成的任务数，例如 =5", False
        if kpi.baseline is None:
            return "暂无基线数据", False
        return f"当前基线 {fmt.value(kpi.baseline, kpi.unit)}", False
    try:
        spec = parse_target(raw)
    except TargetError as exc:
        return str(exc), True
    if kpi.kind == "checklist":
        if spec.kind != "level" or spec.amount != spec.amount.to_integral_value() or spec.amount < 1:
            return f"{kpi.name}的目标写计划完成的任务数，例如 =5", True
        return f"计划完成 {spec.amount.normalize():f} 个任务", False
    if spec.kind == "pp" and kpi.unit != "%":
        return f"{kpi.name}的单位是“{kpi.unit or '无'}”，不能用百分点（pp）；请用 +数值 或 +%", True
    scope = scope.strip().lstrip("@")
    if scope and scope != kpi.scope:
        return f"范围“{scope}”的基线在提交时按该范围的数据确定", False
    if kpi.baseline is None and spec.kind != "level":
        return "还没有数据：基线待首个数据确定", False
    try:
        level = resolve(spec, kpi.baseline, unit=kpi.unit, direction=kpi.direction, kpi_name=kpi.name)
    except TargetError as exc:
        return str(exc), True
    if kpi.baseline is None:
        return f"目标 {fmt.value(level, kpi.unit)}（基线待首个数据确定）", False
    return fmt.arrow(kpi.baseline, level, kpi.unit), False


def mark_uncounted(kpis: Sequence[KpiInfo], counted: Collection[str] | None) -> list[KpiInfo]:
    """The form's KPIs, those the week's template does not count carrying UNCOUNTED, so the
    page's script warns as :func:`form_previews` does."""
    if counted is None:
        return list(kpis)
    return [k if k.key in counted else replace(k, uncounted=UNCOUNTED) for k in kpis]


def form_previews(
    card: Card, kpis: Sequence[KpiInfo], counted: Collection[str] | None = None
) -> dict[int, tuple[str, bool]]:
    """Previews for the rows the form arrives with (pre-filled, or sent back with errors); with
    ``counted`` (the week's template's KPI keys) a filled row on another KPI says it will not count."""
    if card.form is None:
        return {}
    values = {i.name: i.value for i in card.form.inputs}
    by_key = {k.key: k for k in kpis}
    out: dict[int, tuple[str, bool]] = {}
    n = 1
    while f"item{n}_kpi" in values:
        kpi = by_key.get(values[f"item{n}_kpi"])
        out[n] = preview(kpi, values.get(f"item{n}_target", ""), values.get(f"item{n}_scope", ""))
        filled = values.get(f"item{n}_text", "") or values.get(f"item{n}_target", "")
        if kpi is not None and counted is not None and kpi.key not in counted and filled:
            text, bad = out[n]
            out[n] = ("；".join(p for p in (text, UNCOUNTED) if p), bad)
        n += 1
    return out


# ---------------------------------------------------------------- pace and lag


def day_label(day: date) -> str:
    return f"{day:%m-%d} {WEEKDAYS[day.weekday()]}"


def plan_view(
    session: Session, person: Person, week: str, now: datetime, *, links: Sequence[tuple[str, str]] = ()
) -> PlanView | None:
    plan = current_plan(session, person.id, week)
    if plan is None:
        return None
    tz = ZoneInfo(person.team.timezone)
    calendar = Calendar.load(session)
    days = week_dates(week)
    workdays = calendar.workdays_in_week(week)
    total = len(workdays)
    elapsed = calendar.workdays_elapsed(week, now, tz)
    pace = expected_pace(elapsed, total)
    kpis = {k.key: k for k in session.scalars(select(Kpi))}
    items = []
    for item in plan.items:
        kpi = kpis[item.kpi_key]
        values: tuple[Decimal | None, ...] = ()
        expected: tuple[Decimal | None, ...] = ()
        latest = done = None
        if kpi.metric and kpi.kind == "metric":
            samples = dict(
                session.execute(
                    select(MetricSample.day, MetricSample.value).where(
                        MetricSample.metric == kpi.metric,
                        MetricSample.scope == item.scope,
                        MetricSample.day >= days[0],
                        MetricSample.day <= days[-1],
                    )
                ).all()
            )
            values = tuple(samples.get(d) for d in days)
            known = [v for v in values if v is not None]
            latest = known[-1] if known else None
            if item.baseline is not None and item.target is not None and total:
                change = item.target - item.baseline
                expected = tuple(
                    item.baseline + change * Decimal(sum(1 for w in workdays if w <= d)) / Decimal(total)
                    for d in days
                )
            done = completion(item.baseline, item.target, latest, kpi.direction)
        items.append(
            PlanItemView(
                n=item.position,
                text=item.text,
                section=item.section,
                kpi_name=kpi.name,
                unit=kpi.unit,
                direction=kpi.direction,
                kind=kpi.kind,
                scope=item.scope,
                target_text=item.target_text,
                baseline=item.baseline,
                target=item.target,
                day_labels=tuple(day_label(d) for d in days) if values else (),
                values=values,
                expected=expected,
                off_days=tuple(d not in workdays for d in days) if values else (),
                latest=latest,
                completion=done,
                pace=pace if kpi.kind == "metric" else None,
                lagging=is_lagging(done, pace, elapsed, person.team.lag_margin),
            )
        )
    return PlanView(
        person_name=person.name,
        week=week,
        version=plan.version,
        status=plan.status,
        submitted_at=plan.submitted_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        items=tuple(items),
        elapsed=elapsed,
        workdays=total,
        lag_margin=person.team.lag_margin,
        links=tuple(links),
    )


# ---------------------------------------------------------------- appraisals


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return out if out.is_finite() else None


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def current_appraisal(session: Session, person_id: str, week: str) -> Appraisal | None:
    return session.scalar(
        select(Appraisal).where(
            Appraisal.person_id == person_id, Appraisal.week == week, Appraisal.current.is_(True)
        )
    )


def latest_appraised_week(session: Session, person_id: str) -> str | None:
    return session.scalar(
        select(Appraisal.week)
        .where(Appraisal.person_id == person_id, Appraisal.current.is_(True))
        .order_by(Appraisal.week.desc())
        .limit(1)
    )


def previous_weeks(week: str, count: int) -> list[str]:
    """``count`` ISO weeks ending with ``week``, oldest first."""
    monday = week_dates(week)[0]
    return [iso_week(monday - timedelta(weeks=k)) for k in range(count - 1, -1, -1)]


def template_label(session: Session, template_id: str) -> str:
    template = session.get(Template, template_id)
    if template is not None and template.name and template.name != template_id:
        return f"{template.name}（{template_id}）"
    return template_id


def appraisal_view(session: Session, person: Person, week: str) -> AppraisalView | None:
    row = current_appraisal(session, person.id, week)
    if row is None or row.status == "held":  # held for missing data: no result to show yet
        return None
    kpis = {k.key: k for k in session.scalars(select(Kpi))}
    rows = []
    for raw in row.items or []:
        if not isinstance(raw, dict):
            continue
        kpi = kpis.get(str(raw.get("kpi", "")))
        rows.append(
            FormulaRow(
                kpi_name=str(raw.get("name") or (kpi.name if kpi else raw.get("kpi", ""))),
                unit=str(raw.get("unit") if raw.get("unit") is not None else (kpi.unit if kpi else "")),
                direction=str(raw.get("direction") or (kpi.direction if kpi else "up")),
                kind=str(raw.get("kind") or (kpi.kind if kpi else "metric")),
                weight=_dec(raw.get("weight")),
                baseline=_dec(raw.get("baseline")),
                target=_dec(raw.get("target")),
                actual=_dec(raw.get("actual")),
                raw=_dec(raw.get("raw")),
                completion=_dec(raw.get("completion")),
                contribution=_dec(raw.get("contribution", raw.get("points"))),
                stars=_int(raw.get("stars")),
                done=_int(raw.get("done")),
                planned=_int(raw.get("planned")),
                status=str(raw.get("status") or "ok"),
                text=str(raw.get("text") or ""),
                curve=str(raw.get("curve") or ""),
                kpi=str(raw.get("kpi") or ""),
            )
        )
    weeks = previous_weeks(week, HISTORY_WEEKS)
    found = {
        a.week: a
        for a in session.scalars(
            select(Appraisal).where(
                Appraisal.person_id == person.id, Appraisal.current.is_(True), Appraisal.week.in_(weeks)
            )
        )
    }
    history = tuple(
        (w, found[w].score if w in found else None, found[w].grade if w in found else "") for w in weeks
    )
    return AppraisalView(
        person_name=person.name,
        week=week,
        version=row.version,
        template=template_label(session, row.template_id),
        reason=template_why(session, row),
        score=row.score,
        grade=row.grade,
        rows=tuple(rows),
        flags=tuple(str(f) for f in (row.flags or [])),
        version_reason=row.version_reason,
        history=history,
        cap_points=_dec((row.rules or {}).get("cap")) or Decimal(150),
    )


def _sort_key(key: str) -> Callable[[TeamRow], Any]:
    if key == "score":
        return lambda r: r.score if r.score is not None else Decimal(0)
    if key == "grade":
        return lambda r: r.grade
    if key == "template":
        return lambda r: r.template
    return lambda r: r.name


def team_tables(
    session: Session,
    leader: Person,
    week: str,
    *,
    sort: str,
    descending: bool,
    member_url: Callable[[str], str],
    sort_url: Callable[[str, bool], str],
) -> list[TeamTable]:
    """One table per team ``leader`` leads: each member's score for ``week``, sorted on the server.
    Members without an appraisal sort last in either direction."""
    sort = sort if sort in SORTS else "score"
    tables = []
    for team in led_teams(session, leader):
        members = session.scalars(
            select(Person).where(Person.team_id == team.id, Person.active.is_(True)).order_by(Person.id)
        ).all()
        rows = []
        for member in members:
            a = current_appraisal(session, member.id, week)
            held = a is not None and a.status == "held"  # data missing: no score yet (issue 16)
            rows.append(
                TeamRow(
                    person_id=member.id,
                    name=member.name,
                    role=member.role,
                    score=a.score if a and not held else None,
                    grade="数据缺失" if held else (a.grade if a else ""),
                    template=template_label(session, a.template_id) if a else "",
                    url=member_url(member.id),
                )
            )
        ranked = [r for r in rows if sort == "name" or r.score is not None]
        scored = sorted(ranked, key=_sort_key(sort), reverse=descending)
        unscored = [r for r in rows if r not in ranked]
        links = {key: sort_url(key, not descending if key == sort else key == "score") for key in SORTS}
        tables.append(TeamTable(team.name, week, tuple(scored + unscored), sort, descending, links))
    return tables
