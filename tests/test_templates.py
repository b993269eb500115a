"""Templates from the team file: every bad field gets one line naming the template and the field."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from appraisal.completion import Curve, Step
from appraisal.templates import (
    Adjustment,
    Template,
    TemplateError,
    conflicts,
    parse_template,
    spec_of,
    validate,
)

KPIS = {"conversion_rate", "ctr", "activity_sales", "complaint_rate", "bad_reviews", "learning"}


def entry(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "ops-default",
        "name": "运营默认模板",
        "role": "operations",
        "weights": {"conversion_rate": 60, "ctr": 40},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def test_contract_examples_are_valid() -> None:
    assert validate(entry(), KPIS) == []
    promo = entry(id="ops-promo", period="double11", weights={"activity_sales": 70, "conversion_rate": 30})
    assert validate(promo, KPIS, periods={"double11", "618"}) == []


def test_defaults() -> None:
    t = parse_template(entry())
    assert t.cap == D("1.5")
    assert t.weights == {"conversion_rate": D(60), "ctr": D(40)}
    assert t.grades == (("S", D(120)), ("A", D(100)), ("B", D(80)), ("C", D(60)))
    assert t.ratings == {1: D(0), 2: D("0.6"), 3: D("0.8"), 4: D(1), 5: D("1.2")}
    assert (t.allow_negative, t.curves, t.adjustments) == (False, {}, ())
    assert t.label == "运营默认模板"
    assert parse_template(entry(name=None)).label == "ops-default"


def test_full_entry() -> None:
    t = parse_template(
        entry(
            weights={"conversion_rate": 33.3, "ctr": 66.7},
            cap=120,
            grades={"优": 110, "良": 90, "中": 70},
            allow_negative=True,
            curves={"conversion_rate": [{"below": 60, "score": 0}, {"below": 80, "score": 60}]},
            ratings={"1": 0, "2": 50, "3": 70, "4": 90, "5": 110},
            adjustments=[{"kpi": "bad_reviews", "name": "差评事件", "points": -5, "min": -20}],
            employee_type="new",
        ),
        KPIS,
    )
    assert t.weights == {"conversion_rate": D("33.3"), "ctr": D("66.7")}
    assert t.cap == D("1.2")
    assert t.curves == {"conversion_rate": Curve((Step(D("0.6"), D(0)), Step(D("0.8"), D("0.6"))))}
    assert t.ratings[3] == D("0.7")
    assert t.adjustments == (Adjustment("bad_reviews", "差评事件", D(-5), D(-20), D(0)),)
    assert t.allow_negative is True
    assert t.conditions == ("employee_type",)
    assert [t.grade(D(s)) for s in ("115", "95", "70", "69.99")] == ["优", "良", "中", "D"]


@pytest.mark.parametrize(
    ("score", "grade"),
    [
        ("150", "S"),
        ("120", "S"),
        ("119.99999999", "A"),
        ("100", "A"),
        ("99.5", "B"),
        ("80", "B"),
        ("79.9", "C"),
        ("60", "C"),
        ("59.99999999", "D"),
        ("0", "D"),
    ],
)
def test_default_grades(score: str, grade: str) -> None:
    assert Template("t").grade(D(score)) == grade


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"weights": {"conversion_rate": 60, "ctr": 30}}, "weights", "合计为 90，必须等于 100"),
        ({"weights": {"conversion_rate": 60, "ctr": 50}}, "weights", "合计为 110"),
        ({"weights": {"conversion_rate": 60.5, "ctr": 40}}, "weights", "合计为 100.5"),
        ({"weights": {"conversion_rate": 60, "nope": 40}}, "weights.nope", "没有 key 为“nope”的指标"),
        ({"weights": {"conversion_rate": 110, "ctr": -10}}, "weights.conversion_rate", "0–100"),
        ({"weights": {"conversion_rate": 100, "ctr": 0}}, "weights.ctr", "0–100"),
        ({"weights": {"conversion_rate": True, "ctr": 40}}, "weights.conversion_rate", "应为数字"),
        ({"weights": {"conversion_rate": "60", "ctr": "x"}}, "weights.ctr", "应为数字"),
        ({"weights": {}}, "weights", "非空"),
        ({"weights": None}, "weights", "必须写各指标权重"),
        ({"cap": 90}, "cap", "100–1000"),
        ({"cap": 5000}, "cap", "100–1000"),
        ({"cap": "lots"}, "cap", "100–1000"),
        ({"grades": {"S": 120, "A": 120}}, "grades.A", "与 S 的下限相同"),
        ({"grades": {"SSS": 120}}, "grades.SSS", "1–2 个字符"),
        ({"grades": {"S": 200}}, "grades.S", "0–150"),
        ({"grades": {"S": -1}}, "grades.S", "0–150"),
        ({"grades": []}, "grades", "非空"),
        (
            {"curves": {"ctr": [{"below": 80, "score": 60}, {"below": 60, "score": 0}]}},
            "curves.ctr[2].below",
            "递增",
        ),
        (
            {"curves": {"ctr": [{"below": 60, "score": 50}, {"below": 80, "score": 40}]}},
            "curves.ctr[2].score",
            "单调",
        ),
        ({"curves": {"ctr": [{"below": 60, "score": 70}]}}, "curves.ctr[1].score", "不能高于本段上限"),
        ({"curves": {"ctr": [{"below": 0, "score": 0}]}}, "curves.ctr[1].below", "大于 0"),
        ({"curves": {"ctr": [{"below": 60}]}}, "curves.ctr[1]", "below = 完成度%"),
        ({"curves": {"ctr": []}}, "curves.ctr", "非空数组"),
        ({"curves": {"activity_sales": [{"below": 60, "score": 0}]}}, "curves.activity_sales", "weights 里"),
        ({"allow_negative": "yes"}, "allow_negative", "true 或 false"),
        ({"ratings": {"1": 0, "2": 60}}, "ratings", "写全 1–5 星"),
        ({"ratings": {"1": 0, "2": 60, "3": 50, "4": 100, "5": 120}}, "ratings.3", "不能越低"),
        ({"ratings": {"1": 0, "2": 60, "3": "x", "4": 100, "5": 120}}, "ratings.3", "百分数"),
        ({"adjustments": [{"kpi": "bad_reviews", "points": 0}]}, "adjustments[1].points", "非零"),
        (
            {"adjustments": [{"kpi": "bad_reviews", "points": -5, "min": 5}]},
            "adjustments[1].min/max",
            "min ≤ 0",
        ),
        (
            {"adjustments": [{"kpi": "bad_reviews", "points": -5, "max": 500}]},
            "adjustments[1].min/max",
            "≤ 100",
        ),
        ({"adjustments": [{"kpi": "ctr", "points": -5, "min": -10}]}, "adjustments[1].kpi", "已在 weights"),
        ({"adjustments": [{"kpi": "nope", "points": -5, "min": -10}]}, "adjustments[1].kpi", "没有 key"),
        ({"adjustments": [{"points": -5, "min": -10}]}, "adjustments[1].kpi", "必须写"),
        (
            {"adjustments": [{"kpi": "bad_reviews", "points": -5, "min": -10, "each": 1}]},
            "adjustments[1]",
            "each",
        ),
        ({"adjustments": {"kpi": "bad_reviews"}}, "adjustments", "应为数组"),
        ({"employee_type": "intern"}, "employee_type", "new 或 veteran"),
        ({"role": 5}, "role", "字符串"),
        ({"wieghts": {"ctr": 100}}, "wieghts", "不认识的字段"),
    ],
)
def test_validate_names_template_and_field(changes: dict[str, Any], field: str, message: str) -> None:
    problems = validate(
        entry(**changes), KPIS, periods={"double11"}, scenarios={"logistics_peak"}, roles={"operations"}
    )
    assert any(p.startswith(f"templates (ops-default).{field}: ") and message in p for p in problems), (
        problems
    )
    with pytest.raises(TemplateError) as info:
        parse_template(entry(**changes), KPIS)
    assert info.value.problems == validate(entry(**changes), KPIS)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"period": "nope"}, "period", "没有 id 为“nope”的时段"),
        ({"scenario": "nope"}, "scenario", "没有 id 为“nope”的场景"),
        ({"role": "chef"}, "role", "没有 id 为“chef”的岗位"),
    ],
)
def test_validate_references_when_known(changes: dict[str, Any], field: str, message: str) -> None:
    known = {"periods": {"double11"}, "scenarios": {"logistics_peak"}, "roles": {"operations"}}
    assert validate(entry(**changes), KPIS, **known) == [f"templates (ops-default).{field}: {message}"]
    assert validate(entry(**changes), KPIS) == []  # not checked when the caller does not say


def test_each_bad_field_is_one_line() -> None:
    problems = validate(entry(weights={"conversion_rate": 60, "nope": 30}, cap=10), KPIS)
    assert problems == [
        "templates (ops-default).weights.nope: 没有 key 为“nope”的指标（[[kpis]]）",
        "templates (ops-default).weights: 权重合计为 90，必须等于 100",
        "templates (ops-default).cap: 封顶应为 100–1000 之间的百分数，不是“10”",
    ]


def test_missing_id() -> None:
    problems = validate({"weights": {"ctr": 100}}, KPIS)
    assert problems == ["templates (?).id: 必须写模板 id（字符串）"]


def test_kpi_check_skipped_without_keys() -> None:
    assert validate(entry(weights={"anything": 100}), None) == []


def test_spec_of_keeps_scoring_keys_only() -> None:
    e = entry(cap=120, period="double11")
    assert spec_of(e) == {"weights": {"conversion_rate": 60, "ctr": 40}, "cap": 120}
    rebuilt = parse_template({"id": "ops-default", "role": "operations", "period": "double11", **spec_of(e)})
    assert (rebuilt.cap, rebuilt.period) == (D("1.2"), "double11")


def test_conflicts() -> None:
    a = parse_template(entry())
    b = parse_template(entry(id="ops-other"))
    c = parse_template(entry(id="ops-promo", period="double11"))
    assert conflicts([a, c]) == []
    assert conflicts([b, a, c]) == [
        "templates (ops-other): 与 ops-default 的适用条件完全相同（岗位、场景、时段、员工类型），无法确定用哪个"
    ]


@pytest.mark.parametrize(
    ("count", "points"),
    [("0", "0"), ("1", "-5"), ("4", "-20"), ("5", "-20"), ("-3", "0")],
)
def test_adjustment_total_stays_in_range(count: str, points: str) -> None:
    assert Adjustment("bad_reviews", "差评", D(-5), D(-20), D(0)).total(D(count)) == D(points)
