"""A plan's items: as written (the form's rows, a text plan's lines), checked against the team's KPIs
with each target resolved (``validate``), and the baselines they start from, including a baseline
fixed later from the first value that arrives (``fill_baselines``, run by the appraisal).

Pure but for reading metric samples (and ``fill_baselines``' writes); the chat side is handlers/plans.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from appraisal.targets import TargetError, parse_target, resolve
from handlers.workdays import week_dates
from storage.models import AuditLog, Kpi, MetricSample, Person, Plan, PlanItem

MAX_ITEMS = 20
MAX_TEXT = 200
MAX_SCOPE = 100
MAX_LINE = 300  # one line of a text plan: the item, its KPI, target and scope


@dataclass(frozen=True)
class Draft:
    """One item as the person wrote it, before validation. ``where`` labels it in error messages."""

    where: str
    text: str
    kpi: str
    target: str
    scope: str = ""
    section: str = ""
    causes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resolved:
    draft: Draft
    kpi: Kpi
    scope: str
    baseline: Decimal | None
    target: Decimal | None


def find_kpi(kpis: Sequence[Kpi], word: str) -> Kpi | None:
    """A KPI by key (any case) or by its Chinese name."""
    low = word.strip().lower()
    return next((k for k in kpis if k.key.lower() == low or k.name == word.strip()), None)


def latest_value(session: Session, metric: str, scope: str, day: date) -> Decimal | None:
    """The KPI's latest known value on or before ``day`` (the baseline at submission)."""
    return session.scalar(
        select(MetricSample.value)
        .where(MetricSample.metric == metric, MetricSample.scope == scope, MetricSample.day <= day)
        .order_by(MetricSample.day.desc())
        .limit(1)
    )


def validate(
    drafts: Sequence[Draft],
    kpis: Sequence[Kpi],
    baseline_of: Callable[[Kpi, str], Decimal | None],
) -> tuple[list[Resolved], dict[str, dict[str, str]]]:
    """Resolve every item or collect problems per item and field ("kpi", "target", "text", "scope")."""
    resolved: list[Resolved] = []
    problems: dict[str, dict[str, str]] = {}

    def problem(d: Draft, field: str, message: str) -> None:
        problems.setdefault(d.where, {})[field] = message

    if not drafts:
        problems["plan"] = {"text": "计划里至少要有一项"}
    if len(drafts) > MAX_ITEMS:
        problems["plan"] = {"text": f"一周最多 {MAX_ITEMS} 项"}
    for d in drafts:
        if not d.text.strip():
            problem(d, "text", "请写上这一项要做什么")
        elif len(d.text) > MAX_TEXT:
            problem(d, "text", f"内容太长：最多 {MAX_TEXT} 字，这一项 {len(d.text)} 字")
        if len(d.scope) > MAX_SCOPE:
            problem(d, "scope", f"范围太长（最多 {MAX_SCOPE} 字）")
        if not d.kpi.strip():
            problem(d, "kpi", "每一项都要关联一个指标")
            continue
        kpi = find_kpi(kpis, d.kpi)
        if kpi is None:
            names = "、".join(k.name for k in kpis)
            problem(d, "kpi", f"没有叫“{d.kpi}”的指标（可选：{names}）")
            continue
        scope = d.scope.strip().lstrip("@") or kpi.scope or "shop"
        if kpi.kind == "rating":
            resolved.append(Resolved(d, kpi, scope, None, None))  # the leader rates it; no target to write
            continue
        if not d.target.strip():
            problem(d, "target", "请写目标，例如 +2pp、+2%、+0.5 或 =3.5")
            continue
        try:
            spec = parse_target(d.target)
            if kpi.kind == "checklist":
                if spec.kind != "level" or spec.amount != spec.amount.to_integral_value() or spec.amount < 1:
                    raise TargetError(f"{kpi.name}的目标写计划完成的任务数，例如 =5")
                resolved.append(Resolved(d, kpi, scope, Decimal(0), spec.amount))
                continue
            baseline = baseline_of(kpi, scope)
            if baseline is None:
                # No data for this KPI and scope yet (a new SKU, an activity venue): check what can be
                # checked now; the baseline is fixed from the first value that arrives (fill_baselines).
                if spec.kind == "pp" and kpi.unit != "%":
                    resolve(spec, Decimal(1), unit=kpi.unit, direction=kpi.direction, kpi_name=kpi.name)
                resolved.append(Resolved(d, kpi, scope, None, None))
                continue
            target = resolve(spec, baseline, unit=kpi.unit, direction=kpi.direction, kpi_name=kpi.name)
        except TargetError as exc:
            problem(d, "target", str(exc))
            continue
        resolved.append(Resolved(d, kpi, scope, baseline, target))
    return resolved, problems


# ---------------------------------------------------------------- text plans


def parse_text_plan(text: str) -> tuple[list[Draft], list[str]]:
    """CONTRACT.md "Plans written as text": each line after the first is `事项 指标 目标 [@范围]`."""
    drafts: list[Draft] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if number == 1 or not line.strip():
            continue
        if len(line.strip()) > MAX_LINE:
            errors.append(f"第{number}行：最多 {MAX_LINE} 字，这一行 {len(line.strip())} 字")
            continue
        tokens = line.split()
        scope = ""
        if tokens and tokens[-1].startswith("@") and len(tokens[-1]) > 1:
            scope = tokens.pop()[1:]
        if len(tokens) < 3:
            errors.append(f"第{number}行：需要“事项 指标 目标”三部分，例如：优化详情页首屏 支付转化率 +2pp")
            continue
        drafts.append(Draft(f"第{number}行", " ".join(tokens[:-2]), tokens[-2], tokens[-1], scope))
    return drafts, errors


def fill_baselines(session: Session, now: datetime) -> int:
    """Fix pending baselines: the first value of the item's metric and scope on or after the day the
    plan was filed becomes its baseline, and the target resolves against it. Returns items filled."""
    pending = session.execute(
        select(PlanItem, Plan, Kpi)
        .join(Plan, PlanItem.plan_id == Plan.id)
        .join(Kpi, PlanItem.kpi_key == Kpi.key)
        .where(PlanItem.baseline.is_(None), Plan.current.is_(True), Kpi.metric.is_not(None))
    ).all()
    filled = 0
    for item, plan, kpi in pending:
        filed = plan.submitted_at.astimezone(ZoneInfo(plan.person.team.timezone)).date()
        first = session.scalar(
            select(MetricSample.value)
            .where(
                MetricSample.metric == kpi.metric, MetricSample.scope == item.scope, MetricSample.day >= filed
            )
            .order_by(MetricSample.day)
            .limit(1)
        )
        if first is None:
            continue
        try:
            target = resolve(
                parse_target(item.target_text),
                first,
                unit=kpi.unit,
                direction=kpi.direction,
                kpi_name=kpi.name,
            )
        except TargetError as exc:
            item.note = (item.note + f"\n目标无法按首个数据确定：{exc}").strip()
            item.baseline = first
            continue
        item.baseline, item.target = first, target
        session.add(
            AuditLog(
                at=now,
                actor="system",
                action="plan.baseline",
                subject=f"item {item.id}",
                detail={"baseline": str(first), "target": str(target)},
            )
        )
        filled += 1
    return filled


@dataclass(frozen=True)
class KeptBaseline:
    kpi_name: str
    scope: str
    kept: Decimal
    latest: Decimal
    version: int


def resubmission_baselines(
    session: Session, person: Person, week: str, today: date, kept: list[KeptBaseline]
) -> Callable[[Kpi, str], Decimal | None] | None:
    """Which value a re-submission takes (docs/appraisal.md "Baselines"): an item on a KPI and scope
    the week's earlier versions had keeps their baseline; a new one takes the latest value dated
    before the week, never a sample from inside the week. None for a first submission (the latest
    value at submission). Where the kept baseline differs from the latest value, ``kept`` is told."""
    versions = list(
        session.scalars(
            select(Plan).where(Plan.person_id == person.id, Plan.week == week).order_by(Plan.version)
        )
    )
    if not versions:
        return None
    earlier: dict[tuple[str, str], tuple[Decimal, int]] = {}
    for plan in versions:
        for item in plan.items:
            if item.baseline is not None:
                earlier.setdefault((item.kpi_key, item.scope), (item.baseline, plan.version))
    before_week = week_dates(week)[0] - timedelta(days=1)

    def baseline_of(kpi: Kpi, scope: str) -> Decimal | None:
        if not kpi.metric:
            return None
        if (kpi.key, scope) in earlier:
            value, version = earlier[(kpi.key, scope)]
            latest = latest_value(session, kpi.metric, scope, today)
            if latest is not None and latest != value:
                kept.append(KeptBaseline(kpi.name, scope, value, latest, version))
            return value
        return latest_value(session, kpi.metric, scope, before_week)

    return baseline_of
