"""Completion of one plan item: how far the actual value went from the baseline toward the target.

Ratios throughout (1.25 = 125 %), exact ``Decimal``; nothing here rounds.

- up is better:    (actual − baseline) / (target − baseline)
- down is better:  (baseline − actual) / (baseline − target)

The raw ratio is negative when the KPI moved the wrong way; :func:`bounded` turns it into
the completion that counts: floored at 0 (unless the template allows negatives), through
the template's scoring curve if the KPI has one, then capped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)

DEFAULT_CAP = Decimal("1.5")  # 150 %

# A leader's 1–5 rating as a completion. The bands line up with the default grades:
# 5 → S (120 %), 4 → A (100 %), 3 → B (80 %), 2 → C (60 %), 1 → D (0 %).
DEFAULT_RATING_SCALE: Mapping[int, Decimal] = {
    1: Decimal(0),
    2: Decimal("0.6"),
    3: Decimal("0.8"),
    4: Decimal(1),
    5: Decimal("1.2"),
}


class CompletionUndefined(ValueError):
    """Completion cannot be computed (target equal to baseline, nothing planned, a rating out of range)."""


def completion(baseline: Decimal, target: Decimal, actual: Decimal, direction: str) -> Decimal:
    """The raw completion ratio; negative when the actual moved the wrong way, above 1 on overshoot.

    A target equal to the baseline is refused when the plan is filed; one that slipped through
    raises :class:`CompletionUndefined` rather than dividing by zero.
    """
    if target == baseline:
        raise CompletionUndefined("目标等于基线，无法计算完成度")
    if direction == "up":
        return (actual - baseline) / (target - baseline)
    if direction == "down":
        return (baseline - actual) / (baseline - target)
    raise ValueError(f"direction must be 'up' or 'down', not {direction!r}")


def rating_completion(stars: int, scale: Mapping[int, Decimal] = DEFAULT_RATING_SCALE) -> Decimal:
    """A leader's rating (1–5 stars) as a completion ratio, by the template's scale."""
    if stars not in scale:
        raise CompletionUndefined(f"评分应为 1–5 星，收到 {stars}")
    return scale[stars]


def checklist_completion(done: int, planned: int) -> Decimal:
    """Tasks done / tasks planned (学习进度 and the like); more done than planned is overshoot."""
    if planned <= 0:
        raise CompletionUndefined("没有计划任务数，无法计算完成度")
    if done < 0:
        raise CompletionUndefined(f"完成任务数不能为负（{done}）")
    return Decimal(done) / Decimal(planned)


@dataclass(frozen=True)
class Step:
    """Completion below ``below`` scores ``value`` (both ratios)."""

    below: Decimal
    value: Decimal


@dataclass(frozen=True)
class Curve:
    """A piecewise scoring curve: steps in rising order; at or above the last bound, as is.

    "below 60 % → 0, 60–80 % → 60, above → as is" is ``Curve((Step(0.6, 0), Step(0.8, 0.6)))``.
    Templates are validated so steps rise and the last value is at most the last bound, which
    keeps the curve monotonic.
    """

    steps: tuple[Step, ...]

    def apply(self, ratio: Decimal) -> Decimal:
        for step in self.steps:
            if ratio < step.below:
                return step.value
        return ratio

    def describe(self) -> str:
        """ "低于 60 % 计 0 %；低于 80 % 计 60 %；其余照实" for cards and reasons."""
        parts = [f"低于 {_pct(s.below)} 计 {_pct(s.value)}" for s in self.steps]
        return "；".join([*parts, "其余照实"])


def _pct(ratio: Decimal) -> str:
    return f"{(ratio * HUNDRED).normalize():f} %"


def bounded(
    raw: Decimal, *, cap: Decimal = DEFAULT_CAP, curve: Curve | None = None, allow_negative: bool = False
) -> Decimal:
    """The completion that counts: wrong-way moves floored at 0 (or at −cap when the template allows
    negatives), the KPI's curve applied, then the template's cap."""
    ratio = max(raw, -cap) if allow_negative else max(raw, ZERO)
    if curve is not None:
        ratio = curve.apply(ratio)
    return min(ratio, cap)
