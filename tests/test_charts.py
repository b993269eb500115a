"""cards/charts.py: the SVG parses, coordinates follow the documented geometry, labels are escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from cards import charts

NS = "{http://www.w3.org/2000/svg}"
# the geometry as documented in the module, written out here rather than imported
W, H, L, R, T, B = 400, 240, 44, 10, 30, 40


def x_of(i: int, n: int) -> float:
    return round(L + (i + 0.5) * (W - L - R) / n, 1)


def y_of(v: float, lo: float, hi: float) -> float:
    return round(T + (hi - v) / (hi - lo) * (H - T - B), 1)


def points(el: ET.Element) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in el.get("points").split()]


@pytest.mark.parametrize(
    "actual, expected, lo, hi",
    [
        ([1, 2, 3, 4, 5, 6, 7], [1, 1, 2, 3, 4, 5, 5], 0.0, 10.0),
        ([Decimal("3.10"), Decimal("3.05"), None, Decimal("3.40")], [3, 3.5, 4, 4.5], 2.0, 6.0),
        ([-5, 0, 5], [], -10.0, 10.0),
        ([100], [50], 0.0, 200.0),
    ],
)
def test_pace_chart_points_sit_where_the_geometry_says(actual, expected, lo, hi):
    n = len(actual)
    svg = ET.fromstring(
        charts.pace_chart(
            ident="t",
            title="t",
            desc="d",
            labels=[f"d{i}" for i in range(n)],
            actual=actual,
            expected=expected,
            y_range=(lo, hi),
        )
    )
    got = [p for line in svg.findall(f"{NS}polyline[@class='actual']") for p in points(line)]
    want = [(x_of(i, n), y_of(float(v), lo, hi)) for i, v in enumerate(actual) if v is not None]
    assert got == want
    dots = [(float(c.get("cx")), float(c.get("cy"))) for c in svg.findall(f"{NS}circle[@class='point']")]
    assert dots == want
    pace = svg.find(f"{NS}polyline[@class='expected']")
    if expected:
        assert points(pace) == [(x_of(i, n), y_of(float(v), lo, hi)) for i, v in enumerate(expected)]
    else:
        assert pace is None


def test_a_missing_day_breaks_the_line_instead_of_drawing_zero():
    svg = ET.fromstring(
        charts.pace_chart(
            ident="gap", title="t", desc="d", labels=list("abcde"), actual=[1, 2, None, 4, 5], y_range=(0, 10)
        )
    )
    lines = svg.findall(f"{NS}polyline[@class='actual']")
    assert [len(points(line)) for line in lines] == [2, 2]
    assert all(y != y_of(0, 0, 10) for line in lines for _, y in points(line))


@pytest.mark.parametrize(
    "values, target, baseline",
    [
        ([3.01, 3.2, 3.35], 5.0, 3.0),  # target far above the values
        ([1.3, 1.25, 1.1], 1.08, 1.2),  # a "down" KPI
        ([12000, 12500, 13900], 15000, 11800),
        ([0.3, 0.3, 0.3], None, None),  # flat: the range still has height
        ([float("nan"), 2.0, float("inf")], None, None),  # nonsense never reaches a coordinate
    ],
)
def test_the_automatic_range_keeps_every_mark_inside_the_plot(values, target, baseline):
    svg = ET.fromstring(
        charts.pace_chart(
            ident="r",
            title="t",
            desc="d",
            labels=["a", "b", "c"],
            actual=values,
            target=target,
            baseline=baseline,
        )
    )
    ys = [y for line in svg.findall(f"{NS}polyline[@class='actual']") for _, y in points(line)]
    for cls in ("target", "baseline"):
        line = svg.find(f"{NS}line[@class='{cls}']")
        assert (line is None) == (target is None)
        if line is not None:
            ys.append(float(line.get("y1")))
    assert ys and all(T <= y <= H - B for y in ys)
    ticks = [t.text for t in svg.findall(f"{NS}g[@class='grid']/{NS}text")]
    assert len(ticks) >= 2 and len(set(ticks)) == len(ticks)


@pytest.mark.parametrize(
    "values, lo, hi",
    [
        ([92, 101.5, None, 110, 64], 0.0, 150.0),
        ([Decimal("107.0")], 0.0, 120.0),
        ([-20, 40], -50.0, 50.0),
    ],
)
def test_history_bars_rise_from_zero_to_their_value(values, lo, hi):
    n = len(values)
    svg = ET.fromstring(
        charts.history_chart(
            ident="h",
            title="t",
            desc="d",
            labels=[f"W{i}" for i in range(n)],
            values=values,
            notes=["A"] * n,
            y_range=(lo, hi),
        )
    )
    bars = svg.findall(f"{NS}rect[@class='bar']")
    known = [(i, float(v)) for i, v in enumerate(values) if v is not None]
    assert len(bars) == len(known)
    zero = y_of(0, lo, hi)
    bar_w = (W - L - R) / n * 0.6
    for bar, (i, v) in zip(bars, known, strict=True):
        x, y, w, h = (float(bar.get(k)) for k in ("x", "y", "width", "height"))
        assert abs(x - (L + (i + 0.5) * (W - L - R) / n - bar_w / 2)) < 0.06
        assert abs(w - bar_w) < 0.06
        top = y_of(v, lo, hi)
        assert (y, round(y + h, 1)) == ((top, zero) if v >= 0 else (zero, top))
    assert len(svg.findall(f"{NS}text[@class='gap']")) == n - len(known)
    assert [t.text for t in svg.findall(f"{NS}text[@class='value']")] == [f"{v:.1f}" for _, v in known]
    assert [t.text for t in svg.findall(f"{NS}text[@class='note']")] == ["A"] * len(known)


@pytest.mark.parametrize(
    "v, step, text",
    [
        (2.5, 0.5, "2.5"),
        (3.0, 0.5, "3.0"),
        (100, 50, "100"),
        (12500, 2500, "12,500"),
        (0.25, 0.25, "0.25"),
        (-0.0, 1, "0"),
    ],
)
def test_tick_labels_carry_the_decimals_the_step_needs(v, step, text):
    assert charts.tick_text(v, step) == text


def test_a_two_line_label_is_two_tspans():
    svg = ET.fromstring(charts.pace_chart(ident="l", title="t", desc="d", labels=["一\n11-23"], actual=[1]))
    label = svg.find(f"{NS}text[@class='xlabel']")
    assert label.text == "一" and label.find(f"{NS}tspan").text == "11-23"
    assert label.find(f"{NS}tspan").get("dy") == "14"
    assert svg.find(f"{NS}circle/{NS}title").text == "一 11-23：1"


def test_labels_are_escaped_and_the_chart_is_described():
    nasty = '<script>alert("x")</script> & </svg>'
    text = charts.pace_chart(
        ident="Item 1!", title=nasty, desc=nasty, labels=[nasty, "b"], actual=[1, 2], target=3, unit="件"
    )
    svg = ET.fromstring(text)  # still well-formed XML
    assert "<script" not in text
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "item-1--title item-1--desc"
    assert svg.find(f"{NS}title").text == nasty and svg.find(f"{NS}desc").text == nasty
    assert svg.find(f"{NS}text[@class='xlabel']").text == nasty
    assert svg.find(f"{NS}circle/{NS}title").text == f"{nasty}：1 件"


@pytest.mark.parametrize("make", [charts.pace_chart, charts.history_chart])
def test_no_data_says_so_instead_of_drawing_an_empty_axis(make):
    kwargs = {"actual": [None, None]} if make is charts.pace_chart else {"values": [None, None]}
    svg = ET.fromstring(make(ident="e", title="t", desc="d", labels=["a", "b"], **kwargs))
    assert svg.find(f"{NS}text[@class='nodata']").text == "暂无数据"
    assert svg.find(f"{NS}polyline") is None and svg.find(f"{NS}rect[@class='bar']") is None


@pytest.mark.parametrize(
    "lo, hi, want",
    [
        # (lo, hi) -> (low, high, step), worked out by hand: step = the first of 1, 2, 2.5, 5, 10 × 10^k
        # that is at least a quarter of the span; the ends rounded outwards to a step
        (0, 107, (0.0, 150.0, 50.0)),
        (2.93, 5.07, (2.0, 6.0, 1.0)),
        (3.0, 3.0, (2.6, 3.4, 0.2)),  # flat: ±10 % room first
        (-3, 7, (-5.0, 7.5, 2.5)),
        (0, 0, (-1.0, 1.0, 0.5)),
    ],
)
def test_nice_range(lo, hi, want):
    got = charts.nice_range(lo, hi)
    assert tuple(round(v, 6) for v in got) == want
    assert got[0] <= min(lo, hi) and got[1] >= max(lo, hi)
