"""Issue 20 "Planning": the plan form and receipt as a person meets them, through the simulator."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from sqlalchemy import func, select

from bot.demo.run import demo_value
from cards import format as fmt
from storage.models import Plan, PlanItem

YESTERDAY = date(2026, 11, 22)  # the clock is Monday 2026-11-23 10:00 +08:00 (2026-W48)
UNCOUNTED = "本周模板不计此指标（不计分）"


def _values(*items: tuple[str, str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for n, (text, kpi, target) in enumerate(items, start=1):
        values |= {
            f"item{n}_text": text,
            f"item{n}_kpi": kpi,
            f"item{n}_target": target,
            f"item{n}_scope": "",
        }
    return values


def _options(card: dict, n: int = 1) -> list[str]:
    select_ = next(f for f in card["form"]["fields"] if f["name"] == f"item{n}_kpi")
    return [o["label"] for o in select_["options"]]


# ---------------------------------------------------------------- 1. an item that will not count


def test_an_item_the_template_does_not_score_is_stored_with_a_warning(sim, demo_team, db):
    (receipt,) = sim.act(
        "lilei",
        "plan.submit",
        _values(("优化详情页", "conversion_rate", "+2%"), ("差评回访", "complaint_rate", "-10%")),
    )
    assert receipt["title"] == "本周计划已提交 · 2026-W48"
    assert f"第2项 投诉率：{UNCOUNTED}" in receipt["text"]
    assert "投诉率（不计分）" in receipt["text"]
    assert "第1项" not in receipt["text"]  # 支付转化率 counts in 运营默认模板
    with db() as s:
        assert s.scalars(select(PlanItem.kpi_key).order_by(PlanItem.position)).all() == [
            "conversion_rate",
            "complaint_rate",
        ]
    # the leader's team progress card names it
    (team,) = sim.say("zhangwei", "进度")
    assert team["title"] == "运营设计组 · 2026-W48 团队进度"
    assert f"李雷 第2项 投诉率：{UNCOUNTED}" in team["text"]
    # the form, opened again, flags the row and marks the option
    (form,) = sim.say("lilei", "写计划")
    assert f"第2项 投诉率：{UNCOUNTED}" in form["text"]
    assert "投诉率（%） · 不计分" in _options(form)


@pytest.mark.parametrize(
    "who, counted",
    [
        ("lilei", "支付转化率、详情页点击率"),  # 运营默认模板
        ("zhaoqiang", "学习进度、主管评分"),  # a new employee: 新人模板
        ("chenjing", "详情页点击率、支付转化率、主管评分"),  # 设计默认模板
    ],
)
def test_the_form_says_which_kpis_the_weeks_template_scores(sim, demo_team, who, counted):
    (form,) = sim.say(who, "写计划")
    assert f"计分的指标：{counted}。" in form["text"]


def test_a_template_kpi_item_has_no_warning(sim, demo_team):
    (receipt,) = sim.act("lilei", "plan.submit", _values(("主图测试", "ctr", "+0.5pp")))
    assert UNCOUNTED not in receipt["text"] and "不计分" not in receipt["text"]


# ---------------------------------------------------------------- 2. the KPI list


@pytest.mark.parametrize(
    "who, first",
    [
        ("lilei", ["支付转化率（%）", "详情页点击率（%）", "活动销量（件） · 不计分"]),
        ("zhenggang", ["24小时发货率（%）", "库存周转天数（天）", "错发率（%）"]),
        ("sunli", ["投诉率（%）", "平均响应时长（秒）", "询单转化率（%）"]),
    ],
)
def test_the_kpi_list_starts_with_the_template_then_the_role(sim, demo_team, who, first):
    (form,) = sim.say(who, "写计划")
    assert _options(form)[:3] == first


def test_an_unknown_kpi_lists_every_kpi_the_templates_first(sim, demo_team):
    (card,) = sim.act("lilei", "plan.submit", _values(("优化", "no_such", "+1")))
    error = next(f["error"] for f in card["form"]["fields"] if f["name"] == "item1_kpi")
    listed = error.split("可选：", 1)[1].rstrip("）").split("、")
    assert listed[:2] == ["支付转化率", "详情页点击率"]
    assert len(listed) == 15 and "退款率" in listed and "库存周转天数" in listed


# ---------------------------------------------------------------- 3. pre-selected sections left empty


def test_sections_with_only_their_preselected_kpi_are_ignored(sim, demo_team, db):
    values = _values(
        ("优化详情页", "conversion_rate", "+2%"), ("", "ctr", ""), ("", "activity_sales", ""), ("", "", "")
    )
    (receipt,) = sim.act("lilei", "plan.submit", values)
    assert receipt["title"] == "本周计划已提交 · 2026-W48"
    with db() as s:
        assert s.scalar(select(func.count()).select_from(PlanItem)) == 1


def test_a_section_with_text_but_no_kpi_is_still_refused(sim, demo_team, db):
    (card,) = sim.act(
        "lilei", "plan.submit", _values(("优化详情页", "conversion_rate", "+2%"), ("主图测试", "", ""))
    )
    errors = {f["name"]: f["error"] for f in card["form"]["fields"] if f["error"]}
    assert errors == {"item2_kpi": "每一项都要关联一个指标"}
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 0


# ---------------------------------------------------------------- 4. counts are whole


@pytest.mark.parametrize(
    "v, unit, shown",
    [
        (Decimal("967.2"), "件", "967 件"),
        (Decimal("806"), "件", "806 件"),
        (Decimal("12.5"), "人", "13 人"),
        (Decimal("1234.4"), "单", "1,234 单"),
        (Decimal("3.0"), "次", "3 次"),
        (Decimal("3.0"), "%", "3.00 %"),
        (Decimal("967.2"), "元", "967.20 元"),
    ],
)
def test_count_units_are_whole(v, unit, shown):
    assert fmt.value(v, unit) == shown


def test_the_receipt_shows_a_count_kpi_in_whole_numbers(sim, demo_team):
    base = demo_value("activity_sales", YESTERDAY)
    (receipt,) = sim.act("lilei", "plan.submit", _values(("会场引流", "activity_sales", "+20%")))
    whole = lambda v: f"{int(v.quantize(Decimal(1), ROUND_HALF_UP)):,} 件"  # noqa: E731
    assert f"{whole(base)} → {whole(base * Decimal('1.2'))}" in receipt["text"]
    assert ".20 件" not in receipt["text"] and ".00 件" not in receipt["text"]


# ---------------------------------------------------------------- 5. a text-plan line too long


def test_a_text_plan_line_over_the_limit_is_answered_with_the_limit(sim, demo_team, db):
    long_line = "优化" * 200 + " 支付转化率 +2pp"
    (card,) = sim.say("lilei", f"计划\n主图测试 详情页点击率 +0.5pp\n{long_line}")
    assert card["title"] == "计划未保存"
    assert f"第3行：最多 300 字，这一行 {len(long_line)} 字" in card["text"]
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 0


def test_an_item_text_over_its_limit_says_both_numbers(sim, demo_team):
    (card,) = sim.say("lilei", f"计划\n{'优' * 250} 支付转化率 +2pp")
    assert "第2行：内容太长：最多 200 字，这一项 250 字" in card["text"]


# ---------------------------------------------------------------- 6. a locked re-submission keeps the edit


def test_a_locked_resubmission_keeps_the_edit_and_does_not_promise_a_new_version(sim, demo_team, clock, db):
    sim.act("lilei", "plan.submit", _values(("优化详情页", "conversion_rate", "+2%")))
    clock.set(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))  # Tuesday 11:00, past Monday's deadline
    (card,) = sim.act("lilei", "plan.submit", _values(("改成主图测试", "ctr", "+0.5pp")))
    assert "需要主管解锁" in card["form"]["error"]
    kept = {f["name"]: f["value"] for f in card["form"]["fields"]}
    assert (kept["item1_text"], kept["item1_kpi"], kept["item1_target"]) == ("改成主图测试", "ctr", "+0.5pp")
    assert "再次提交会生成新版本" not in card["text"]
    with db() as s:
        assert s.scalars(select(PlanItem.text)).all() == ["优化详情页"]


def test_the_web_form_keeps_the_edit_when_locked(services, client, sim, demo_team, clock):
    sim.act("lilei", "plan.submit", _values(("优化详情页", "conversion_rate", "+2%")))
    clock.set(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))
    token = services.links.token("lilei", "plan-form", "2026-W48", services.clock())
    posted = _values(("改成主图测试", "ctr", "+0.5pp"), ("差评回访", "complaint_rate", "-10%"))
    res = client.post(f"/p/{token}", data=posted | {"_nonce": "c" * 32})
    body = res.get_data(as_text=True)
    assert res.status_code == 200
    assert "需要主管解锁" in body
    assert 'value="改成主图测试"' in body and 'value="差评回访"' in body
    assert "再次提交会生成新版本" not in body
    assert f"{UNCOUNTED}</output>" in body  # the row on 投诉率, previewed by the server
