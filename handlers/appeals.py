"""Appeals (申诉): a person questions one item of their current result; their leader corrects
the value, excludes the item or rejects the appeal with a reason.

An accepted appeal freezes a new version (``handlers/appraisal_runs.freeze``) whose reason says
what changed; the correction carries into every later recompute of that week
(``WeekInputs.corrections``). Both sides are told by card; every step is audited.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cards.builders import AppealView, KpiChoice, appeal_form, appeal_result, appeal_review
from cards.model import Card
from handlers.appraisal_chat import acting_person, done_card, notify, require_leader_of
from handlers.appraisal_runs import appraisal_card_for, freeze
from handlers.appraisals import AppraisalError
from handlers.events_out import emit
from handlers.inbound import Inbound
from handlers.router import Context, PermissionDenied, error_card, router
from storage.models import Appeal, Appraisal, AuditLog, Person, Team

MAX_NOTE = 500  # characters in an appeal note or a reply
MAX_VALUE = Decimal("1e12")  # a corrected value beyond this is a typo


# ---------------------------------------------------------------- chat: appeals


def _appraisal(ctx: Context, raw: object) -> Appraisal:
    try:
        row = ctx.session.get(Appraisal, int(str(raw)))
    except ValueError:
        row = None
    if row is None:
        raise AppraisalError("找不到这份考核结果。")
    return row


def _choices(row: Appraisal) -> list[KpiChoice]:
    seen: dict[str, KpiChoice] = {}
    for item in row.items or []:
        if item.get("kind") == "adjustment" or item.get("status") in ("outside", "excluded"):
            continue
        seen.setdefault(
            item["kpi"],
            KpiChoice(item["kpi"], str(item.get("name") or item["kpi"]), str(item.get("unit", ""))),
        )
    return list(seen.values())


def _own_current(ctx: Context, row: Appraisal) -> None:
    if row.person_id != acting_person(ctx).id:
        raise PermissionDenied("只能对自己的考核结果申诉。")
    if not row.current:
        raise AppraisalError("这份结果已有新版本，请在最新的考核卡片上申诉（发送“考核”查看）。")


@router.action("appraisal.appeal")
def appeal_open(event: Inbound, ctx: Context) -> Card:
    try:
        row = _appraisal(ctx, event.values.get("appraisal"))
        _own_current(ctx, row)
    except AppraisalError as exc:
        return error_card(str(exc))
    kpi = str(event.values.get("kpi", ""))
    return appeal_form(
        appraisal_id=row.id, week=row.week, items=_choices(row), kpi=kpi, link=_appeal_link(ctx, row, kpi)
    )


# Forms with text inputs also open as signed web pages (WeCom cards cannot hold text inputs).
def _appeal_link(ctx: Context, row: Appraisal, kpi: str) -> str:
    extra = {"appraisal": str(row.id), **({"kpi": kpi} if kpi else {})}
    return ctx.links(row.person_id, "appeal-form", row.week, **extra)


def _review_link(ctx: Context, leader: Person | None, appeal: Appeal, week: str) -> str:
    return ctx.links(leader.id, "appeal-review", week, appeal=str(appeal.id)) if leader else ""


def appeal_event(appeal: Appeal, row: Appraisal) -> dict[str, Any]:
    """An appeal as an outgoing webhook's ``data``."""
    return {
        "id": appeal.id,
        "employee": row.person_id,
        "team": row.team_id,
        "week": row.week,
        "appraisal_version": row.version,
        "kpi": appeal.kpi_key,
        "note": appeal.note,
        "status": appeal.status,
        "excluded": bool(appeal.excluded),
        "corrected_value": float(appeal.corrected_value) if appeal.corrected_value is not None else None,
        "reply": appeal.reply or "",
        "created_at": appeal.created_at.isoformat(),
        "decided_at": appeal.decided_at.isoformat() if appeal.decided_at else None,
    }


def _appeal_view(session: Session, appeal: Appeal, row: Appraisal) -> AppealView:
    person = session.get(Person, row.person_id)
    item = next((i for i in row.items or [] if i.get("kpi") == appeal.kpi_key), {"kpi": appeal.kpi_key})
    return AppealView(
        appeal_id=appeal.id,
        person_name=person.name if person else row.person_id,
        week=row.week,
        kpi_name=str(item.get("name") or appeal.kpi_key),
        unit=str(item.get("unit", "")),
        kind=str(item.get("kind", "metric")),
        note=appeal.note,
        row=item,
        status=appeal.status,
        reply=appeal.reply,
    )


@router.action("appraisal.appeal.submit")
def appeal_submit(event: Inbound, ctx: Context) -> Card:
    me = acting_person(ctx)
    try:
        row = _appraisal(ctx, event.values.get("appraisal"))
        _own_current(ctx, row)
    except AppraisalError as exc:
        return error_card(str(exc))
    kpi = str(event.values.get("kpi", "")).strip()
    note = str(event.values.get("note", "")).strip()
    choices = _choices(row)
    fixed = kpi if "kpi" in event.values and any(c.key == kpi for c in choices) else ""

    def again(error: str) -> Card:
        return appeal_form(
            appraisal_id=row.id,
            week=row.week,
            items=choices,
            kpi=fixed,
            error=error,
            link=_appeal_link(ctx, row, fixed),
        )

    if not any(c.key == kpi for c in choices):
        return again("请选择要申诉的一项")
    if not note:
        return again("请写申诉理由（例如：数据晚到、范围写错）")
    if len(note) > MAX_NOTE:
        return again(f"申诉理由太长（{len(note)} 字，最多 {MAX_NOTE} 字）")
    open_one = ctx.session.scalar(
        select(Appeal).where(Appeal.appraisal_id == row.id, Appeal.kpi_key == kpi, Appeal.status == "open")
    )
    if open_one is not None:
        return error_card("这一项已有一条待处理的申诉，请等主管处理。", title="申诉已存在")
    appeal = Appeal(appraisal_id=row.id, kpi_key=kpi, note=note, status="open", created_at=ctx.now)
    ctx.session.add(appeal)
    ctx.session.flush()
    ctx.session.add(
        AuditLog(
            at=ctx.now,
            actor=me.id,
            action="appraisal.appeal",
            subject=f"{row.person_id}/{row.week}",
            detail={
                "appeal": appeal.id,
                "appraisal": row.id,
                "version": row.version,
                "kpi": kpi,
                "note": note,
            },
        )
    )
    emit(
        ctx.session, "appeal.created", appeal_event(appeal, row), resource=f"appeal:{appeal.id}", now=ctx.now
    )
    team = ctx.session.get(Team, row.team_id)
    leader = ctx.session.get(Person, team.leader_id) if team and team.leader_id else None
    view = _appeal_view(ctx.session, appeal, row)
    review = appeal_review(view, link=_review_link(ctx, leader, appeal, row.week))
    notify(ctx, leader, review, f"appeal:{appeal.id}:review")
    return done_card(
        f"申诉已提交 · {row.week}",
        f"你对“{view.kpi_name}”的申诉已提交给主管{f' {leader.name}' if leader else ''}，处理后会通知你。",
        toast="已提交",
    )


def _corrected(view: AppealView, raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip().replace(",", "").rstrip("%").strip())
    except InvalidOperation:
        raise AppraisalError(f"更正值“{raw}”不是数字") from None
    if not value.is_finite() or abs(value) > MAX_VALUE:
        raise AppraisalError(f"更正值“{raw}”大得不合理")
    if view.kind == "rating" and value not in {Decimal(n) for n in range(1, 6)}:
        raise AppraisalError("评分类指标的更正值应为 1–5 的整数星级")
    if view.kind == "checklist" and (value < 0 or value != value.to_integral_value()):
        raise AppraisalError("清单类指标的更正值应为完成的任务数（非负整数）")
    return value


@router.action("appraisal.appeal.decide")
def appeal_decide(event: Inbound, ctx: Context) -> Card:
    me = acting_person(ctx)
    try:
        appeal = ctx.session.get(Appeal, int(str(event.values.get("appeal", ""))))
    except ValueError:
        appeal = None
    if appeal is None:
        return error_card("找不到这条申诉。")
    row = ctx.session.get(Appraisal, appeal.appraisal_id)
    assert row is not None  # the foreign key
    require_leader_of(ctx.session, row.team_id, me)
    view = _appeal_view(ctx.session, appeal, row)
    link = _review_link(ctx, me, appeal, row.week)
    if appeal.status != "open":
        state = "接受" if appeal.status == "accepted" else "驳回"
        return error_card(
            f"这条申诉已于 {appeal.decided_at:%m-%d %H:%M} 处理（{state}）。", title="申诉已处理"
        )
    decision = str(event.values.get("decision", "")).strip()
    reply = str(event.values.get("reply", "")).strip()
    if len(reply) > MAX_NOTE:
        return appeal_review(view, error=f"回复太长（最多 {MAX_NOTE} 字）", link=link)
    if decision not in ("correct", "exclude", "reject"):
        return appeal_review(view, error="请选择处理方式", link=link)
    if decision == "reject" and not reply:
        return appeal_review(view, error="驳回时请写明理由", link=link)
    if decision == "correct":
        try:
            appeal.corrected_value = _corrected(view, str(event.values.get("value", "")))
        except AppraisalError as exc:
            return appeal_review(view, error=str(exc), link=link)
    appeal.excluded = decision == "exclude"
    appeal.status = "rejected" if decision == "reject" else "accepted"
    appeal.reply = reply
    appeal.decided_at = ctx.now
    ctx.session.flush()
    detail: dict[str, Any] = {
        "appeal": appeal.id,
        "kpi": appeal.kpi_key,
        "decision": decision,
        "reply": reply,
    }
    employee = ctx.session.get(Person, row.person_id)
    new_row = None
    if appeal.status == "accepted":
        what = (
            "剔除此项"
            if appeal.excluded
            else f"更正为 {appeal.corrected_value:f}{(' ' + view.unit) if view.unit and view.kind == 'metric' else ''}"
        )
        reason = f"申诉（{view.kpi_name}）已接受：{what}" + (f"（{reply}）" if reply else "")
        assert employee is not None
        new_row = freeze(ctx.session, employee, row.week, ctx.now, reason=reason)
        detail.update(new_version=new_row.version, score=str(new_row.score), grade=new_row.grade)
        if appeal.corrected_value is not None:
            detail["value"] = str(appeal.corrected_value)
    ctx.session.add(
        AuditLog(
            at=ctx.now,
            actor=me.id,
            action=f"appraisal.appeal.{'accept' if appeal.status == 'accepted' else 'reject'}",
            subject=f"{row.person_id}/{row.week}",
            detail=detail,
        )
    )
    emit(
        ctx.session, "appeal.decided", appeal_event(appeal, row), resource=f"appeal:{appeal.id}", now=ctx.now
    )
    decided = _appeal_view(ctx.session, appeal, row)
    result = appeal_result(
        decided, new_score=new_row.score if new_row else None, new_grade=new_row.grade if new_row else ""
    )
    notify(ctx, employee, result, f"appeal:{appeal.id}:result")
    if new_row is not None:
        notify(
            ctx,
            employee,
            appraisal_card_for(ctx.session, new_row, links=ctx.links, locale=ctx.locale),
            f"appraisal:{new_row.id}",
        )
    verdict = "已接受，已生成新版本" if new_row else "已驳回"
    body = f"{decided.person_name} 对“{decided.kpi_name}”的申诉{verdict}。"
    if new_row is not None:
        body += f"\n第 {new_row.version} 版：{new_row.score.quantize(Decimal('0.1'))} 分 {new_row.grade}"
    return done_card("申诉已处理", body, toast="已处理")
