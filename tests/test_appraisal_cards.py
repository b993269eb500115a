"""The appraisal explanation card and its companions: formulas filled in, flags, appeal buttons."""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal as D
from typing import Any

import pytest

from appraisal.scoring import ItemInput, KpiInfo, RatingInput, score
from appraisal.selection import Employee, select_template
from appraisal.templates import parse_template
from cards.builders import (
    AppealView,
    AppraisalView,
    KpiChoice,
    TemplateChoice,
    appeal_form,
    appeal_result,
    appeal_review,
    appraisal_card,
    appraisal_formula,
    formula_number,
    rating_form,
    template_switch_card,
    template_switched,
)
from cards.model import Card, Option
from cards.render import text

KPIS = {
    "conversion_rate": KpiInfo("conversion_rate", "支付转化率", "%", "up"),
    "ctr": KpiInfo("ctr", "点击率", "%", "up"),
    "complaint_rate": KpiInfo("complaint_rate", "投诉率", "%", "down"),
    "activity_sales": KpiInfo("activity_sales", "活动销量", "元", "up"),
    "learning": KpiInfo("learning", "学习进度", "", "up", "checklist"),
    "attitude": KpiInfo("attitude", "工作态度", "", "up", "rating"),
}
DEFAULT = parse_template(
    {
        "id": "ops-default",
        "name": "运营默认模板",
        "role": "operations",
        "weights": {"conversion_rate": 60, "ctr": 40},
    }
)
PROMO = parse_template(
    {
        "id": "ops-promo",
        "name": "大促模板",
        "role": "operations",
        "period": "double11",
        "weights": {"activity_sales": 70, "conversion_rate": 30},
    }
)


def view_of(
    result: Any, reason: str, template: str, version: int = 1, version_reason: str = ""
) -> AppraisalView:
    return AppraisalView(
        appraisal_id=7,
        person_name="李雷",
        week="2026-W46",
        version=version,
        template=template,
        reason=reason,
        score=result.score,
        grade=result.grade,
        rows=[r.to_dict() for r in result.rows],
        adjustments=[a.to_dict() for a in result.adjustments],
        flags=list(result.flags),
        version_reason=version_reason,
    )


def metric(kpi: str, baseline: str, target: str, actual: str | None) -> ItemInput:
    return ItemInput(kpi, "优化详情页", "shop", D(baseline), D(target), D(actual) if actual else None)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        # the example
        (metric("conversion_rate", "3.00", "3.06", "3.05"), "(3.05 − 3.00) / (3.06 − 3.00) = 83 %"),
        (metric("conversion_rate", "3.00", "5.00", "5.50"), "(5.50 − 3.00) / (5.00 − 3.00) = 125 %"),
        (metric("complaint_rate", "1.20", "1.08", "1.104"), "(1.20 − 1.104) / (1.20 − 1.08) = 80 %"),
        (
            metric("conversion_rate", "3.00", "3.06", "2.90"),
            "(2.90 − 3.00) / (3.06 − 3.00) = -167 % → 反向变化，按 0 % 计",
        ),
        (
            metric("conversion_rate", "3.00", "3.06", "3.12"),
            "(3.12 − 3.00) / (3.06 − 3.00) = 200 % → 封顶 150 %",
        ),
        (
            metric("activity_sales", "100000", "120000", "130000"),
            "(130,000 − 100,000) / (120,000 − 100,000) = 150 %",
        ),
        (metric("conversion_rate", "3.00", "3.06", None), "暂无数据，计 0"),
        (ItemInput("conversion_rate", "x", "shop", None, None, D(3)), "缺少基线或目标，计 0"),
    ],
)
def test_formula(row: ItemInput, expected: str) -> None:
    template = parse_template({"id": "t", "weights": {row.kpi: 100}})
    result = score(template, KPIS, [row])
    assert appraisal_formula(result.rows[0].to_dict()) == expected


def test_formula_non_metric_and_statuses() -> None:
    template = parse_template({"id": "t", "weights": {"learning": 40, "attitude": 40, "ctr": 20}})
    result = score(
        template,
        KPIS,
        [metric("conversion_rate", "3.00", "3.06", "3.05")],
        {"learning": RatingInput(done=3, planned=4), "attitude": RatingInput(stars=4)},
    )
    assert [appraisal_formula(r.to_dict()) for r in result.rows] == [
        "完成 3 / 计划 4 = 75 %",
        "主管评分 4 星 → 100 %",
        "本周没有计划项，计 0",
        "不在本模板内，不计分（(3.05 − 3.00) / (3.06 − 3.00) = 83 %）",  # computed all the same
    ]
    excluded = score(template, KPIS, [], {}, excluded={"ctr"})
    assert appraisal_formula(excluded.rows[2].to_dict()) == "申诉后剔除，不计分"
    unrated = score(template, KPIS, [], {})
    assert appraisal_formula(unrated.rows[1].to_dict()) == "尚未评分，计 0"


def test_formula_with_curve() -> None:
    template = parse_template(
        {
            "id": "t",
            "weights": {"conversion_rate": 100},
            "curves": {"conversion_rate": [{"below": 60, "score": 0}, {"below": 80, "score": 60}]},
        }
    )
    result = score(template, KPIS, [metric("conversion_rate", "3.00", "4.00", "3.70")])
    assert (
        appraisal_formula(result.rows[0].to_dict()) == "(3.70 − 3.00) / (4.00 − 3.00) = 70 % → 按曲线计 60 %"
    )


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        ("3", "%", "3.00"),
        ("3.05", "%", "3.05"),
        ("1.104", "%", "1.104"),
        ("130000", "元", "130,000"),
        ("12.5", "秒", "12.50"),
        ("2.123456", "", "2.1235"),
    ],
)
def test_formula_number(value: str, unit: str, shown: str) -> None:
    assert formula_number(D(value), unit) == shown


def test_explanation_card_shows_the_double11_example() -> None:
    person = Employee("lilei", "operations")
    chosen = select_template([DEFAULT, PROMO], person=person, week="2026-W46")
    items = [
        ItemInput("activity_sales", "双11会场", "双11主会场", D(100000), D(120000), D(130000)),
        ItemInput("conversion_rate", "优化详情页首屏", "shop", D("3.00"), D("5.00"), D("5.50")),
    ]
    result = score(chosen.template, KPIS, items)
    card = appraisal_card(
        view_of(result, chosen.reason, chosen.template.label), detail_url="https://x.test/p/a"
    )
    assert Card.from_dict(card.to_dict()) == card
    assert text.render(card).splitlines() == [
        "2026-W46 考核结果 · 李雷 · 142.5 分 S",
        "员工：李雷",
        "周：2026-W46",
        "总分：142.5",
        "等级：S",
        "模板：大促模板",
        "为什么用这个模板：大促模板（双11 10-20–11-11）替代 运营默认模板",
        "活动销量 · 权重 70 · 得 105.0 分",
        "事项：双11会场 @双11主会场",
        "基线 → 目标：100,000 元 → 120,000 元，实际 130,000 元",
        "(130,000 − 100,000) / (120,000 − 100,000) = 150 %",
        "支付转化率 · 权重 30 · 得 37.5 分",
        "事项：优化详情页首屏",
        "基线 → 目标：3.00 % → 5.00 %，实际 5.50 %",
        "(5.50 − 3.00) / (5.00 − 3.00) = 125 %",
        "总分 = Σ 权重 × 完成度 = 105.0 + 37.5 → 142.5（S）",
        "<申诉：活动销量>",
        "<申诉：支付转化率>",
        "<查看详情> https://x.test/p/a",
    ]
    assert card.theme == "green"
    assert card.buttons[0].value == {"appraisal": "7", "kpi": "activity_sales"}


def test_explanation_card_flags_and_versions() -> None:
    result = score(DEFAULT, KPIS, [metric("conversion_rate", "3.00", "3.06", "3.05")])
    card = appraisal_card(
        view_of(
            result, "运营默认模板", "运营默认模板", version=2, version_reason="申诉：点击率数据晚到，已更正"
        )
    )
    lines = text.render(card).splitlines()
    assert "版本：第 2 版：申诉：点击率数据晚到，已更正" in lines
    assert "(3.05 − 3.00) / (3.06 − 3.00) = 83 %" in lines
    assert "点击率 · 权重 40 · 得 0.0 分" in lines
    assert lines[-4:] == [
        "注意：",
        "· 点击率：模板要求的指标本周没有计划项，计 0 分",
        "<申诉：支付转化率>",
        "<申诉：点击率>",
    ]
    # 60 × 5/6 = 50.0 (grade D)
    assert card.title == "2026-W46 考核结果 · 李雷 · 50.0 分 D" and card.theme == "red"


def test_many_items_get_one_appeal_button_and_none_when_not_allowed() -> None:
    template = parse_template(
        {"id": "t", "weights": {"conversion_rate": 25, "ctr": 25, "complaint_rate": 25, "activity_sales": 25}}
    )
    result = score(template, KPIS, [])
    card = appraisal_card(view_of(result, "t", "t"))
    assert [(b.label, dict(b.value)) for b in card.buttons] == [("申诉某一项", {"appraisal": "7"})]
    assert appraisal_card(view_of(result, "t", "t"), can_appeal=False).buttons == ()


def test_adjustment_line() -> None:
    template = parse_template(
        {
            "id": "cs",
            "weights": {"complaint_rate": 100},
            "adjustments": [{"kpi": "bad_reviews", "name": "差评事件", "points": -5, "min": -20}],
        }
    )
    result = score(
        template, KPIS, [metric("complaint_rate", "1.20", "1.08", "1.08")], counts={"bad_reviews": D(2)}
    )
    lines = text.render(appraisal_card(view_of(result, "cs", "cs"))).splitlines()
    assert "差评事件 · 2 次 × -5 分 → -10.0 分（范围 -20–0）" in lines
    assert "总分 = Σ 权重 × 完成度 ± 加减分 = 100.0 − 10.0 → 90.0（B）" in lines


def test_appeal_form() -> None:
    items = [KpiChoice("conversion_rate", "支付转化率"), KpiChoice("ctr", "点击率")]
    one = appeal_form(appraisal_id=7, week="2026-W48", items=items, kpi="ctr")
    assert one.form is not None and one.form.action == "appraisal.appeal.submit"
    assert dict(one.form.values) == {"appraisal": "7", "kpi": "ctr"}
    assert [i.name for i in one.form.inputs] == ["note"]
    assert "“点击率”" in text.render(one)
    pick = appeal_form(appraisal_id=7, week="2026-W48", items=items, error="请写申诉理由")
    assert pick.form is not None and [i.name for i in pick.form.inputs] == ["kpi", "note"]
    assert pick.theme == "red" and "错误：请写申诉理由" in text.render(pick)


def test_appeal_review_and_result() -> None:
    result = score(DEFAULT, KPIS, [metric("conversion_rate", "3.00", "3.06", "3.05")])
    appeal = AppealView(
        3, "李雷", "2026-W48", "支付转化率", "%", "metric", "周日数据晚到", result.rows[0].to_dict()
    )
    card = appeal_review(appeal)
    assert card.form is not None and card.form.action == "appraisal.appeal.decide"
    assert dict(card.form.values) == {"appeal": "3"}
    rendered = text.render(card)
    assert "已发布的计算：(3.05 − 3.00) / (3.06 − 3.00) = 83 %" in rendered
    assert "[更正后的实际值（%）] 选“更正数值”时填写" in rendered
    accepted = AppealView(**{**appeal.__dict__, "status": "accepted", "reply": "已核实"})
    assert text.render(appeal_result(accepted, new_score=D(60), new_grade="C")).splitlines() == [
        "申诉结果 · 2026-W48",
        "你对“支付转化率”的申诉已被接受。新版本考核：60.0 分 C。",
        "主管回复：已核实",
    ]
    rejected = AppealView(**{**appeal.__dict__, "status": "rejected", "reply": "数据无误"})
    assert "被驳回" in text.render(appeal_result(rejected))


def test_template_cards() -> None:
    card = template_switch_card(
        team_name="运营组",
        current="运营默认模板",
        choices=[
            TemplateChoice("ops-default", "运营默认模板"),
            TemplateChoice("ops-promo", "大促模板", "双11 10-20–11-11"),
        ],
        until=[Option("2026-11-29", "本周日 11-29"), Option("", "不设截止")],
    )
    assert card.form is not None and card.form.action == "template.switch"
    assert [o.label for o in card.form.inputs[0].options] == [
        "运营默认模板",
        "大促模板（双11 10-20–11-11）",
        "恢复自动选择",
    ]
    assert [i.kind for i in card.form.inputs] == ["select", "select"]  # selects only: every platform
    assert card.form.inputs[1].value == "2026-11-29" and card.buttons == ()
    done = template_switched(
        team_name="运营组", template="大促模板", window="11-23–12-01", replaced="运营默认模板", by="张伟"
    )
    assert text.render(done).splitlines()[1:] == [
        "张伟 将 运营组 的考核模板切换为 大促模板（11-23–12-01）。",
        "原来：运营默认模板",
    ]


def test_rating_form() -> None:
    card = rating_form(
        week="2026-W48",
        weeks=["2026-W48", "2026-W47"],
        people=[KpiChoice("hanmeimei", "韩梅梅")],
        kpis=[KpiChoice("attitude", "工作态度")],
    )
    assert card.form is not None and card.form.action == "appraisal.rate"
    assert [i.name for i in card.form.inputs] == ["week", "person", "kpi", "stars", "done", "planned"]
    assert [o.value for o in card.form.inputs[3].options] == ["1", "2", "3", "4", "5"]


LINK = "https://x.test/p/signed-token"


def every_card() -> dict[str, Card]:
    """Each appraisal card with representative values, for the platform renderers."""
    many = parse_template(
        {"id": "t", "weights": {"conversion_rate": 25, "ctr": 25, "complaint_rate": 25, "activity_sales": 25}}
    )
    full = score(
        PROMO,
        KPIS,
        [
            ItemInput("activity_sales", "双11会场" * 10, "双11主会场", D(100000), D(120000), D(130000)),
            ItemInput("conversion_rate", "优化详情页首屏", "shop", D("3.00"), D("5.00"), D("2.50")),
            ItemInput("ctr", "不在模板里", "shop", D("2.0"), D("2.2"), None),
        ],
    )
    items = [KpiChoice("conversion_rate", "支付转化率"), KpiChoice("ctr", "点击率")]
    appeal = AppealView(
        3, "李雷", "2026-W48", "支付转化率", "%", "metric", "数据晚到" * 50, full.rows[1].to_dict()
    )
    return {
        "appraisal": appraisal_card(
            view_of(full, "大促模板（双11 10-20–11-11）替代 运营默认模板", "大促模板"),
            detail_url="https://x.test/p/a",
        ),
        "appraisal_many": appraisal_card(view_of(score(many, KPIS, []), "t", "t")),
        "appeal_form": appeal_form(appraisal_id=7, week="2026-W48", items=items, kpi="ctr", link=LINK),
        "appeal_pick": appeal_form(
            appraisal_id=7, week="2026-W48", items=items, error="请写申诉理由", link=LINK
        ),
        "appeal_review": appeal_review(appeal, link=LINK),
        "appeal_result": appeal_result(
            AppealView(**{**appeal.__dict__, "status": "accepted"}), new_score=D(60), new_grade="C"
        ),
        "template_switch": template_switch_card(
            team_name="运营组",
            current="运营默认模板",
            choices=[TemplateChoice(f"t{n}", f"模板{n}", "双11 10-20–11-11") for n in range(8)],
            until=[Option("2026-11-29", "本周日 11-29"), Option("none", "不设截止")],
        ),
        "template_switched": template_switched(
            team_name="运营组", template="大促模板", window="11-23–12-01", replaced="运营默认模板", by="张伟"
        ),
        "rating_form": rating_form(
            week="2026-W48",
            weeks=["2026-W48", "2026-W47"],
            people=[KpiChoice(f"p{n}", f"员工{n}") for n in range(12)],
            kpis=[KpiChoice("leader_rating", "主管评分"), KpiChoice("learning", "学习进度")],
            link=LINK,
        ),
    }


@pytest.mark.parametrize("name", sorted(every_card()))
def test_every_platform_renders_every_appraisal_card(name: str) -> None:
    from cards.render import dingtalk, feishu, html, wecom

    card = every_card()[name]
    assert Card.from_dict(card.to_dict()) == card
    payload = feishu.render(card)
    assert json.dumps(payload, ensure_ascii=False)
    assert feishu.render(card, interactive=False)
    assert wecom.app_messages(card, task_id="t-1", fallback_url="https://x.test/p")
    assert wecom.chat_messages(card) and wecom.robot_messages(card)
    assert dingtalk.robot_message(card) and dingtalk.app_robot_message(card) and dingtalk.card_params(card)
    assert html.render(card) and text.render(card)


def test_switch_card_is_a_wecom_select_card() -> None:
    from cards.render import wecom

    card = every_card()["template_switch"]
    (message,) = [m for m in wecom.app_messages(card, task_id="t-1") if m.get("msgtype") == "template_card"]
    body = message["template_card"]
    assert body["card_type"] == "multiple_interaction"
    assert [s["question_key"] for s in body["select_list"]] == ["template", "until"]


# ---------------------------------------------------------------- en-US: every explanation kind

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
EN_KPIS = {
    "conv": KpiInfo("conv", "Conversion", "%", "up"),
    "ctr": KpiInfo("ctr", "CTR", "%", "up"),
    "complaints": KpiInfo("complaints", "Complaints", "%", "down"),
    "sales": KpiInfo("sales", "Event sales", "", "up"),
    "learning": KpiInfo("learning", "Learning", "", "up", "checklist"),
    "attitude": KpiInfo("attitude", "Attitude", "", "up", "rating"),
}


def en_item(kpi: str, baseline: str | None, target: str | None, actual: str | None) -> ItemInput:
    d = lambda v: D(v) if v is not None else None  # noqa: E731
    return ItemInput(kpi, "Landing page", "shop", d(baseline), d(target), d(actual))


def en_card(spec: dict[str, Any], items: list[ItemInput], **kw: Any) -> Card:
    template = parse_template({"id": "t", "name": "Default", **spec})
    result = score(template, EN_KPIS, items, kw.pop("ratings", {}), **kw)
    view = dataclasses.replace(view_of(result, "role default", "Default"), person_name="Li Lei")
    return appraisal_card(view, detail_url="https://x.test/p/a", locale="en-US")


def words(node: Any) -> list[str]:
    """Every string a card holds (titles, fields, blocks, button labels)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [w for value in node.values() for w in words(value)]
    if isinstance(node, list | tuple):
        return [w for value in node for w in words(value)]
    return []


EN_WEEKS: dict[str, tuple[dict[str, Any], list[ItemInput], dict[str, Any], list[str]]] = {
    "formula, over the cap, wrong way": (
        {"weights": {"conv": 50, "ctr": 30, "complaints": 20}},
        [
            en_item("conv", "3.00", "3.06", "3.12"),
            en_item("ctr", "3.00", "3.06", "2.90"),
            en_item("complaints", "1.20", "1.08", "1.104"),
        ],
        {},
        [
            "(3.12 − 3.00) / (3.06 − 3.00) = 200 % → capped at 150 %",
            "(2.90 − 3.00) / (3.06 − 3.00) = -167 % → moved the wrong way, counts 0 %",
            "· Conversion: completion above the cap of 150 %, counts the cap",
            "· CTR: moved the wrong way, counts 0",
        ],
    ),
    "curve, no data, no levels, equal levels": (
        {
            "weights": {"conv": 40, "ctr": 20, "complaints": 20, "sales": 20},
            "curves": {"conv": [{"below": 60, "score": 0}, {"below": 80, "score": 60}]},
        },
        [
            en_item("conv", "3.00", "4.00", "3.70"),
            en_item("ctr", "3.00", "3.06", None),
            en_item("complaints", None, None, "1.0"),
            en_item("sales", "100", "100", "120"),
        ],
        {},
        [
            "(3.70 − 3.00) / (4.00 − 3.00) = 70 % → 60 % on the scoring curve",
            "Scoring curve: below 60 % counts 0 %; below 80 % counts 60 %; otherwise as is",
            "no data yet: counts 0",
            "no baseline or target: counts 0",
            "· CTR: no data this week, counts 0 points",
            "· Complaints: the plan item has no baseline or target, counts 0 points",
            "· Event sales: the target equals the baseline, so completion cannot be computed, counts 0 points",
        ],
    ),
    "rating, checklist, unplanned, outside": (
        {"weights": {"learning": 40, "attitude": 40, "ctr": 20}},
        [en_item("conv", "3.00", "3.06", "3.05")],
        {"ratings": {"learning": RatingInput(done=3, planned=4), "attitude": RatingInput(stars=4)}},
        [
            "done 3 / planned 4 = 75 %",
            "leader's rating 4 stars → 100 %",
            "no plan item this week: counts 0",
            "not in this template: not scored ((3.05 − 3.00) / (3.06 − 3.00) = 83 %)",
            "· CTR: the template counts this KPI but there is no plan item this week, counts 0 points",
            "· Conversion: not in the template “Default”, not scored",
        ],
    ),
    "unrated, nothing done, appeals, two items on a KPI, adjustment": (
        {
            "weights": {"learning": 20, "attitude": 20, "conv": 30, "ctr": 30},
            "adjustments": [{"kpi": "bad_reviews", "name": "Bad reviews", "points": -5, "min": -20}],
        },
        [en_item("conv", "3.00", "3.06", "3.05"), en_item("conv", "3.00", "3.10", "3.05")],
        {"excluded": {"ctr"}, "corrections": {"conv": D("3.06")}, "counts": {"bad_reviews": D(2)}},
        [
            "not rated yet: counts 0",
            "nothing recorded as done: counts 0",
            "removed after an appeal: not scored",
            "Bad reviews · 2 × -5 points → -10.0 points (range -20–0)",
            "· Attitude: not rated this week, counts 0 points",
            "· Learning: nothing recorded as done this week, counts 0 points",
            "· CTR: removed after an appeal, not scored (the other KPIs' weights scale up to 100)",
            "· Conversion: actual corrected after an appeal to 3.06 % (was 3.05 %)",
            "Several plan items on one KPI share its weight equally; metric items each get their own "
            "completion from their own data, rating and checklist items share one completion (the stars, "
            "or tasks done ÷ the sum of the tasks planned).",
        ],
    ),
    "every KPI removed": (
        {"weights": {"conv": 100}},
        [en_item("conv", "3.00", "3.06", "3.05")],
        {"excluded": {"conv"}},
        ["· every KPI was removed after appeals: no score this week"],
    ),
}


@pytest.mark.parametrize("name", list(EN_WEEKS))
def test_every_explanation_kind_reads_in_english(name: str) -> None:
    spec, items, kw, expected = EN_WEEKS[name]
    card = en_card(spec, items, **dict(kw))
    assert card.title in words(card.to_dict())  # the walk sees the card's text
    assert [w for w in words(card.to_dict()) if CJK.search(w)] == []
    lines = text.render(card).splitlines()
    for sentence in expected:
        assert sentence in lines


def test_stored_sentences_stay_chinese_in_zh_cn_and_unknown_ones_pass_through() -> None:
    from cards.explain import stored_text

    assert stored_text("CTR：本周没有数据，计 0 分") == "CTR：本周没有数据，计 0 分"
    assert stored_text("一句新的话", "en-US") == "一句新的话"
    assert stored_text("CTR：评分应为 1–5 星，收到 7，计 0 分", "en-US") == (
        "CTR: a rating is 1–5 stars, got 7, counts 0 points"
    )
