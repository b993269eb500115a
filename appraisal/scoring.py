"""Score one person's week under one template: Σ weight × capped completion, grade, per-item rows.

- A template KPI with no plan item (or no rating) counts 0 and is flagged.
- Every plan item is its own row. Several plan items on one KPI share its weight equally; each
  metric item has its own completion; the items of one rating or checklist KPI share the KPI's
  one completion (the stars, or tasks done ÷ the items' planned tasks added up).
- Completion is computed wherever baseline, target and actual exist, also on rows that count 0
  points (outside the template, excluded on appeal).
- Plan items on KPIs outside the template are shown with weight 0 and flagged.
- An item excluded on appeal drops out and the remaining KPI weights are rescaled to 100;
  a corrected value (accepted appeal) replaces the actual (stars / tasks done for
  non-metric KPIs). Both are flagged on the row.
- Bonus / penalty items add their points within the template's range; the total is kept
  within [0, cap] and to the database's 8 decimal places, so a stored score and its grade
  always agree. Nothing else is rounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from appraisal.completion import (
    HUNDRED,
    ZERO,
    CompletionUndefined,
    bounded,
    checklist_completion,
    completion,
    rating_completion,
)
from appraisal.templates import Template

SCORE_PLACES = Decimal("1e-8")


@dataclass(frozen=True)
class KpiInfo:
    key: str
    name: str = ""
    unit: str = ""
    direction: str = "up"  # up | down
    kind: str = "metric"  # metric | rating | checklist

    @property
    def label(self) -> str:
        return self.name or self.key


@dataclass(frozen=True)
class ItemInput:
    """One plan item with its actual value for the week (None: no data)."""

    kpi: str
    text: str = ""
    scope: str = "shop"
    baseline: Decimal | None = None
    target: Decimal | None = None
    actual: Decimal | None = None
    item_id: int | None = None


@dataclass(frozen=True)
class RatingInput:
    """A non-metric KPI's input: stars (rating) or done / planned (checklist)."""

    stars: int | None = None
    done: int | None = None
    planned: int | None = None


@dataclass(frozen=True)
class Row:
    kpi: str
    name: str
    unit: str
    direction: str
    kind: str
    text: str
    scope: str
    weight: Decimal  # effective points out of 100
    baseline: Decimal | None = None
    target: Decimal | None = None
    actual: Decimal | None = None
    stars: int | None = None
    done: int | None = None
    planned: int | None = None
    raw: Decimal | None = None  # completion before floor, curve and cap
    completion: Decimal | None = None  # the completion that counts; None = no data (counts 0)
    contribution: Decimal = ZERO
    status: str = "ok"  # ok | missing | unplanned | excluded | outside
    curve: str = ""  # the curve's description when one applied
    flags: tuple[str, ...] = ()
    item_id: int | None = None  # the plan item; None for a template KPI with no plan item

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (Decimals as exact strings), the shape frozen in ``appraisals.items``."""
        out: dict[str, Any] = {}
        for name, value in self.__dict__.items():
            if isinstance(value, Decimal):
                out[name] = _text(value)
            elif isinstance(value, tuple):
                out[name] = list(value)
            else:
                out[name] = value
        return out


@dataclass(frozen=True)
class AdjustmentRow:
    kpi: str
    name: str
    count: Decimal
    points: Decimal  # after the template's range
    per: Decimal
    low: Decimal
    high: Decimal

    def to_dict(self) -> dict[str, Any]:
        return {k: _text(v) if isinstance(v, Decimal) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Result:
    template_id: str
    score: Decimal
    grade: str
    rows: tuple[Row, ...]
    adjustments: tuple[AdjustmentRow, ...] = ()
    flags: tuple[str, ...] = field(default=())


def _text(value: Decimal) -> str:
    """Exact, as stored: no exponent, every digit kept."""
    return f"{value:f}"


def _show(value: Decimal) -> str:
    """For a sentence people read: at most two decimals, no trailing zeros."""
    return f"{value.quantize(Decimal('0.01'), ROUND_HALF_UP).normalize():f}"


def _num(value: Decimal | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:f}{' ' + unit if unit else ''}"


def _metric_row(
    template: Template, kpi: KpiInfo, item: ItemInput, weight: Decimal, corrected: Decimal | None
) -> Row:
    base: dict[str, Any] = {
        "kpi": kpi.key,
        "name": kpi.label,
        "unit": kpi.unit,
        "direction": kpi.direction,
        "kind": kpi.kind,
        "text": item.text,
        "scope": item.scope,
        "weight": weight,
        "baseline": item.baseline,
        "target": item.target,
        "item_id": item.item_id,
    }
    flags: list[str] = []
    actual = item.actual
    if corrected is not None:
        flags.append(
            f"{kpi.label}：申诉后实际值更正为 {_num(corrected, kpi.unit)}（原 {_num(actual, kpi.unit)}）"
        )
        actual = corrected
    base["actual"] = actual
    if item.baseline is None or item.target is None:
        flags.append(f"{kpi.label}：计划项缺少基线或目标，计 0 分")
        return Row(**base, status="missing", flags=tuple(flags))
    if actual is None:
        flags.append(f"{kpi.label}：本周没有数据，计 0 分")
        return Row(**base, status="missing", flags=tuple(flags))
    try:
        raw = completion(item.baseline, item.target, actual, kpi.direction)
    except CompletionUndefined as exc:
        flags.append(f"{kpi.label}：{exc}，计 0 分")
        return Row(**base, status="missing", flags=tuple(flags))
    return _scored(template, kpi, base, raw, flags)


def _scored(template: Template, kpi: KpiInfo, base: dict[str, Any], raw: Decimal, flags: list[str]) -> Row:
    curve = template.curves.get(kpi.key)
    counted = bounded(raw, cap=template.cap, curve=curve, allow_negative=template.allow_negative)
    if raw < 0 and not template.allow_negative:
        flags.append(f"{kpi.label}：反向变化，按 0 计")
    if raw > template.cap:
        flags.append(f"{kpi.label}：完成度超过封顶 {_pct(template.cap)}，按封顶计")
    return Row(
        **base,
        raw=raw,
        completion=counted,
        contribution=base["weight"] * counted,
        curve=curve.describe() if curve is not None and curve.apply(raw) != raw else "",
        flags=tuple(flags),
    )


def _pct(ratio: Decimal) -> str:
    return f"{(ratio * HUNDRED).normalize():f} %"


def _rating_row(
    template: Template, kpi: KpiInfo, rating: RatingInput | None, weight: Decimal, corrected: Decimal | None
) -> Row:
    base: dict[str, Any] = {
        "kpi": kpi.key,
        "name": kpi.label,
        "unit": kpi.unit,
        "direction": kpi.direction,
        "kind": kpi.kind,
        "text": "",
        "scope": "",
        "weight": weight,
    }
    flags: list[str] = []
    stars = rating.stars if rating else None
    done = rating.done if rating else None
    planned = rating.planned if rating else None
    if corrected is not None:
        old = stars if kpi.kind == "rating" else done
        flags.append(f"{kpi.label}：申诉后更正为 {_text(corrected)}（原 {old if old is not None else '—'}）")
        if kpi.kind == "rating":
            stars = int(corrected)
        else:
            done = int(corrected)
    base.update(stars=stars, done=done, planned=planned)
    try:
        if kpi.kind == "rating":
            if stars is None:
                raise CompletionUndefined("本周尚未评分")
            raw = rating_completion(stars, template.ratings)
        else:
            if done is None or planned is None:
                raise CompletionUndefined("本周没有登记完成情况")
            raw = checklist_completion(done, planned)
    except CompletionUndefined as exc:
        flags.append(f"{kpi.label}：{exc}，计 0 分")
        return Row(**base, status="missing", flags=tuple(flags))
    return _scored(template, kpi, base, raw, flags)


def _uncounted(template: Template, kpi: KpiInfo, item: ItemInput, status: str, flag: str) -> Row:
    """A row worth 0 points (outside the template, excluded on appeal) with its completion computed
    all the same where baseline, target and actual exist."""
    raw = completion_or_none(item, kpi.direction)
    counted = (
        None
        if raw is None
        else bounded(
            raw, cap=template.cap, curve=template.curves.get(kpi.key), allow_negative=template.allow_negative
        )
    )
    return Row(
        kpi=kpi.key,
        name=kpi.label,
        unit=kpi.unit,
        direction=kpi.direction,
        kind=kpi.kind,
        text=item.text,
        scope=item.scope if item.text else "",
        weight=ZERO,
        baseline=item.baseline,
        target=item.target,
        actual=item.actual,
        raw=raw,
        completion=counted,
        status=status,
        flags=(flag,),
        item_id=item.item_id,
    )


def completion_or_none(item: ItemInput, direction: str) -> Decimal | None:
    if item.baseline is None or item.target is None or item.actual is None:
        return None
    try:
        return completion(item.baseline, item.target, item.actual, direction)
    except CompletionUndefined:
        return None


def _per_item(row: Row, items: Sequence[ItemInput]) -> list[Row]:
    """A rating / checklist KPI's one row, split over its plan items: each item its own row with an
    equal share of the weight and the KPI's completion; the flags stay on the first."""
    if not items:
        return [row]
    share = row.weight / len(items)
    out = []
    for n, item in enumerate(items):
        out.append(
            replace(
                row,
                text=item.text,
                scope=item.scope,
                target=item.target,
                item_id=item.item_id,
                weight=share,
                contribution=share * row.completion if row.completion is not None else ZERO,
                flags=row.flags if n == 0 else (),
            )
        )
    return out


def score(
    template: Template,
    kpis: Mapping[str, KpiInfo],
    items: Sequence[ItemInput],
    ratings: Mapping[str, RatingInput] | None = None,
    *,
    counts: Mapping[str, Decimal] | None = None,
    excluded: frozenset[str] | set[str] = frozenset(),
    corrections: Mapping[str, Decimal] | None = None,
) -> Result:
    """Score a week. ``ratings`` are the non-metric KPIs' inputs, ``counts`` the bonus / penalty
    counts by KPI key, ``excluded`` / ``corrections`` the accepted appeals by KPI key."""
    ratings = ratings or {}
    counts = counts or {}
    corrections = corrections or {}

    def info(key: str) -> KpiInfo:
        return kpis.get(key) or KpiInfo(key)

    by_kpi: dict[str, list[ItemInput]] = {}
    for item in items:
        by_kpi.setdefault(item.kpi, []).append(item)

    def dropped(key: str) -> bool:
        return key in excluded

    kept = sum((w for k, w in template.weights.items() if not dropped(k)), ZERO)
    scale = HUNDRED / kept if kept else ZERO

    rows: list[Row] = []
    flags: list[str] = []
    for key, weight in template.weights.items():
        kpi = info(key)
        if dropped(key):
            for item in by_kpi.get(key) or [ItemInput(key)]:
                flag = f"{kpi.label}：申诉后剔除，不计分（其余指标权重按比例放大到 100）"
                rows.append(_uncounted(template, kpi, item, "excluded", flag))
            continue
        effective = weight * scale
        if kpi.kind in ("rating", "checklist"):
            row = _rating_row(template, kpi, ratings.get(key), effective, corrections.get(key))
            rows.extend(_per_item(row, by_kpi.get(key, [])))
            continue
        planned_items = by_kpi.get(key, [])
        if not planned_items:
            rows.append(
                Row(
                    kpi=key,
                    name=kpi.label,
                    unit=kpi.unit,
                    direction=kpi.direction,
                    kind=kpi.kind,
                    text="",
                    scope="",
                    weight=effective,
                    status="unplanned",
                    flags=(f"{kpi.label}：模板要求的指标本周没有计划项，计 0 分",),
                )
            )
            continue
        share = effective / len(planned_items)
        for item in planned_items:
            rows.append(_metric_row(template, kpi, item, share, corrections.get(key)))

    adjustment_keys = {a.kpi for a in template.adjustments}
    for item in items:
        if item.kpi in template.weights or item.kpi in adjustment_keys:
            continue
        kpi = info(item.kpi)
        rows.append(
            _uncounted(template, kpi, item, "outside", f"{kpi.label}：不在模板“{template.label}”内，不计分")
        )

    adjustments = tuple(
        AdjustmentRow(
            kpi=a.kpi,
            name=a.name or info(a.kpi).label,
            count=counts.get(a.kpi, ZERO),
            points=a.total(counts.get(a.kpi, ZERO)),
            per=a.points,
            low=a.low,
            high=a.high,
        )
        for a in template.adjustments
    )
    total = sum((r.contribution for r in rows), ZERO) + sum((a.points for a in adjustments), ZERO)
    ceiling = template.cap * HUNDRED
    if not kept:
        flags.append("所有指标都已剔除，本周不计分")
    clamped = min(max(total, ZERO), ceiling)
    if clamped != total:
        flags.append(f"总分 {_show(total)} 超出 0–{_show(ceiling)}，按边界计")
    final = clamped.quantize(SCORE_PLACES, ROUND_HALF_UP)
    for row in rows:
        flags.extend(row.flags)
    return Result(template.id, final, template.grade(final), tuple(rows), adjustments, tuple(flags))
