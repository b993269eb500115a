"""One explanation of an appraisal row, for the card and the web page alike (pure).

A stored row (``scoring.Row.to_dict()``) becomes the sentence people read: the completion with
its formula filled in, what the curve or the cap did, or why the row counts 0. The card and the
page both call :func:`explain`, so they never disagree on a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from cards import format as fmt

# How several plan items on one KPI combine: stated on the card, the page and in docs/appraisal.md.
COMBINE_RULE = (
    "同一指标下有多个计划项时，各项平分该指标的权重；指标类各项按自己的数据分别计算完成度，"
    "评分类和清单类共用一个完成度（星级，或完成任务数 ÷ 各项计划任务数之和）。"
)


def _dec(value: object) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def formula_number(v: Decimal, unit: str = "") -> str:
    """A number inside a formula: 2–4 decimals for fractional or percent values ("3.00", "1.104"),
    thousands separators for large whole ones ("130,000")."""
    if unit != "%" and v == v.to_integral_value():
        return f"{int(v):,}"
    q = v.quantize(Decimal("0.0001")).normalize()
    exponent = q.as_tuple().exponent
    places = max(2, -exponent if isinstance(exponent, int) else 2)
    return f"{v:,.{places}f}"


def _completion_text(row: Mapping[str, object], raw: Decimal | None) -> str | None:
    """The completion sentence; None when the row has no completion (the caller says why)."""
    kind, unit = str(row.get("kind", "metric")), str(row.get("unit", ""))
    if kind == "rating":
        stars = row.get("stars")
        return None if stars is None or raw is None else f"主管评分 {stars} 星 → {fmt.percent(raw)}"
    if kind == "checklist":
        done, planned = row.get("done"), row.get("planned")
        return None if raw is None else f"完成 {done} / 计划 {planned} = {fmt.percent(raw)}"
    b, t, a = _dec(row.get("baseline")), _dec(row.get("target")), _dec(row.get("actual"))
    if b is None or t is None or a is None or raw is None:
        return None
    n = lambda v: formula_number(v, unit)  # noqa: E731 - a local shorthand for the formula below
    if row.get("direction") == "down":
        return f"({n(b)} − {n(a)}) / ({n(b)} − {n(t)}) = {fmt.percent(raw)}"
    return f"({n(a)} − {n(b)}) / ({n(t)} − {n(b)}) = {fmt.percent(raw)}"


def _why_zero(row: Mapping[str, object]) -> str:
    kind = str(row.get("kind", "metric"))
    if kind == "rating":
        return "尚未评分，计 0"
    if kind == "checklist":
        return "没有登记完成情况，计 0"
    if _dec(row.get("baseline")) is None or _dec(row.get("target")) is None:
        return "缺少基线或目标，计 0"
    if _dec(row.get("actual")) is None:
        return "暂无数据，计 0"
    return "无法计算完成度，计 0"


def explain(row: Mapping[str, object]) -> str:
    """The row's completion with its formula filled in, e.g. "(3.05 − 3.00) / (3.06 − 3.00) = 83 %"."""
    status = row.get("status")
    raw, counted = _dec(row.get("raw")), _dec(row.get("completion"))
    if raw is None:
        raw = counted  # a row stored without its raw completion (older exports): the counted one
    text = _completion_text(row, raw)
    if status == "excluded":
        return "申诉后剔除，不计分" + (f"（{text}）" if text else "")
    if status == "outside":
        return "不在本模板内，不计分" + (f"（{text}）" if text else "")
    if status == "unplanned":
        return "本周没有计划项，计 0"
    if text is None:
        return _why_zero(row)
    if raw is None or counted is None or counted == raw:
        return text
    if raw < 0 and counted == 0 and not row.get("curve"):
        return f"{text} → 反向变化，按 0 % 计"
    if row.get("curve") and (counted < raw or raw < 0):
        return f"{text} → 按曲线计 {fmt.percent(counted)}"
    return f"{text} → 封顶 {fmt.percent(counted)}"
