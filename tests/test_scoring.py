"""Scoring a week: the issue's examples exactly, missing data, weights, appeals, curves, bonus/penalty."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest

from appraisal.scoring import ItemInput, KpiInfo, RatingInput, score
from appraisal.selection import Employee, select_template
from appraisal.targets import parse_target, resolve
from appraisal.templates import parse_template

KPIS = {
    "conversion_rate": KpiInfo("conversion_rate", "支付转化率", "%", "up"),
    "ctr": KpiInfo("ctr", "点击率", "%", "up"),
    "complaint_rate": KpiInfo("complaint_rate", "投诉率", "%", "down"),
    "activity_sales": KpiInfo("activity_sales", "活动销量", "元", "up"),
    "learning": KpiInfo("learning", "学习进度", "", "up", "checklist"),
    "attitude": KpiInfo("attitude", "工作态度", "", "up", "rating"),
    "bad_reviews": KpiInfo("bad_reviews", "差评数", "条", "down"),
    "refund_rate": KpiInfo("refund_rate", "退款率", "%", "down"),
}

OPS_DEFAULT = parse_template(
    {
        "id": "ops-default",
        "name": "运营默认模板",
        "role": "operations",
        "weights": {"conversion_rate": 60, "ctr": 40},
    }
)
OPS_PROMO = parse_template(
    {
        "id": "ops-promo",
        "name": "大促模板",
        "role": "operations",
        "period": "double11",
        "weights": {"activity_sales": 70, "conversion_rate": 30},
    }
)


def item(
    kpi: str, baseline: str, target: str, actual: str | None, text: str = "", scope: str = "shop"
) -> ItemInput:
    """A plan item whose target is written in CONTRACT.md notation and resolved the way filing does."""
    info = KPIS[kpi]
    level = resolve(parse_target(target), D(baseline), unit=info.unit, direction=info.direction)
    return ItemInput(kpi, text or kpi, scope, D(baseline), level, D(actual) if actual is not None else None)


def rows_of(result: Any) -> list[tuple[str, D, D | None, D]]:
    return [(r.kpi, r.weight, r.completion, r.contribution) for r in result.rows]


def test_issue_examples_conversion_and_complaints() -> None:
    template = parse_template({"id": "t", "weights": {"conversion_rate": 50, "complaint_rate": 50}})
    result = score(
        template,
        KPIS,
        [item("conversion_rate", "3.00", "+2pp", "5.50"), item("complaint_rate", "1.20", "-10%", "1.104")],
    )
    conversion, complaints = result.rows
    assert (conversion.target, conversion.completion) == (D("5.00"), D("1.25"))  # +2.5pp of +2pp → 125 %
    assert (complaints.target, complaints.completion) == (D("1.08"), D("0.8"))  # −8 % of −10 % → 80 %
    # 50 × 1.25 + 50 × 0.8
    assert result.score == D("102.5")
    assert result.grade == "A"


def test_contract_export_example_score() -> None:
    result = score(
        OPS_DEFAULT, KPIS, [item("conversion_rate", "3.0", "+2pp", "5.5"), item("ctr", "2.0", "+10%", "2.16")]
    )
    assert rows_of(result) == [("conversion_rate", D(60), D("1.25"), D(75)), ("ctr", D(40), D("0.8"), D(32))]
    assert (result.score, result.grade, result.flags) == (D(107), "A", ())


def test_issue_example_operations_switch_during_double11() -> None:
    person = Employee("lilei", "operations")
    items = [
        item("conversion_rate", "3.00", "+2pp", "5.50"),
        item("ctr", "2.0", "+10%", "2.16"),
        item("activity_sales", "100000", "+20%", "130000"),
    ]
    normal = select_template([OPS_DEFAULT, OPS_PROMO], person=person, week="2026-W48")
    promo = select_template([OPS_DEFAULT, OPS_PROMO], person=person, week="2026-W46")
    assert promo.reason == "大促模板（双11 10-20–11-11）替代 运营默认模板"

    before = score(normal.template, KPIS, items)
    during = score(promo.template, KPIS, items)
    assert before.score == D(107)  # 60 × 1.25 + 40 × 0.8; activity_sales outside the template
    assert rows_of(during)[:2] == [
        ("activity_sales", D(70), D("1.5"), D(105)),  # 30 000 of 20 000 → 150 % (the cap)
        ("conversion_rate", D(30), D("1.25"), D("37.5")),
    ]
    assert during.rows[2].status == "outside" and during.rows[2].weight == 0
    assert (during.score, during.grade) == (D("142.5"), "S")
    assert "点击率：不在模板“大促模板”内，不计分" in during.flags


@pytest.mark.parametrize(
    ("actual", "completion", "contribution", "flag"),
    [
        ("3.05", D(5) / D(6), D(100) * (D(5) / D(6)), None),
        ("3.06", D(1), D(100), None),
        ("3.12", D("1.5"), D(150), "支付转化率：完成度超过封顶 150 %，按封顶计"),
        ("3.50", D("1.5"), D(150), "支付转化率：完成度超过封顶 150 %，按封顶计"),
        ("3.00", D(0), D(0), None),
        ("2.90", D(0), D(0), "支付转化率：反向变化，按 0 计"),
        (None, None, D(0), "支付转化率：本周没有数据，计 0 分"),
    ],
)
def test_single_item(actual: str | None, completion: D | None, contribution: D, flag: str | None) -> None:
    template = parse_template({"id": "t", "weights": {"conversion_rate": 100}})
    result = score(template, KPIS, [item("conversion_rate", "3.00", "+2%", actual)])
    (row,) = result.rows
    assert (row.completion, row.contribution) == (completion, contribution)
    assert result.score == contribution.quantize(D("1e-8"))
    assert result.flags == ((flag,) if flag else ())


def test_template_kpi_without_plan_item_counts_zero_and_is_flagged() -> None:
    result = score(OPS_DEFAULT, KPIS, [item("conversion_rate", "3.0", "+2pp", "5.0")])
    assert rows_of(result) == [("conversion_rate", D(60), D(1), D(60)), ("ctr", D(40), None, D(0))]
    assert result.rows[1].status == "unplanned"
    assert result.flags == ("点击率：模板要求的指标本周没有计划项，计 0 分",)
    assert (result.score, result.grade) == (D(60), "C")


def test_no_items_at_all() -> None:
    result = score(OPS_DEFAULT, KPIS, [])
    assert (result.score, result.grade) == (D(0), "D")
    assert len(result.flags) == 2


def test_missing_baseline_or_target() -> None:
    bare = ItemInput("conversion_rate", "x", "shop", None, D("3.5"), D("3.4"))
    equal = ItemInput("ctr", "y", "shop", D("2"), D("2"), D("3"))
    result = score(OPS_DEFAULT, KPIS, [bare, equal])
    assert result.score == 0
    assert result.flags == (
        "支付转化率：计划项缺少基线或目标，计 0 分",
        "点击率：目标等于基线，无法计算完成度，计 0 分",
    )


def test_items_on_one_kpi_share_its_weight() -> None:
    result = score(
        OPS_DEFAULT,
        KPIS,
        [
            item("conversion_rate", "3.0", "+1pp", "4.0", scope="A店"),  # 100 %
            item("conversion_rate", "2.0", "+1pp", "2.5", scope="B店"),  # 50 %
            item("ctr", "2.0", "+10%", "2.2"),  # 100 %
        ],
    )
    assert rows_of(result) == [
        ("conversion_rate", D(30), D(1), D(30)),
        ("conversion_rate", D(30), D("0.5"), D(15)),
        ("ctr", D(40), D(1), D(40)),
    ]
    assert result.score == D(85)


def test_excluded_item_drops_out_and_weights_rescale() -> None:
    items = [item("conversion_rate", "3.0", "+2pp", "5.5"), item("ctr", "2.0", "+10%", "2.0")]
    result = score(OPS_DEFAULT, KPIS, items, excluded={"ctr"})
    # completion is computed where the numbers exist (issue 16); the excluded row still counts 0
    assert rows_of(result) == [("conversion_rate", D(100), D("1.25"), D(125)), ("ctr", D(0), D(0), D(0))]
    assert result.rows[1].status == "excluded"
    assert (result.score, result.grade) == (D(125), "S")
    assert result.flags == ("点击率：申诉后剔除，不计分（其余指标权重按比例放大到 100）",)


def test_three_kpis_one_excluded_rescales_proportionally() -> None:
    template = parse_template(
        {"id": "t", "weights": {"conversion_rate": 50, "ctr": 30, "complaint_rate": 20}}
    )
    items = [
        item("conversion_rate", "3.0", "+1pp", "4.0"),
        item("ctr", "2.0", "+1pp", "2.5"),
        item("complaint_rate", "1.2", "-10%", "1.5"),
    ]
    result = score(template, KPIS, items, excluded={"complaint_rate"})
    # 50 and 30 rescaled by 100 / 80: 62.5 × 1 + 37.5 × 0.5
    assert [r.weight for r in result.rows] == [D("62.5"), D("37.5"), D(0)]
    assert result.score == D("81.25")


def test_everything_excluded() -> None:
    result = score(OPS_DEFAULT, KPIS, [], excluded={"conversion_rate", "ctr"})
    assert (result.score, result.grade) == (D(0), "D")
    assert result.flags[0] == "所有指标都已剔除，本周不计分"


def test_correction_replaces_actual() -> None:
    items = [item("conversion_rate", "3.0", "+2pp", "3.5"), item("ctr", "2.0", "+10%", None)]
    result = score(OPS_DEFAULT, KPIS, items, corrections={"conversion_rate": D("5.0"), "ctr": D("2.2")})
    assert rows_of(result) == [("conversion_rate", D(60), D(1), D(60)), ("ctr", D(40), D(1), D(40))]
    assert result.rows[0].actual == D("5.0")
    assert result.flags == (
        "支付转化率：申诉后实际值更正为 5.0 %（原 3.5 %）",
        "点击率：申诉后实际值更正为 2.2 %（原 —）",
    )


NEW_TEMPLATE = parse_template(
    {"id": "ops-new", "employee_type": "new", "weights": {"learning": 50, "attitude": 50}}
)


@pytest.mark.parametrize(
    ("ratings", "expected", "grade"),
    [
        ({"learning": RatingInput(done=3, planned=4), "attitude": RatingInput(stars=4)}, D("87.5"), "B"),
        ({"learning": RatingInput(done=4, planned=4), "attitude": RatingInput(stars=5)}, D(110), "A"),
        ({"learning": RatingInput(done=8, planned=4), "attitude": RatingInput(stars=5)}, D(135), "S"),
        ({"learning": RatingInput(done=0, planned=4), "attitude": RatingInput(stars=1)}, D(0), "D"),
        ({"attitude": RatingInput(stars=3)}, D(40), "D"),
        ({}, D(0), "D"),
    ],
)
def test_non_metric_kpis(ratings: dict[str, RatingInput], expected: D, grade: str) -> None:
    result = score(NEW_TEMPLATE, KPIS, [], ratings)
    assert (result.score, result.grade) == (expected, grade)


def test_non_metric_missing_is_flagged() -> None:
    result = score(NEW_TEMPLATE, KPIS, [], {"learning": RatingInput(done=1, planned=0)})
    assert result.flags == (
        "学习进度：没有计划任务数，无法计算完成度，计 0 分",
        "工作态度：本周尚未评分，计 0 分",
    )


def test_non_metric_corrections() -> None:
    ratings = {"learning": RatingInput(done=2, planned=4), "attitude": RatingInput(stars=3)}
    result = score(NEW_TEMPLATE, KPIS, [], ratings, corrections={"learning": D(4), "attitude": D(4)})
    assert [(r.done, r.stars, r.completion) for r in result.rows] == [(4, None, D(1)), (None, 4, D(1))]
    assert result.score == D(100)


def test_template_rating_scale() -> None:
    template = parse_template(
        {"id": "t", "weights": {"attitude": 100}, "ratings": {"1": 0, "2": 50, "3": 70, "4": 90, "5": 110}}
    )
    assert score(template, KPIS, [], {"attitude": RatingInput(stars=3)}).score == D(70)


def test_curve() -> None:
    template = parse_template(
        {
            "id": "t",
            "weights": {"conversion_rate": 100},
            "curves": {"conversion_rate": [{"below": 60, "score": 0}, {"below": 80, "score": 60}]},
        }
    )
    outcomes = {
        actual: score(template, KPIS, [item("conversion_rate", "3.0", "+1pp", actual)]).rows[0]
        for actual in ("3.5", "3.7", "3.9")
    }
    assert [(r.raw, r.completion) for r in outcomes.values()] == [
        (D("0.5"), D(0)),
        (D("0.7"), D("0.6")),
        (D("0.9"), D("0.9")),
    ]
    assert outcomes["3.7"].curve == "低于 60 % 计 0 %；低于 80 % 计 60 %；其余照实"
    assert outcomes["3.9"].curve == ""  # the straight line applied


def test_allow_negative_and_template_cap() -> None:
    template = parse_template(
        {"id": "t", "weights": {"conversion_rate": 50, "ctr": 50}, "allow_negative": True, "cap": 120}
    )
    items = [item("conversion_rate", "3.0", "+1pp", "2.5"), item("ctr", "2.0", "+1pp", "4.0")]
    result = score(template, KPIS, items)
    assert rows_of(result) == [
        ("conversion_rate", D(50), D("-0.5"), D(-25)),
        ("ctr", D(50), D("1.2"), D(60)),
    ]
    assert result.score == D(35)


@pytest.mark.parametrize(
    ("count", "expected", "flag"),
    [
        (None, D(100), None),
        (D(1), D(95), None),
        (D(3), D(85), None),
        (D(10), D(80), None),  # −50 held to the stated −20
    ],
)
def test_penalty_within_range(count: D | None, expected: D, flag: str | None) -> None:
    template = parse_template(
        {
            "id": "cs",
            "weights": {"refund_rate": 100},
            "adjustments": [{"kpi": "bad_reviews", "name": "差评事件", "points": -5, "min": -20}],
        }
    )
    counts = {"bad_reviews": count} if count is not None else {}
    result = score(template, KPIS, [item("refund_rate", "2.0", "-0.5", "1.5")], counts=counts)
    assert result.score == expected
    assert result.adjustments[0].name == "差评事件"


def test_total_is_kept_within_zero_and_cap() -> None:
    bonus = parse_template(
        {
            "id": "t",
            "weights": {"conversion_rate": 100},
            "adjustments": [{"kpi": "bad_reviews", "points": 5, "max": 20}],
        }
    )
    high = score(bonus, KPIS, [item("conversion_rate", "3.0", "+1pp", "9.0")], counts={"bad_reviews": D(3)})
    assert high.score == D(150)
    assert high.flags[0] == "总分 165 超出 0–150，按边界计"
    penalty = parse_template(
        {
            "id": "t",
            "weights": {"conversion_rate": 100},
            "adjustments": [{"kpi": "bad_reviews", "points": -10, "min": -30}],
        }
    )
    low = score(penalty, KPIS, [item("conversion_rate", "3.0", "+1pp", "3.1")], counts={"bad_reviews": D(3)})
    assert (low.score, low.grade) == (D(0), "D")


def test_score_is_kept_to_eight_places_so_grade_matches_the_stored_value() -> None:
    template = parse_template(
        {"id": "t", "weights": {"conversion_rate": 30, "ctr": 30, "complaint_rate": 40}}
    )
    thirds = [
        item("conversion_rate", "0", "+3", "2"),  # 2/3
        item("ctr", "0", "+3", "2"),  # 2/3
        item("complaint_rate", "3", "-3", "1"),  # 2/3
    ]
    result = score(template, KPIS, thirds)
    # 100 × 2/3 = 66.666… ; three 28-digit products sum to within 1e-26 of it
    assert result.score == D("66.66666667")
    assert result.grade == "C"


def test_rows_serialise_to_json() -> None:
    result = score(OPS_DEFAULT, KPIS, [item("conversion_rate", "3.00", "+2%", "3.05")])
    data = json.loads(json.dumps([r.to_dict() for r in result.rows]))
    assert data[0]["baseline"] == "3.00"
    assert data[0]["target"] == "3.06"
    assert D(data[0]["completion"]) == D(5) / D(6)
    assert data[1]["completion"] is None and data[1]["flags"] == [
        "点击率：模板要求的指标本周没有计划项，计 0 分"
    ]
