"""Percent columns about 100× off their own history (issue 16): 0.0321 next to 3.30.

A report that writes a percent as a fraction (Excel's 百分比 cell exported as its value, or an
export option) would load a 3.21 % conversion rate as 0.0321 and every completion of that week
would be nonsense. :func:`hundredfold` compares the median of a column's new values with the median
of the same metric and scope's history; a ratio near 100 (or 1/100) refuses the column. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import median

LOW, HIGH = Decimal(30), Decimal(300)  # "about 100×": between 30× and 300×


@dataclass(frozen=True)
class Misscaled:
    metric: str
    scope: str
    new: Decimal  # the new values' median
    old: Decimal  # the history's median
    smaller: bool  # the new values are ~1/100 of the history (a fraction where a percent belongs)

    def reason(self, column: str) -> str:
        n, o = f"{self.new.normalize():f}", f"{self.old.normalize():f}"
        if self.smaller:
            cause = "可能是把百分数存成了小数（Excel 的百分比单元格按数值导出，3.21% 变成 0.0321）"
            times = "约为已有数据的 1/100"
        else:
            cause = "可能是把小数当成了百分数（0.0321 写成了 3.21 的 100 倍），或单位选错"
            times = "约为已有数据的 100 倍"
        return (
            f"「{column}」{times}（本次中位数 {n}，之前 {o}）：{cause}；此列未导入，"
            "请确认后按百分数（如 3.21 或 3.21%）重新导出"
        )


def hundredfold(
    new: Mapping[tuple[str, str], Sequence[Decimal]], history: Mapping[tuple[str, str], Sequence[Decimal]]
) -> list[Misscaled]:
    out = []
    for key, values in new.items():
        before = [v for v in history.get(key, ()) if v]
        now = [v for v in values if v]
        if not before or not now:
            continue
        old, fresh = Decimal(median(before)), Decimal(median(now))
        if old == 0 or fresh == 0:
            continue
        ratio = abs(old / fresh)
        if LOW <= ratio <= HIGH:
            out.append(Misscaled(key[0], key[1], fresh, old, smaller=True))
        elif LOW <= 1 / ratio <= HIGH:
            out.append(Misscaled(key[0], key[1], fresh, old, smaller=False))
    return out
