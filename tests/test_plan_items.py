"""A plan's items: the text syntax and validation against the team's KPIs (handlers/plan_items.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from handlers.plan_items import Draft, parse_text_plan, validate
from storage.models import Kpi


@pytest.mark.parametrize(
    "text, drafts, errors",
    [
        (
            "计划\n优化详情页首屏 支付转化率 +2pp\n差评回访 投诉率 -10%\n双11会场 活动销量 +20% @双11主会场",
            [
                ("第2行", "优化详情页首屏", "支付转化率", "+2pp", ""),
                ("第3行", "差评回访", "投诉率", "-10%", ""),
                ("第4行", "双11会场", "活动销量", "+20%", "双11主会场"),
            ],
            [],
        ),
        ("plan\n上新 三件套 ctr +0.5", [("第2行", "上新 三件套", "ctr", "+0.5", "")], []),
        ("计划\n\n优化 支付转化率 =3.5\n", [("第3行", "优化", "支付转化率", "=3.5", "")], []),
        (
            "计划\n只有两段 +2pp",
            [],
            ["第2行：需要“事项 指标 目标”三部分，例如：优化详情页首屏 支付转化率 +2pp"],
        ),
        ("计划\n@店铺", [], ["第2行：需要“事项 指标 目标”三部分，例如：优化详情页首屏 支付转化率 +2pp"]),
    ],
)
def test_text_plan_lines(text, drafts, errors):
    parsed, problems = parse_text_plan(text)
    assert [(d.where, d.text, d.kpi, d.target, d.scope) for d in parsed] == drafts
    assert problems == errors


def _kpi(key, name, unit="%", direction="up", kind="metric"):
    return Kpi(key=key, name=name, unit=unit, direction=direction, metric=key, kind=kind, scope="shop")


KPIS = [
    _kpi("conversion_rate", "支付转化率"),
    _kpi("complaint_rate", "投诉率", direction="down"),
    _kpi("pay_amount", "支付金额", unit="元"),
    _kpi("learning", "学习进度", unit="", kind="checklist"),
    _kpi("leader_rating", "主管评分", unit="", kind="rating"),
]


@pytest.mark.parametrize(
    "kpi, target, baseline, level, problem",
    [
        ("支付转化率", "+2pp", "3.00", "5.00", None),
        ("conversion_rate", "+2%", "3.00", "3.06", None),
        ("投诉率", "-10%", "3.00", "2.70", None),
        ("支付转化率", "+0.5", "3.00", "3.50", None),
        ("支付转化率", "=3.5", "3.00", "3.5", None),
        ("支付转化率", "+abc", "3.00", None, "看不懂"),
        ("支付转化率", "", "3.00", None, "请写目标"),
        ("支付转化率", "=3.00", "3.00", None, "目标等于基线"),
        ("支付转化率", "-1pp", "3.00", None, "越高越好"),
        ("投诉率", "+10%", "3.00", None, "越低越好"),
        ("支付金额", "+2pp", "1000", None, "不能用百分点"),
        ("支付金额", "+20%", "0", None, "当前为 0"),
        ("支付转化率", "+99999999999999", "3.00", None, "大得不合理"),
        ("转化", "+2pp", "3.00", None, "没有叫“转化”的指标"),
        ("", "+2pp", "3.00", None, "每一项都要关联一个指标"),
        ("学习进度", "=5", None, "5", None),
        ("学习进度", "+5", None, None, "任务数"),
        ("主管评分", "", None, None, None),
    ],
)
def test_item_validation(kpi, target, baseline, level, problem):
    draft = Draft("第1项", "做一件事", kpi, target)
    base = Decimal(baseline) if baseline is not None else None
    resolved, problems = validate([draft], KPIS, lambda k, scope: base)
    if problem:
        assert resolved == []
        assert problem in " ".join(problems["第1项"].values())
    else:
        assert problems == {}
        got = resolved[0].target
        assert (None if got is None else got) == (None if level is None else Decimal(level))


def test_no_baseline_yet_is_accepted_and_fixed_by_the_first_value():
    resolved, problems = validate(
        [Draft("第1项", "新品", "支付转化率", "+2%", "sku-9")], KPIS, lambda k, s: None
    )
    assert problems == {} and resolved[0].baseline is None and resolved[0].scope == "sku-9"
