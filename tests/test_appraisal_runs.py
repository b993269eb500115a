"""Appraisal runs on the database (handlers/appraisal_runs.py): frozen versions, publishing, export."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from bot.cli.commands import main
from handlers import exports
from handlers.appraisal_export import export_appraisals
from handlers.appraisal_runs import current_appraisal, publish, run_week
from handlers.appraisals import AppraisalError
from storage.models import Appraisal, AuditLog, OutboxMessage, Rating, Scenario, Template
from tests.appraisal_shop import NOW, add_plan, by_person, lilei_week48, sample, seed_shop


@pytest.fixture
def shop(db) -> None:
    seed_shop(db)


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
