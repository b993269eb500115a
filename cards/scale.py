"""Weights and chart axes, each from one pure function, so the card, the page and the chart agree.

``weight_text`` is how every surface writes a KPI's weight ("60", "33.3"). ``item_axis`` is the
vertical scale of a plan item's chart: it runs from the baseline to the level the cap allows
(``baseline + cap × (target − baseline)``), with the week's values in view, and its marks carry
the very labels the progress card and the page print (``fmt.value`` in the KPI's unit).
``score_axis`` is the score history's scale: 0 to the template's cap in points, labelled "分".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from cards import format as fmt
from cards.charts import Mark, nice_range, nice_step

# appraisal.completion.DEFAULT_CAP (cards/ does not import appraisal/): a KPI counts up to 150 %
DEFAULT_CAP = Decimal("1.5")
HEADROOM = 0.08  # of the span, both sides: a point on the target is not drawn on the frame


def weight_text(weight: Decimal | float | int | None) -> str:
    """A weight as people read it everywhere: 60 -> "60", 33.333 -> "33.3", None -> "—"."""
    if weight is None:
        return "—"
    d = Decimal(str(weight)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return f"{d:f}".removesuffix(".0")


@dataclass(frozen=True)
class Axis:
    lo: float
    hi: float
    step: float
    unit: str  # written above the axis as "单位：…" ("" for none)
    marks: tuple[Mark, ...] = ()

    def mark(self, kind: str) -> Mark | None:
        return next((m for m in self.marks if m.kind == kind), None)


def cap_level(baseline: Decimal, target: Decimal, cap: Decimal = DEFAULT_CAP) -> Decimal:
    """The value at which the item's completion reaches the cap (works for "down" KPIs too)."""
    return baseline + cap * (target - baseline)


def item_axis(
    baseline: Decimal | None,
    target: Decimal | None,
    unit: str,
    values: Sequence[Decimal | float | None] = (),
    *,
    cap: Decimal = DEFAULT_CAP,
) -> Axis:
    """The scale of one plan item's chart, and its labelled baseline, target and cap lines."""
    marks: list[Mark] = []
    if baseline is not None:
        marks.append(Mark("baseline", f"基线 {fmt.value(baseline, unit)}", float(baseline)))
    if target is not None:
        marks.append(Mark("target", f"目标 {fmt.value(target, unit)}", float(target)))
    if baseline is not None and target is not None and target != baseline:
        level = cap_level(baseline, target, cap)
        marks.append(Mark("cap", f"封顶 {fmt.percent(cap)}：{fmt.value(level, unit)}", float(level)))
    known = [float(v) for v in values if v is not None] + [m.value for m in marks]
    if not known:
        return Axis(0.0, 1.0, nice_step(0.25), unit, ())
    room = (max(known) - min(known)) * HEADROOM
    lo, hi, step = nice_range(min(known) - room, max(known) + room)
    return Axis(lo, hi, step, unit, tuple(marks))


def score_axis(cap_points: Decimal | int = 150) -> Axis:
    """The score history's scale: 0 to the cap in points (a score never exceeds it), labelled; 100
    is marked by a line only (its tick says 100, and a label there would sit on the last bar)."""
    top = float(cap_points)
    step = nice_step(top / 4)
    hi = -(-top // step) * step  # the cap rounded up to a tick
    return Axis(
        0.0,
        hi,
        step,
        "分",
        (Mark("target", "", 100.0), Mark("cap", f"封顶 {weight_text(top)} 分", top)),
    )
