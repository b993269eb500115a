"""Plan-item target notation (CONTRACT.md "Plan item targets"): parse, then resolve to a level.

+2pp / +2个百分点   absolute change in the KPI's unit (percent KPIs)
+2% / -10%         relative change of the baseline
+0.5               absolute change in the KPI's unit
=3.5               absolute target level (=3.5% on a percent KPI; =-3 on a KPI that can be negative)

A relative change is taken on the baseline's size, so +10 % of a loss of −5 is −4.5 (better),
not −5.5: the sign of the target says which way the KPI moves, whatever the baseline's sign.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

TargetKind = Literal["pp", "relative", "delta", "level"]

# Beyond these a target is a typo, not a plan.
MAX_ABS = Decimal("1e12")
MAX_RELATIVE = Decimal("10000")  # +10000 %

_NORMALISE = str.maketrans({"＋": "+", "－": "-", "−": "-", "％": "%", "＝": "=", "．": ".", "，": ","})
_PATTERN = re.compile(
    r"^(?P<sign>[+\-]|=\s*-?)\s*(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>pp|个百分点|百分点|%)?$",
    re.IGNORECASE,
)


class TargetError(ValueError):
    """A target that cannot be used; the message is shown to the person as is."""


@dataclass(frozen=True)
class TargetSpec:
    kind: TargetKind
    amount: Decimal  # signed change (pp, delta), signed percent (relative) or the level
    text: str
    percent: bool = False  # a level written with % (=3.5%): only for percent KPIs


def parse_target(text: str) -> TargetSpec:
    # NFKC folds full-width digits and letters (２ｐｐ) typed with a Chinese IME.
    raw = unicodedata.normalize("NFKC", text.strip()).translate(_NORMALISE).replace(",", "")
    m = _PATTERN.match(raw)
    if not m:
        raise TargetError(
            f"目标“{text.strip()}”看不懂：请写 +2pp（百分点）、+2%（相对）、+0.5（绝对变化）或 =3.5（目标值）"
        )
    try:
        number = Decimal(m.group("num"))
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise TargetError(f"目标“{text}”不是数字") from None
    sign, unit = m.group("sign").replace(" ", ""), (m.group("unit") or "").lower()
    if number > MAX_ABS:
        raise TargetError(f"目标“{text.strip()}”大得不合理")
    if sign.startswith("="):
        if unit not in ("", "%"):
            raise TargetError(f"目标值“{text.strip()}”不要带单位：写 =3.5")
        level = -number if sign == "=-" else number
        return TargetSpec("level", level, text.strip(), percent=unit == "%")
    signed = number if sign == "+" else -number
    if unit in ("pp", "个百分点", "百分点"):
        return TargetSpec("pp", signed, text.strip())
    if unit == "%":
        if signed > MAX_RELATIVE:
            raise TargetError(f"目标“{text.strip()}”大得不合理（超过 +10000%）")
        if signed <= Decimal(-100):
            raise TargetError(f"目标“{text.strip()}”：相对下降不能达到或超过 100%")
        return TargetSpec("relative", signed, text.strip())
    return TargetSpec("delta", signed, text.strip())


def resolve(
    spec: TargetSpec, baseline: Decimal | None, *, unit: str, direction: str, kpi_name: str = ""
) -> Decimal:
    """The target level for ``spec`` on a KPI at ``baseline``; refuses targets that cannot be appraised."""
    name = kpi_name or "该指标"
    if spec.kind == "pp" and unit != "%":
        raise TargetError(f"{name}的单位是“{unit or '无'}”，不能用百分点（pp）；请用 +数值 或 +%")
    if spec.kind == "level" and spec.percent and unit != "%":
        raise TargetError(f"{name}的单位是“{unit or '无'}”，目标值不要带 %：写 ={spec.amount.normalize():f}")
    if spec.kind == "level":
        level = spec.amount
    elif baseline is None:
        raise TargetError(f"{name}还没有数据，无法确定基线；请用 =目标值 写出目标水平")
    elif spec.kind == "relative":
        if baseline == 0:
            raise TargetError(f"{name}当前为 0，相对目标没有意义；请用 +数值 或 =目标值")
        level = baseline + abs(baseline) * spec.amount / Decimal(100)
    else:  # pp and delta are both absolute changes in the KPI's unit
        level = baseline + spec.amount
    if baseline is not None:
        if level == baseline:
            raise TargetError(f"{name}的目标等于基线（{baseline.normalize():f}），无法衡量完成度")
        better = level > baseline if direction == "up" else level < baseline
        if not better:
            way = "越高越好，目标应高于" if direction == "up" else "越低越好，目标应低于"
            raise TargetError(f"{name}{way}基线（{baseline.normalize():f}）")
    # A rate (conversion, complaints) cannot fall below 0 %; a KPI already negative (a growth
    # rate, a loss in %) can, so the check only guards KPIs that start at or above zero.
    if unit == "%" and level < 0 and (baseline is None or baseline >= 0):
        raise TargetError(f"{name}的目标低于 0%")
    return level


def completion_ratio(baseline: Decimal, target: Decimal, actual: Decimal, direction: str) -> Decimal:
    """Raw completion: actual change / target change (for a "down" KPI, the reduction). Unclamped."""
    planned = (target - baseline) if direction == "up" else (baseline - target)
    done = (actual - baseline) if direction == "up" else (baseline - actual)
    return done / planned
