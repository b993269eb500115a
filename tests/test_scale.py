"""cards/scale.py: the progress card, the signed page and the SVG chart show the same weight and
the same axis (baseline, target, cap, unit), because all three take them from one function."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from decimal import Decimal as D
from types import SimpleNamespace

import pytest

from cards import charts, scale
from cards.builders import AppraisalView, appraisal_card
from cards.builders_progress import Pace, progress_card
from cards.render import page, text

NS = "{http://www.w3.org/2000/svg}"
H, T, B = 240, 30, 40


def y_of(v: float, lo: float, hi: float) -> float:
    return round(T + (hi - v) / (hi - lo) * (H - T - B), 1)


# (unit, baseline, target, daily values) → the labels every surface shows, the axis's ends
ITEMS = [
    ("%", "3.00", "3.06", ["3.01", "3.02", None], "3.00 %", "3.06 %", "3.09 %", (2.95, 3.1)),
    ("%", "1.20", "1.08", ["1.18", "1.10"], "1.20 %", "1.08 %", "1.02 %", (1.0, 1.3)),
    ("件", "806", "967.2", ["820", "900.4"], "806 件", "967 件", "1,048 件", (700.0, 1100.0)),
    ("元", "100000", "120000", ["104000"], "100,000 元", "120,000 元", "130,000 元", (90000.0, 140000.0)),
]


@pytest.mark.parametrize(("unit", "b", "t", "values", "shown_b", "shown_t", "shown_cap", "ends"), ITEMS)
def test_card_page_and_chart_show_the_same_levels_and_axis(
    unit, b, t, values, shown_b, shown_t, shown_cap, ends
):
    baseline, target = D(b), D(t)
    days = tuple(D(v) if v else None for v in values)
    axis = scale.item_axis(baseline, target, unit, days)
    assert (axis.lo, axis.hi) == ends
    assert [m.label for m in axis.marks] == [f"基线 {shown_b}", f"目标 {shown_t}", f"封顶 150 %：{shown_cap}"]

    # the progress card
    item = SimpleNamespace(
        text="首屏", kpi_name="指标", unit=unit, baseline=baseline, target=target, actual=days[0],
        actual_day=None, ratio=0.5, lagging=False, note="",
    )  # fmt: skip
    card = progress_card("李雷", "2026-W49", [item], Pace(2, 5, 0.4))
    assert f"目标 {shown_b} → {shown_t}" in text.render(card)

    # the page, and the chart inside it
    view = page.PlanView(
        person_name="李雷", week="2026-W49", version=1, status="submitted", submitted_at="12-01 09:00",
        elapsed=2, workdays=5, lag_margin=10,
        items=(
            page.PlanItemView(
                n=1, text="首屏", section="", kpi_name="指标", unit=unit, direction="up", kind="metric",
                scope="shop", target_text="", baseline=baseline, target=target,
                day_labels=tuple(f"12-0{i + 1} 一" for i in range(len(days))), values=days,
            ),
        ),
    )  # fmt: skip
    html = page.plan_page(view)
    assert f"<dt>基线 → 目标</dt><dd>{shown_b} → {shown_t}</dd>" in html
    svg = ET.fromstring(re.search(r"<svg.*?</svg>", html, re.S).group(0))
    marks = {
        el.get("class").split()[-1]: el.text
        for el in svg.iter(f"{NS}text")
        if "mark" in (el.get("class") or "")
    }
    assert marks == {
        "mark-baseline": f"基线 {shown_b}",
        "mark-target": f"目标 {shown_t}",
        "mark-cap": f"封顶 150 %：{shown_cap}",
    }
    ticks = [float(el.text.replace(",", "")) for el in svg.findall(f"{NS}g[@class='grid']/{NS}text")]
    assert (ticks[0], ticks[-1]) == ends
    for kind in ("baseline", "target", "cap"):
        line = svg.find(f"{NS}line[@class='{kind}']")
        assert float(line.get("y1")) == y_of(axis.mark(kind).value, *ends)
    if unit:
        assert svg.find(f"{NS}text[@class='unit']").text == f"单位：{unit}"


@pytest.mark.parametrize(
    ("weight", "shown"),
    [(D(60), "60"), (D("33.3333"), "33.3"), (D("12.5"), "12.5"), (D(0), "0"), (D("99.96"), "100")],
)
def test_card_and_page_write_a_weight_alike(weight, shown):
    row = {"kpi": "conv", "name": "转化率", "unit": "%", "direction": "up", "kind": "metric",
           "weight": str(weight), "baseline": "3", "target": "4", "actual": "3.5", "raw": "0.5",
           "completion": "0.5", "contribution": str(weight / 2), "status": "ok"}  # fmt: skip
    assert scale.weight_text(weight) == shown
    view = AppraisalView(7, "李雷", "2026-W49", 1, "默认", "岗位默认", weight / 2, "B", [row])
    assert f"转化率 · 权重 {shown} · " in text.render(appraisal_card(view))
    formula_row = page.FormulaRow(
        kpi_name="转化率", unit="%", direction="up", kind="metric", weight=weight, baseline=D(3), target=D(4),
        actual=D("3.5"), raw=D("0.5"), completion=D("0.5"), contribution=weight / 2,
    )  # fmt: skip
    html = page.appraisal_page(
        page.AppraisalView("李雷", "2026-W49", 1, "默认", "岗位默认", weight / 2, "B", (formula_row,)),
        person_name="李雷",
        week="2026-W49",
    )
    assert f'<td class="num">{shown}</td>' in html and f"× 权重 {shown} = " in html


@pytest.mark.parametrize(
    ("cap", "hi", "cap_label"), [(D(150), 150.0, "封顶 150 分"), (D(120), 150.0, "封顶 120 分")]
)
def test_score_history_axis_runs_to_the_cap_and_is_labelled(cap, hi, cap_label):
    axis = scale.score_axis(cap)
    assert (axis.lo, axis.hi, axis.unit) == (0.0, hi, "分")
    history = (("2026-W47", D("92.0"), "B"), ("2026-W48", None, ""), ("2026-W49", D("142.5"), "S"))
    html = page.appraisal_page(
        page.AppraisalView(
            "李雷", "2026-W49", 1, "默认", "", D("142.5"), "S", (), history=history, cap_points=cap
        ),
        person_name="李雷",
        week="2026-W49",
    )
    svg = ET.fromstring(re.search(r"<svg.*?</svg>", html, re.S).group(0))
    ticks = [el.text for el in svg.findall(f"{NS}g[@class='grid']/{NS}text")]
    assert ticks[0] == "0" and float(ticks[-1]) == hi
    assert svg.find(f"{NS}text[@class='unit']").text == "单位：分"
    labels = [el.text for el in svg.iter(f"{NS}text") if "mark" in (el.get("class") or "")]
    assert labels == [cap_label]
    assert svg.find(f"{NS}line[@class='target']") is not None  # 100 points: a line, its tick says 100
    assert charts.y_at(float(cap), 0.0, hi) == float(svg.find(f"{NS}line[@class='cap']").get("y1"))
