"""Number formatting for people: values in the KPI's unit, ratios as percent, week labels."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

WHOLE_UNITS = frozenset({"件", "人", "单", "次", "个"})  # counts: shown as whole numbers


def value(v: Decimal | float | None, unit: str = "") -> str:
    """3.0 with unit % -> "3.00 %"; 12345.6 with unit 元 -> "12,345.60 元"; 967.2 with unit 件 ->
    "967 件" (a count is whole; half rounds up); None -> "—"."""
    if v is None:
        return "—"
    d = Decimal(str(v))
    if unit in WHOLE_UNITS:
        return f"{int(d.quantize(Decimal(1), ROUND_HALF_UP)):,} {unit}"
    if unit == "%":
        return f"{d.quantize(Decimal('0.01'), ROUND_HALF_UP)} %"
    if d == d.to_integral_value() and abs(d) >= 1000:
        text = f"{int(d):,}"
    elif abs(d) >= 1000:
        text = f"{d.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    else:
        q = d.quantize(Decimal("0.01"), ROUND_HALF_UP)
        text = f"{q.normalize():f}" if q == q.to_integral_value() else f"{q}"
    return f"{text} {unit}".rstrip() if unit else text


def percent(ratio: Decimal | float | None, digits: int = 0) -> str:
    """0.8333 -> "83 %"; None -> "暂无数据"."""
    if ratio is None:
        return "暂无数据"
    q = Decimal(1).scaleb(-digits)
    return f"{(Decimal(str(ratio)) * 100).quantize(q, ROUND_HALF_UP)} %"


def arrow(baseline: Decimal | None, target: Decimal | None, unit: str = "") -> str:
    """ "3.00 % → 3.06 %", the form every card that shows a target uses."""
    return f"{value(baseline, unit)} → {value(target, unit)}"
