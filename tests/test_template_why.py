"""Issue 20 "Appraisal explanation": 为什么用这个模板 names the rule that chose the template,
what it replaced and since when, on the card (zh-CN and en-US) and the page."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from handlers.appraisal_runs import run_week
from storage.models import Scenario

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # the clock fixture: Monday 10:00 +08:00, 2026-W48
ORDER = "。规则顺序：手动切换 > 场景 > 时段 > 员工类型 > 岗位默认。"


def _appraise(db, week: str, team: str) -> None:
    with db() as s, s.begin():
        run_week(s, week, NOW, team=team, hold=False)


@pytest.mark.parametrize(
    "who, week, team, words",
    [
        (
            "lilei",
            "2026-W48",
            "ops",
            "岗位默认：本周没有适用的手动切换、场景、时段或员工类型模板，用运营岗位的默认模板“运营默认模板”"
            + ORDER,
        ),
        ("zhaoqiang", "2026-W48", "ops", "员工类型规则：新员工，用“新人模板”，替代“运营默认模板”" + ORDER),
        (
            "lilei",
            "2026-W46",
            "ops",
            "时段规则：本周在 双11（每年 10-20 至 11-11）内，用“大促模板”，替代“运营默认模板”" + ORDER,
        ),
    ],
)
def test_the_card_names_the_rule(sim, demo_team, db, who, week, team, words):
    _appraise(db, week, team)
    (card,) = sim.say(who, f"考核 {week}")
    assert card["title"].startswith(f"{week} 考核结果")
    assert words in card["text"]


def test_a_scenario_is_named(sim, demo_team, db):
    with db() as s, s.begin():
        s.get(Scenario, "logistics_peak").active = True
    _appraise(db, "2026-W48", "service")
    (card,) = sim.say("sunli", "考核")
    name = "物流高峰"
    assert f"场景规则：“{name}”场景进行中，用“物流高峰客服模板”，替代“客服默认模板”{ORDER}" in card["text"]


def test_a_manual_switch_says_who_and_since_when(sim, demo_team, db):
    (done,) = sim.say("zhangwei", "切换模板 ops-promo 至 12-01")
    assert done["title"] == "考核模板已切换 · 运营设计组"
    _appraise(db, "2026-W48", "ops")
    (card,) = sim.say("lilei", "考核")
    expected = (
        "张伟 手动切换为“大促模板”（2026-11-23 至 2026-12-01），手动切换优先于其他规则，替代“运营默认模板”"
    )
    assert expected + ORDER in card["text"]


def test_the_page_shows_the_same_explanation(services, client, demo_team, db):
    _appraise(db, "2026-W48", "ops")
    token = services.links.token("zhaoqiang", "appraisal", "2026-W48", services.clock())
    body = client.get(f"/p/{token}").get_data(as_text=True)
    assert "员工类型规则：新员工，用“新人模板”，替代“运营默认模板”" in body


def test_en_us_words_the_reason_and_the_card(sim, services, demo_team, db, monkeypatch):
    monkeypatch.setattr(services, "settings", replace(services.settings, locale="en-US"))
    _appraise(db, "2026-W48", "ops")
    (card,) = sim.say("zhaoqiang", "考核")
    assert card["title"].startswith("2026-W48 appraisal · 赵强 · ")
    assert (
        "Employee-type rule: a new employee, so “新人模板” applies instead of “运营默认模板”. "
        "Rule order: manual switch > scenario > period > employee type > role default."
    ) in card["text"]
    assert "Why this template" in card["text"] and "为什么用这个模板" not in card["text"]
    assert "= Σ weight × completion = " in card["text"] and "总分" not in card["text"]
    assert "学习进度 · weight 60 · " in card["text"]  # 新人模板: learning 60, leader rating 40
