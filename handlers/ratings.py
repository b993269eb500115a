"""Leader ratings (评分): stars for a rating KPI, done / planned tasks for a checklist KPI.

A leader rates a member's week from a card (or its signed page); the run scores the rating KPIs
from these rows. Each save is audited with the value before and after.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from appraisal.selection import week_days, week_of
from cards.builders import KpiChoice, rating_form
from cards.model import Card, Markdown, Note
from handlers.appraisal_chat import acting_person, led_team, team_today
from handlers.appraisals import AppraisalError
from handlers.inbound import Inbound
from handlers.router import Context, error_card, router
from storage.models import AuditLog, Kpi, Person, Rating, Team

# ---------------------------------------------------------------- chat: ratings


def _rating_kpis(session: Session) -> list[Kpi]:
    return list(session.scalars(select(Kpi).where(Kpi.kind.in_(("rating", "checklist"))).order_by(Kpi.key)))


def _rating_card(ctx: Context, team: Team, error: str = "") -> Card:
    today = team_today(team, ctx.now)
    this_week, last_week = week_of(today), week_of(today - timedelta(days=7))
    members = [
        KpiChoice(p.id, p.name)
        for p in ctx.session.scalars(
            select(Person).where(Person.team_id == team.id, Person.active.is_(True)).order_by(Person.id)
        )
    ]
    kpis = [KpiChoice(k.key, k.name, k.unit) for k in _rating_kpis(ctx.session)]
    return rating_form(
        week=this_week,
        weeks=[this_week, last_week],
        people=members,
        kpis=kpis,
        error=error,
        link=ctx.links(acting_person(ctx).id, "rating-form", this_week),
    )


@router.command("评分", "rate")
def rate_command(event: Inbound, ctx: Context) -> Card:
    try:
        return _rating_card(ctx, led_team(ctx, event))
    except AppraisalError as exc:
        return error_card(str(exc))


def _small_int(raw: object, what: str, low: int, high: int) -> int | None:
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise AppraisalError(f"{what}应为整数，不是“{text}”") from None
    if not low <= value <= high:
        raise AppraisalError(f"{what}应在 {low}–{high} 之间")
    return value


@router.action("appraisal.rate")
def rate_action(event: Inbound, ctx: Context) -> Card:
    me = acting_person(ctx)
    try:
        team = led_team(ctx, event)
    except AppraisalError as exc:
        return error_card(str(exc))
    values = event.values
    person = ctx.session.get(Person, str(values.get("person", "")))
    if person is None or person.team_id != team.id:
        return _rating_card(ctx, team, error="请选择本团队的员工")
    kpi = ctx.session.get(Kpi, str(values.get("kpi", "")))
    if kpi is None or kpi not in _rating_kpis(ctx.session):
        return _rating_card(ctx, team, error="请选择评分类或清单类指标")
    week = str(values.get("week", "")).strip()
    try:
        week_days(week)
        stars = _small_int(values.get("stars"), "星级", 1, 5)
        done = _small_int(values.get("done"), "完成任务数", 0, 10000)
        planned = _small_int(values.get("planned"), "计划任务数", 1, 10000)
    except (AppraisalError, ValueError) as exc:
        return _rating_card(ctx, team, error=str(exc))
    if kpi.kind == "rating" and stars is None:
        return _rating_card(ctx, team, error=f"{kpi.name}是评分类指标，请选择 1–5 星")
    if kpi.kind == "checklist" and done is None:
        return _rating_card(ctx, team, error=f"{kpi.name}是清单类指标，请填写完成任务数")
    row = ctx.session.get(Rating, (person.id, week, kpi.key))
    before = {"stars": row.stars, "done": row.done, "planned": row.planned} if row else None
    if row is None:
        row = Rating(person_id=person.id, week=week, kpi_key=kpi.key, by=me.id, at=ctx.now)
        ctx.session.add(row)
    row.stars = stars if kpi.kind == "rating" else None
    row.done = done if kpi.kind == "checklist" else None
    row.planned = planned if kpi.kind == "checklist" else None
    row.by, row.at = me.id, ctx.now
    after = {"stars": row.stars, "done": row.done, "planned": row.planned}
    ctx.session.add(
        AuditLog(
            at=ctx.now,
            actor=me.id,
            action="appraisal.rate",
            subject=f"{person.id}/{week}",
            detail={"kpi": kpi.key, "from": before, "to": after},
        )
    )
    shown = (
        f"{stars} 星" if kpi.kind == "rating" else f"完成 {done}" + (f" / 计划 {planned}" if planned else "")
    )
    return Card(
        title="已保存",
        theme="green",
        blocks=(Markdown(f"{person.name} · {week} · {kpi.name}：{shown}"), Note("考核运行时按此计分。")),
        toast="已保存",
    )
