"""Appraisal runs on the database: frozen versions, template switching, appeals, ratings, export.

Test data is inserted as model rows; chat flows go through the simulator like a transcript.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import select

from appraisal.targets import parse_target, resolve
from appraisal.templates import spec_of
from bot.cli import main
from handlers import exports
from handlers.appraisals import (
    AppraisalError,
    cancel_switch,
    current_appraisal,
    export_appraisals,
    publish,
    run_week,
    switch_template,
)
from storage.models import (
    Appeal,
    Appraisal,
    AuditLog,
    Identity,
    Kpi,
    MetricSample,
    OutboxMessage,
    Period,
    Person,
    Plan,
    PlanItem,
    Rating,
    Scenario,
    Team,
    Template,
    TemplateSwitch,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # the clock fixture: Monday 10:00 +08:00, 2026-W48

KPIS = [
    ("conversion_rate", "支付转化率", "%", "up", "pay_conversion_rate", "metric"),
    ("ctr", "详情页点击率", "%", "up", "ctr", "metric"),
    ("activity_sales", "活动销量", "件", "up", "activity_sales", "metric"),
    ("complaint_rate", "投诉率", "%", "down", "complaint_rate", "metric"),
    ("logistics_resolution", "物流问题处理率", "%", "up", "logistics_issue_resolution_rate", "metric"),
    ("bad_reviews", "差评数", "条", "down", "bad_reviews", "metric"),
    ("learning", "学习进度", "", "up", None, "checklist"),
    ("leader_rating", "主管评分", "", "up", None, "rating"),
]
TEMPLATES: list[dict[str, Any]] = [
    {
        "id": "ops-default",
        "name": "运营默认模板",
        "role": "operations",
        "weights": {"conversion_rate": 60, "ctr": 40},
    },
    {
        "id": "ops-promo",
        "name": "大促模板",
        "role": "operations",
        "period": "double11",
        "weights": {"activity_sales": 70, "conversion_rate": 30},
    },
    {
        "id": "design-default",
        "name": "设计默认模板",
        "role": "design",
        "weights": {"ctr": 50, "conversion_rate": 30, "leader_rating": 20},
    },
    {
        "id": "newcomer",
        "name": "新人模板",
        "employee_type": "new",
        "weights": {"learning": 60, "leader_rating": 40},
    },
    {
        "id": "cs-default",
        "name": "客服默认模板",
        "role": "customer_service",
        "weights": {"complaint_rate": 100},
        "adjustments": [{"kpi": "bad_reviews", "name": "差评事件", "points": -5, "min": -20}],
    },
    {
        "id": "cs-logistics",
        "name": "物流高峰客服模板",
        "role": "customer_service",
        "scenario": "logistics_peak",
        "weights": {"logistics_resolution": 60, "complaint_rate": 40},
    },
]
PEOPLE = [
    # id, name, team, role, type, hire date
    ("zhangwei", "张伟", "ops", "operations", "veteran", None),
    ("lilei", "李雷", "ops", "operations", "veteran", None),
    ("zhaoqiang", "赵强", "ops", "operations", "veteran", date(2026, 10, 12)),  # new by hire date
    ("chenjing", "陈静", "ops", "design", "veteran", None),
    ("wangfang", "王芳", "service", "customer_service", "veteran", None),
    ("sunli", "孙丽", "service", "customer_service", "veteran", None),
]


@pytest.fixture
def shop(db) -> None:
    with db() as s, s.begin():
        s.add(Team(id="ops", name="运营设计组", leader_id=None, chat_bot="sim", chat_id="ops"))
        s.add(Team(id="service", name="客服组", leader_id=None, chat_bot="sim", chat_id="service"))
        s.flush()
        for pid, name, team, role, ptype, hired in PEOPLE:
            s.add(Person(id=pid, name=name, team_id=team, role=role, type=ptype, hire_date=hired))
            s.add(Identity(bot_id="sim", external_id=pid, person_id=pid))
        s.flush()
        s.get(Team, "ops").leader_id = "zhangwei"
        s.get(Team, "service").leader_id = "wangfang"
        for key, name, unit, direction, metric, kind in KPIS:
            s.add(
                Kpi(
                    key=key, name=name, unit=unit, direction=direction, metric=metric, kind=kind, scope="shop"
                )
            )
        for entry in TEMPLATES:
            s.add(
                Template(
                    id=entry["id"],
                    name=entry["name"],
                    role=entry.get("role"),
                    period=entry.get("period"),
                    scenario=entry.get("scenario"),
                    employee_type=entry.get("employee_type"),
                    spec=spec_of(entry),
                )
            )
        s.add(Period(id="double11", name="双11", start_md="10-20", end_md="11-11"))
        s.add(Scenario(id="logistics_peak", name="物流高峰", active=False))


def add_plan(s, person_id: str, week: str, items: list[tuple[str, str, str | None, str]]) -> Plan:
    """items: (kpi, target text, baseline, scope); targets resolve the way filing does."""
    person = s.get(Person, person_id)
    plan = Plan(
        person_id=person_id, team_id=person.team_id, week=week, version=1, current=True, submitted_at=NOW
    )
    for n, (kpi_key, text, baseline, scope) in enumerate(items, 1):
        kpi = s.get(Kpi, kpi_key)
        base = D(baseline) if baseline is not None else None
        if kpi.kind == "checklist":
            level, base = parse_target(text).amount, D(0)
        else:
            level = resolve(parse_target(text), base, unit=kpi.unit, direction=kpi.direction)
        plan.items.append(
            PlanItem(
                position=n,
                text=f"事项{n}",
                kpi_key=kpi_key,
                scope=scope,
                target_text=text,
                baseline=base,
                target=level,
            )
        )
    s.add(plan)
    s.flush()
    return plan


def sample(s, metric: str, day: str, value: str, scope: str = "shop") -> None:
    s.merge(
        MetricSample(metric=metric, scope=scope, day=date.fromisoformat(day), value=D(value), fetched_at=NOW)
    )


def lilei_week48(s) -> None:
    add_plan(
        s, "lilei", "2026-W48", [("conversion_rate", "+2pp", "3.00", "shop"), ("ctr", "+10%", "2.0", "shop")]
    )
    sample(s, "pay_conversion_rate", "2026-11-22", "3.00")  # the week before
    sample(s, "pay_conversion_rate", "2026-11-24", "4.20")
    sample(s, "pay_conversion_rate", "2026-11-27", "5.50")  # the latest in the week
    sample(s, "pay_conversion_rate", "2026-11-30", "9.99")  # next week: never used
    sample(s, "ctr", "2026-11-26", "2.16")


def by_person(rows: list[Appraisal]) -> dict[str, Appraisal]:
    return {r.person_id: r for r in rows}


# ---------------------------------------------------------------- runs and versions


def test_run_week_freezes_one_result_per_person(db, shop) -> None:
    with db() as s, s.begin():
        lilei_week48(s)
        add_plan(s, "zhaoqiang", "2026-W48", [("learning", "=4", None, "shop")])
        s.add(
            Rating(person_id="zhaoqiang", week="2026-W48", kpi_key="learning", done=3, by="zhangwei", at=NOW)
        )
        s.add(
            Rating(
                person_id="zhaoqiang",
                week="2026-W48",
                kpi_key="leader_rating",
                stars=4,
                by="zhangwei",
                at=NOW,
            )
        )
        rows = by_person(run_week(s, "2026-W48", NOW))

    assert set(rows) == {
        "lilei",
        "zhaoqiang",
        "chenjing",
        "sunli",
    }  # leaders without a plan are not appraised
    lilei = rows["lilei"]
    assert (lilei.version, lilei.current, lilei.template_id, lilei.template_reason) == (
        1,
        True,
        "ops-default",
        "运营默认模板",
    )
    # 60 × (5.50 − 3.00)/(5.00 − 3.00) + 40 × (2.16 − 2.0)/(2.2 − 2.0) = 60 × 1.25 + 40 × 0.8
    assert (lilei.score, lilei.grade) == (D(107), "A")
    assert [(i["kpi"], D(i["actual"]), D(i["completion"]), D(i["contribution"])) for i in lilei.items] == [
        ("conversion_rate", D("5.5"), D("1.25"), D(75)),
        ("ctr", D("2.16"), D("0.8"), D(32)),
    ]
    assert lilei.flags == []

    new = rows["zhaoqiang"]  # hired 2026-10-12: 42 days before Monday 11-23
    assert new.template_reason == "新人模板（新员工，入职 42 天）替代 运营默认模板"
    assert (new.score, new.grade) == (D(85), "B")  # 60 × 3/4 + 40 × 100 %

    design = rows["chenjing"]
    assert (design.template_id, design.score, design.grade) == ("design-default", D(0), "D")
    assert design.flags[0] == "本周没有提交计划"
    assert "主管评分：本周尚未评分，计 0 分" in design.flags

    with db() as s:
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "appraisal.publish")).all()
        assert {a.subject for a in audit} == {
            "lilei/2026-W48",
            "zhaoqiang/2026-W48",
            "chenjing/2026-W48",
            "sunli/2026-W48",
        }


def test_missing_data_is_flagged_and_exported_as_null(db, shop) -> None:
    with db() as s, s.begin():
        add_plan(
            s,
            "lilei",
            "2026-W48",
            [("conversion_rate", "+2pp", "3.00", "shop"), ("ctr", "+10%", "2.0", "shop")],
        )
        sample(s, "ctr", "2026-11-26", "2.2")
        run_week(s, "2026-W48", NOW, team="ops")
        row = current_appraisal(s, "lilei", "2026-W48")
        assert row.flags == ["支付转化率：本周没有数据，计 0 分"]
        assert row.score == D(40)
        data = export_appraisals(s, "2026-W48", "ops")
    item = next(i for a in data["appraisals"] if a["employee"] == "lilei" for i in a["items"])
    # CONTRACT.md's fields keep their values (issue 16 adds more: tests/test_numbers.py)
    assert {k: item[k] for k in CONTRACT_ITEM} == {
        "kpi": "conversion_rate",
        "weight": 60,
        "baseline": 3.0,
        "target": 5.0,
        "actual": None,
        "completion": None,
        "contribution": 0.0,
    }


def test_period_template_applies_during_double11(db, shop) -> None:
    with db() as s, s.begin():
        add_plan(
            s,
            "lilei",
            "2026-W46",
            [("activity_sales", "+20%", "1000", "双11主会场"), ("conversion_rate", "+2pp", "3.00", "shop")],
        )
        sample(s, "activity_sales", "2026-11-11", "1250", scope="双11主会场")
        sample(s, "activity_sales", "2026-11-11", "99999")  # another scope: not this item's
        sample(s, "pay_conversion_rate", "2026-11-15", "5.50")  # Sunday of W46
        row = by_person(run_week(s, "2026-W46", NOW, team="ops"))["lilei"]
    assert (row.template_id, row.template_reason) == (
        "ops-promo",
        "大促模板（双11 10-20–11-11）替代 运营默认模板",
    )
    # 70 × min(250/200, 1.5) + 30 × 1.25
    assert (row.score, row.grade) == (D("125"), "S")


def test_active_scenario_wins_over_the_default(db, shop) -> None:
    with db() as s, s.begin():
        s.get(Scenario, "logistics_peak").active = True
        row = by_person(run_week(s, "2026-W48", NOW, team="service"))["sunli"]
    assert row.template_reason == "物流高峰客服模板（物流高峰场景）替代 客服默认模板"


def test_penalty_counts_from_the_leaders_entry(db, shop) -> None:
    with db() as s, s.begin():
        add_plan(s, "sunli", "2026-W48", [("complaint_rate", "-10%", "1.20", "shop")])
        sample(s, "complaint_rate", "2026-11-28", "1.08")
        s.add(
            Rating(person_id="sunli", week="2026-W48", kpi_key="bad_reviews", done=2, by="wangfang", at=NOW)
        )
        row = by_person(run_week(s, "2026-W48", NOW, team="service"))["sunli"]
    assert (row.score, row.grade) == (D(90), "B")  # 100 × 100 % − 2 × 5
    adjustment = next(i for i in row.items if i.get("kind") == "adjustment")
    assert (adjustment["name"], D(adjustment["points"])) == ("差评事件", D(-10))


def test_a_recompute_makes_a_new_version_and_never_edits_the_published_one(db, shop) -> None:
    with db() as s, s.begin():
        lilei_week48(s)
        first = by_person(run_week(s, "2026-W48", NOW, team="ops"))["lilei"]
        first_id = first.id
    later = NOW + timedelta(days=2)
    with db() as s, s.begin():
        sample(s, "ctr", "2026-11-28", "2.2")  # a late report
        second = by_person(run_week(s, "2026-W48", later, reason="补录周六数据", team="ops"))["lilei"]
        assert (second.version, second.score) == (2, D(115))
        assert second.version_reason == "补录周六数据；总分 107.0（A）→ 115.0（A）"
    with db() as s, s.begin():
        third = by_person(run_week(s, "2026-W48", later, team="ops"))["lilei"]
        assert (third.version, third.version_reason) == (3, "重新计算；结果未变")
    with db() as s:
        old = s.get(Appraisal, first_id)
        assert (old.version, old.current, old.score) == (1, False, D(107))
        versions = s.scalars(
            select(Appraisal.version).where(Appraisal.person_id == "lilei", Appraisal.current.is_(True))
        ).all()
        assert versions == [3]
        data = export_appraisals(s, "2026-W48")
    lilei = next(a for a in data["appraisals"] if a["employee"] == "lilei")
    assert (lilei["version"], lilei["score"]) == (3, 115.0)


def test_export_matches_the_contract_shape(db, shop) -> None:
    with db() as s, s.begin():
        lilei_week48(s)
        run_week(s, "2026-W48", NOW, team="ops")
    with db() as s:
        data = exports.export(s, "appraisals", "2026-W48", team="ops", now=NOW)
        with pytest.raises(exports.ExportError, match="no team with id 'nope'"):
            export_appraisals(s, "2026-W48", "nope")
    assert data["week"] == "2026-W48"
    lilei = next(a for a in data["appraisals"] if a["employee"] == "lilei")
    lilei = {k: v for k, v in lilei.items() if k in CONTRACT_APPRAISAL}
    lilei["items"] = [{k: i[k] for k in CONTRACT_ITEM} for i in lilei["items"]]
    assert lilei == {
        "employee": "lilei",
        "team": "ops",
        "week": "2026-W48",
        "version": 1,
        "template": "ops-default",
        "template_reason": "运营默认模板",
        "score": 107.0,
        "grade": "A",
        "items": [
            {
                "kpi": "conversion_rate",
                "weight": 60,
                "baseline": 3.0,
                "target": 5.0,
                "actual": 5.5,
                "completion": 1.25,
                "contribution": 75.0,
            },
            {
                "kpi": "ctr",
                "weight": 40,
                "baseline": 2.0,
                "target": 2.2,
                "actual": 2.16,
                "completion": 0.8,
                "contribution": 32.0,
            },
        ],
    }
    assert json.loads(exports.encode(data, "appraisals", "json")) == data
    header, rows = exports.flat_rows(data, "appraisals")
    assert [r[header.index("kpi")] for r in rows if r[1] == "lilei"] == ["conversion_rate", "ctr"]


CONTRACT_ITEM = ("kpi", "weight", "baseline", "target", "actual", "completion", "contribution")
CONTRACT_APPRAISAL = (
    "employee",
    "team",
    "week",
    "version",
    "template",
    "template_reason",
    "score",
    "grade",
    "items",
)


@pytest.mark.parametrize("week", ["2026-W54", "W48", "2026-48"])
def test_bad_week_writes_nothing(db, shop, week: str) -> None:
    with db() as s, s.begin():
        with pytest.raises(ValueError, match="周"):
            run_week(s, week, NOW)
        assert s.scalars(select(Appraisal)).all() == []


def test_unknown_team(db, shop) -> None:
    with db() as s, s.begin(), pytest.raises(AppraisalError, match="没有 id 为“nope”的团队"):
        run_week(s, "2026-W48", NOW, team="nope")


def test_a_broken_stored_template_is_skipped_not_fatal(db, shop) -> None:
    with db() as s, s.begin():
        s.get(Template, "design-default").spec = {"weights": {"ctr": 10}}  # no longer sums to 100
        rows = by_person(run_week(s, "2026-W48", NOW, team="ops"))
    assert "chenjing" not in rows and "lilei" in rows


def test_publish_queues_each_card_once(db, shop) -> None:
    with db() as s, s.begin():
        lilei_week48(s)
        rows = run_week(s, "2026-W48", NOW, team="ops")
        assert publish(s, rows, NOW, bots={"sim"}) == 3
        assert publish(s, rows, NOW, bots={"sim"}) == 0  # dedupe: the same version is sent once
        assert publish(s, rows, NOW, bots=set()) == 0  # no configured bot: nothing queued
        messages = s.scalars(select(OutboxMessage).where(OutboxMessage.target == "lilei")).all()
    assert len(messages) == 1
    texts = [b.get("text", "") for b in messages[0].card["blocks"]]
    assert "(5.50 − 3.00) / (5.00 − 3.00) = 125 %" in "\n".join(texts)


# ---------------------------------------------------------------- template switching


def test_switch_wins_over_every_rule_and_is_audited(db, shop) -> None:
    with db() as s, s.begin():
        lilei_week48(s)
        switch_template(s, "ops", "ops-promo", by="zhangwei", now=NOW, until=date(2026, 12, 1))
        rows = by_person(run_week(s, "2026-W48", NOW, team="ops"))
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "template.switch")).one()
    assert rows["lilei"].template_reason == "大促模板（张伟 手动切换，11-23–12-01）替代 运营默认模板"
    assert rows["zhaoqiang"].template_reason == "大促模板（张伟 手动切换，11-23–12-01）替代 新人模板"
    assert rows["chenjing"].template_id == "design-default"  # another role keeps its own template
    assert (audit.actor, audit.at, audit.subject) == ("zhangwei", NOW, "team ops")
    assert audit.detail == {
        "team": "ops",
        "from": ["design-default", "newcomer", "ops-default"],
        "to": "ops-promo",
        "start": "2026-11-23",
        "until": "2026-12-01",
    }


def test_a_new_switch_ends_the_previous_one(db, shop) -> None:
    with db() as s, s.begin():
        first = switch_template(s, "ops", "ops-promo", by="zhangwei", now=NOW, until=date(2026, 12, 31))
        later = NOW + timedelta(days=3)
        second = switch_template(s, "ops", "ops-default", by="zhangwei", now=later)
        assert (first.until, first.cancelled) == (date(2026, 11, 25), False)
        assert (second.start, second.until) == (date(2026, 11, 26), None)
        future = switch_template(s, "ops", "ops-promo", by="zhangwei", now=later, start=date(2026, 12, 7))
        assert second.until == date(2026, 12, 6)
        switch_template(s, "ops", "ops-default", by="zhangwei", now=later, start=date(2026, 12, 1))
        assert future.cancelled is True  # it had not started yet


def test_cancel_returns_to_the_rule_from_today(db, shop) -> None:
    with db() as s, s.begin():
        switch_template(s, "ops", "ops-promo", by="zhangwei", now=NOW)
        wednesday = NOW + timedelta(days=2)
        assert cancel_switch(s, "ops", by="zhangwei", now=wednesday) == 1
        assert cancel_switch(s, "ops", by="zhangwei", now=wednesday) == 0
        row = s.scalars(select(TemplateSwitch)).one()
        assert row.until == date(2026, 11, 24)
        w48 = by_person(run_week(s, "2026-W48", wednesday, team="ops"))["lilei"]
        w49 = by_person(run_week(s, "2026-W49", wednesday, team="ops"))["lilei"]
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "template.switch.cancel")).one()
    assert w48.template_id == "ops-promo"  # the switch covered Monday and Tuesday of W48
    assert w49.template_id == "ops-default"
    assert audit.detail["from"] == ["ops-promo"] and audit.actor == "zhangwei"


@pytest.mark.parametrize(
    ("team", "template", "until", "message"),
    [
        ("nope", "ops-promo", None, "没有 id 为“nope”的团队"),
        ("ops", "nope", None, "没有 id 为“nope”的可用模板"),
        ("ops", "cs-default", None, "适用于岗位 customer_service"),
        ("ops", "ops-promo", date(2026, 11, 22), "早于开始日期"),
    ],
)
def test_switch_refuses(db, shop, team: str, template: str, until: date | None, message: str) -> None:
    with db() as s, s.begin():
        with pytest.raises(AppraisalError, match=message):
            switch_template(s, team, template, by="zhangwei", now=NOW, until=until)
        assert s.scalars(select(TemplateSwitch)).all() == []


def test_switch_from_chat(sim, db, shop) -> None:
    (card,) = sim.say("zhangwei", "切换模板 ops-promo 至 12-01")
    assert card["title"] == "考核模板已切换 · 运营设计组"
    assert "张伟 将 运营设计组 的考核模板切换为 大促模板（11-23–12-01）。" in card["text"]
    (denied,) = sim.say("lilei", "切换模板 ops-promo 至 12-01")
    assert denied["title"] == "没有权限"
    (bad,) = sim.say("zhangwei", "切换模板 ops-promo 至 明天")
    assert "日期“明天”看不懂" in bad["text"]
    (pick,) = sim.say("zhangwei", "切换模板")
    assert pick["form"]["action"] == "template.switch"
    template, until = pick["form"]["fields"]
    assert [o["value"] for o in template["options"]] == [
        "design-default",
        "newcomer",
        "ops-default",
        "ops-promo",
        "auto",
    ]
    # Monday 11-23: this Sunday, next Sunday, the month's end is not later, or no end
    assert [o["value"] for o in until["options"]] == ["2026-11-29", "2026-12-06", "none"]
    (done,) = sim.act("zhangwei", "template.switch", {"template": "ops-default", "until": "2026-11-29"})
    assert "切换为 运营默认模板（11-23–11-29）" in done["text"]
    (open_ended,) = sim.act("zhangwei", "template.switch", {"template": "ops-promo", "until": "none"})
    assert "切换为 大促模板（自 11-23 起）" in open_ended["text"]
    (auto,) = sim.act("zhangwei", "template.switch", {"template": "auto", "until": "none"})
    assert auto["title"] == "考核模板已恢复"
    (back,) = sim.say("zhangwei", "恢复模板")
    assert "当前没有手动切换" in back["text"]
    with db() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == ["template.switch", "template.switch", "template.switch", "template.switch.cancel"]


def test_cli_template_switch(config, db, shop, capsys) -> None:
    assert (
        main(
            [
                "--config",
                config,
                "template",
                "switch",
                "--team",
                "ops",
                "--to",
                "ops-promo",
                "--until",
                "2099-12-01",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("团队 ops：从 ") and out.strip().endswith(
        "起使用模板 ops-promo，到 2099-12-01 为止"
    )
    with db() as s:
        row = s.scalars(select(TemplateSwitch)).one()
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "template.switch")).one()
    assert (row.template_id, row.until, row.by) == ("ops-promo", date(2099, 12, 1), "admin")
    assert audit.detail["to"] == "ops-promo"
    assert main(["--config", config, "template", "switch", "--team", "ops", "--to", "nope"]) == 1
    assert "没有 id 为“nope”的可用模板" in capsys.readouterr().err
    assert (
        main(
            [
                "--config",
                config,
                "template",
                "switch",
                "--team",
                "ops",
                "--to",
                "ops-promo",
                "--until",
                "soon",
            ]
        )
        == 2
    )
    assert main(["--config", config, "template", "switch", "--team", "x", "--to", "ops-promo"]) == 1


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_cli_export_appraisals(config, db, shop, capsys, fmt: str) -> None:
    with db() as s, s.begin():
        lilei_week48(s)
        run_week(s, "2026-W48", NOW, team="ops")
    args = [
        "--config",
        config,
        "export",
        "appraisals",
        "--week",
        "2026-W48",
        "--team",
        "ops",
        "--format",
        fmt,
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        lilei = next(a for a in json.loads(out)["appraisals"] if a["employee"] == "lilei")
        assert (lilei["score"], lilei["grade"], lilei["template_reason"]) == (107.0, "A", "运营默认模板")
    else:
        rows = [line.split(",") for line in out.lstrip("\ufeff").splitlines()]
        assert rows[0][:8] == [
            "week",
            "employee",
            "team",
            "version",
            "template",
            "template_reason",
            "score",
            "grade",
        ]
        assert [r[8] for r in rows[1:] if r[1] == "lilei"] == ["conversion_rate", "ctr"]


# ---------------------------------------------------------------- appeals


@pytest.fixture
def published(db, shop) -> int:
    with db() as s, s.begin():
        lilei_week48(s)
        run_week(s, "2026-W48", NOW, team="ops")
        return current_appraisal(s, "lilei", "2026-W48").id


def outbox_to(db, who: str) -> list[dict]:
    with db() as s:
        return [
            m.card
            for m in s.scalars(
                select(OutboxMessage).where(OutboxMessage.target == who).order_by(OutboxMessage.created_at)
            )
        ]


def appeal(sim, published: int, note: str = "周六的点击率数据晚到，没算进来") -> list[dict]:
    return sim.act(
        "lilei", "appraisal.appeal.submit", {"appraisal": str(published), "kpi": "ctr", "note": note}
    )


def test_the_card_and_the_appeal_form(sim, published) -> None:
    (card,) = sim.say("lilei", "考核")
    assert card["title"] == "2026-W48 考核结果 · 李雷 · 107.0 分 A"
    assert "(5.50 − 3.00) / (5.00 − 3.00) = 125 %" in card["text"]
    assert [a["label"] for a in card["actions"]][:2] == ["申诉：支付转化率", "申诉：详情页点击率"]
    (form,) = sim.act("lilei", "appraisal.appeal", {"appraisal": str(published), "kpi": "ctr"})
    assert form["form"]["action"] == "appraisal.appeal.submit"
    assert form["card"]["form"]["link"].startswith(
        "http://planloop.test/p/"
    )  # the same form as a signed page
    (none,) = sim.say("zhangwei", "考核")
    assert "还没有你的考核结果" in none["text"]


def test_appeal_accepted_with_a_corrected_value_makes_a_new_version(sim, db, published) -> None:
    (ack,) = appeal(sim, published)
    assert ack["title"] == "申诉已提交 · 2026-W48"
    with db() as s:
        row = s.scalars(select(Appeal)).one()
        assert (row.kpi_key, row.status, row.note) == ("ctr", "open", "周六的点击率数据晚到，没算进来")
    (review,) = outbox_to(db, "zhangwei")
    assert review["form"]["action"] == "appraisal.appeal.decide"
    assert any("(2.16 − 2.0" in b.get("text", "") for b in review["blocks"])

    (done,) = sim.act(
        "zhangwei", "appraisal.appeal.decide", {"appeal": str(row.id), "decision": "correct", "value": "2.2"}
    )
    assert "第 2 版：115.0 分 A" in done["text"]
    with db() as s:
        new = current_appraisal(s, "lilei", "2026-W48")
        assert (new.version, new.score) == (2, D(115))
        assert new.version_reason == "申诉（详情页点击率）已接受：更正为 2.2 %；总分 107.0（A）→ 115.0（A）"
        assert "详情页点击率：申诉后实际值更正为 2.2" in new.flags[0]
        decided = s.get(Appeal, row.id)
        assert (decided.status, decided.corrected_value, decided.decided_at) == ("accepted", D("2.2"), NOW)
        audit = s.scalars(
            select(AuditLog).where(AuditLog.action.like("appraisal.appeal%")).order_by(AuditLog.id)
        ).all()
        # a recompute later keeps the accepted correction
        again = by_person(run_week(s, "2026-W48", NOW + timedelta(days=1), team="ops"))["lilei"]
        assert (again.version, again.score) == (3, D(115))
    assert [(a.action, a.actor) for a in audit] == [
        ("appraisal.appeal", "lilei"),
        ("appraisal.appeal.accept", "zhangwei"),
    ]
    assert audit[1].detail["new_version"] == 2
    result, card = outbox_to(db, "lilei")
    assert result["title"] == "申诉结果 · 2026-W48"
    assert card["title"] == "2026-W48 考核结果 · 李雷 · 115.0 分 A"

    (twice,) = sim.act(
        "zhangwei", "appraisal.appeal.decide", {"appeal": str(row.id), "decision": "reject", "reply": "x"}
    )
    assert twice["title"] == "申诉已处理"


def test_appeal_accepted_by_excluding_the_item(sim, db, published) -> None:
    appeal(sim, published, "点击率的统计范围错了")
    with db() as s:
        appeal_id = s.scalars(select(Appeal.id)).one()
    sim.act(
        "zhangwei",
        "appraisal.appeal.decide",
        {"appeal": str(appeal_id), "decision": "exclude", "reply": "同意"},
    )
    with db() as s:
        new = current_appraisal(s, "lilei", "2026-W48")
    assert (new.score, new.grade) == (D(125), "S")  # conversion alone, its weight rescaled to 100
    assert new.version_reason == "申诉（详情页点击率）已接受：剔除此项（同意）；总分 107.0（A）→ 125.0（S）"


def test_appeal_rejected_needs_a_reply_and_changes_nothing(sim, db, published) -> None:
    appeal(sim, published)
    with db() as s:
        appeal_id = s.scalars(select(Appeal.id)).one()
    (again,) = sim.act(
        "zhangwei", "appraisal.appeal.decide", {"appeal": str(appeal_id), "decision": "reject"}
    )
    assert again["form"]["error"] == "驳回时请写明理由"
    sim.act(
        "zhangwei",
        "appraisal.appeal.decide",
        {"appeal": str(appeal_id), "decision": "reject", "reply": "数据已核对无误"},
    )
    with db() as s:
        assert current_appraisal(s, "lilei", "2026-W48").version == 1
        assert s.get(Appeal, appeal_id).status == "rejected"
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "appraisal.appeal.reject")).one()
    assert audit.detail["reply"] == "数据已核对无误"
    (result,) = outbox_to(db, "lilei")
    assert "被驳回" in json.dumps(result, ensure_ascii=False) and "数据已核对无误" in json.dumps(
        result, ensure_ascii=False
    )


@pytest.mark.parametrize(
    ("who", "values", "expected"),
    [
        ("hanmeimei", None, "未加入团队"),  # not in this shop at all
        ("sunli", None, "只能对自己的考核结果申诉"),
        ("lilei", {"kpi": "ctr", "note": ""}, "请写申诉理由"),
        ("lilei", {"kpi": "ctr", "note": "长" * 501}, "申诉理由太长"),
        ("lilei", {"kpi": "nope", "note": "x"}, "请选择要申诉的一项"),
        ("lilei", {"appraisal": "999999", "kpi": "ctr", "note": "x"}, "找不到这份考核结果"),
        ("lilei", {"appraisal": "abc", "kpi": "ctr", "note": "x"}, "找不到这份考核结果"),
    ],
)
def test_appeal_refuses(sim, db, published, who: str, values: dict | None, expected: str) -> None:
    body = {"appraisal": str(published), "kpi": "ctr", "note": "数据晚到"}
    body.update(values or {})
    (card,) = sim.act(who, "appraisal.appeal.submit", body)
    assert expected in json.dumps(card, ensure_ascii=False)
    with db() as s:
        assert s.scalars(select(Appeal)).all() == []


def test_one_open_appeal_per_item_and_none_on_an_old_version(sim, db, published) -> None:
    appeal(sim, published)
    (dup,) = appeal(sim, published, "再说一次")
    assert dup["title"] == "申诉已存在"
    with db() as s, s.begin():
        run_week(s, "2026-W48", NOW, reason="重跑", team="ops")
    (old,) = sim.act("lilei", "appraisal.appeal", {"appraisal": str(published), "kpi": "ctr"})
    assert "已有新版本" in old["text"]


@pytest.mark.parametrize(
    ("who", "values", "expected"),
    [
        ("lilei", {"decision": "reject", "reply": "x"}, "没有权限"),
        ("wangfang", {"decision": "reject", "reply": "x"}, "没有权限"),  # another team's leader
        ("zhangwei", {"decision": "correct", "value": "abc"}, "不是数字"),
        ("zhangwei", {"decision": "correct", "value": "1e20"}, "大得不合理"),
        ("zhangwei", {"decision": "correct", "value": ""}, "不是数字"),
        ("zhangwei", {"decision": "maybe"}, "请选择处理方式"),
        ("zhangwei", {"decision": "reject", "reply": "长" * 501}, "回复太长"),
    ],
)
def test_decide_refuses(sim, db, published, who: str, values: dict, expected: str) -> None:
    appeal(sim, published)
    with db() as s:
        appeal_id = s.scalars(select(Appeal.id)).one()
    (card,) = sim.act(who, "appraisal.appeal.decide", {"appeal": str(appeal_id), **values})
    assert expected in json.dumps(card, ensure_ascii=False)
    with db() as s:
        assert s.get(Appeal, appeal_id).status == "open"
        assert current_appraisal(s, "lilei", "2026-W48").version == 1


# ---------------------------------------------------------------- ratings


def test_leader_rates_from_a_card(sim, db, shop) -> None:
    (form,) = sim.say("zhangwei", "评分")
    assert form["form"]["action"] == "appraisal.rate"
    (ok,) = sim.act(
        "zhangwei",
        "appraisal.rate",
        {"week": "2026-W48", "person": "chenjing", "kpi": "leader_rating", "stars": "5"},
    )
    assert "陈静 · 2026-W48 · 主管评分：5 星" in ok["text"]
    sim.act(
        "zhangwei",
        "appraisal.rate",
        {"week": "2026-W48", "person": "zhaoqiang", "kpi": "learning", "done": "2", "planned": "4"},
    )
    with db() as s, s.begin():
        rating = s.get(Rating, ("chenjing", "2026-W48", "leader_rating"))
        assert (rating.stars, rating.by) == (5, "zhangwei")
        rows = by_person(run_week(s, "2026-W48", NOW, team="ops"))
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "appraisal.rate")).all()
    assert rows["chenjing"].score == D(24)  # 20 × 120 %
    assert rows["zhaoqiang"].score == D(30)  # 60 × 2/4
    assert [a.detail["to"] for a in audit] == [
        {"stars": 5, "done": None, "planned": None},
        {"stars": None, "done": 2, "planned": 4},
    ]


@pytest.mark.parametrize(
    ("who", "values", "expected"),
    [
        ("lilei", {"person": "chenjing", "kpi": "leader_rating", "stars": "5"}, "只有团队主管"),
        ("zhangwei", {"person": "sunli", "kpi": "leader_rating", "stars": "5"}, "请选择本团队的员工"),
        ("zhangwei", {"person": "chenjing", "kpi": "ctr", "stars": "5"}, "请选择评分类或清单类指标"),
        ("zhangwei", {"person": "chenjing", "kpi": "leader_rating", "stars": "9"}, "星级应在 1–5 之间"),
        ("zhangwei", {"person": "chenjing", "kpi": "leader_rating"}, "请选择 1–5 星"),
        ("zhangwei", {"person": "chenjing", "kpi": "learning", "done": "x"}, "完成任务数应为整数"),
        ("zhangwei", {"person": "chenjing", "kpi": "learning"}, "请填写完成任务数"),
        (
            "zhangwei",
            {"person": "chenjing", "kpi": "leader_rating", "stars": "3", "week": "2026-W99"},
            "没有这一周",
        ),
    ],
)
def test_rating_refuses(sim, db, shop, who: str, values: dict, expected: str) -> None:
    (card,) = sim.act(who, "appraisal.rate", {"week": "2026-W48", **values})
    assert expected in json.dumps(card, ensure_ascii=False)
    with db() as s:
        assert s.scalars(select(Rating)).all() == []
