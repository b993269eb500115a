"""Issue 16: numbers a leader can check — the defects found by recomputing published appraisals."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.models import MetricSample, Plan, PlanItem

EXAMPLE = Path(__file__).parents[1] / "examples" / "team.toml"
TODAY = date(2026, 11, 23)  # the clock is Monday 2026-11-23 10:00 +08:00


def _sample(db, metric: str, value: str, day: date = TODAY, scope: str = "shop") -> None:
    with db() as s, s.begin():
        row = s.get(MetricSample, (metric, scope, day))
        if row is None:
            s.add(
                MetricSample(
                    metric=metric,
                    scope=scope,
                    day=day,
                    value=Decimal(value),
                    source="test",
                    fetched_at=datetime(2026, 11, 23, 1, tzinfo=UTC),
                )
            )
        else:
            row.value = Decimal(value)


# ---------------------------------------------------------------- defect 1: text plans


@pytest.mark.parametrize(
    "metric, value, line, target",
    [
        ("complaint_rate", "10.00", "差评回访 投诉率 =9.5", Decimal("9.5")),
        ("complaint_rate", "1.20", "差评回访 投诉率 =1", Decimal("1")),
        ("ctr", "0", "主图测试 详情页点击率 =0.5", Decimal("0.5")),
    ],
)
def test_a_text_plan_is_checked_against_the_real_baseline(sim, demo_team, db, metric, value, line, target):
    _sample(db, metric, value)
    (card,) = sim.say("lilei", f"计划\n{line}")
    assert card["title"] == "本周计划已提交 · 2026-W48", card["text"]
    with db() as s:
        (item,) = s.scalars(select(PlanItem)).all()
        assert (item.baseline, item.target) == (Decimal(value), target)


def test_every_line_of_a_text_plan_is_reported_in_one_answer(sim, demo_team, db):
    _sample(db, "complaint_rate", "1.20")
    _sample(db, "pay_conversion_rate", "3.00")
    text = "计划\n回访 投诉率 =1.2\n优化 支付转化率 -1pp\n两段 +2pp\n主图 详情页点击率 +0.5pp"
    (card,) = sim.say("lilei", text)
    assert card["title"] == "计划未保存"
    lines = [line for line in card["text"].splitlines() if line.startswith("第")]
    assert [line.split("：")[0] for line in lines] == ["第2行", "第3行", "第4行"]
    assert "目标等于基线（1.2）" in lines[0]
    assert "越高越好，目标应高于基线（3）" in lines[1]
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 0


# ---------------------------------------------------------------- defect 2: removed people stay


def _without(person: str, tmp_path) -> str:
    """examples/team.toml with one [[people]] entry removed, as an admin edits the file."""
    text = (EXAMPLE.read_text("utf-8")).split("\n[[people]]\n")
    kept = [block for block in text if not block.startswith(f'id = "{person}"')]
    path = tmp_path / "team.toml"
    path.write_text("\n[[people]]\n".join(kept), "utf-8")
    return str(path)


def test_a_removed_person_stays_in_the_export_of_the_weeks_they_worked(
    sim, demo_team, config, tmp_path, capsys
):
    from bot.cli.commands import main

    _sample_plan(sim)
    assert main(["--config", config, "run", "appraisal", "--week", "2026-W48"]) == 0
    assert main(["--config", config, "apply", _without("lilei", tmp_path)]) == 0
    capsys.readouterr()
    for what, key in (("appraisals", "appraisals"), ("progress", "progress")):
        assert main(["--config", config, "export", what, "--week", "2026-W48", "--team", "ops"]) == 0
        rows = {r["employee"]: r for r in json.loads(capsys.readouterr().out)[key]}
        assert rows["lilei"]["active"] is False, what
    assert main(["--config", config, "export", "plans", "--week", "2026-W48", "--team", "ops"]) == 0
    plans = {p["employee"]: p for p in json.loads(capsys.readouterr().out)["plans"]}
    assert plans["lilei"]["active"] is False
    assert [i["kpi"] for i in plans["lilei"]["items"]] == ["conversion_rate"]
    assert plans["hanmeimei"]["active"] is True
    # a week he did not work in does not list him
    assert main(["--config", config, "export", "plans", "--week", "2026-W49", "--team", "ops"]) == 0
    assert "lilei" not in {p["employee"] for p in json.loads(capsys.readouterr().out)["plans"]}


def _sample_plan(sim) -> None:
    (card,) = sim.say("lilei", "计划\n优化详情页首屏 支付转化率 +2pp")
    assert card["title"] == "本周计划已提交 · 2026-W48"


# ---------------------------------------------------------------- defects 3–5, export and verify


def _run(config: str, *args: str) -> int:
    from bot.cli.commands import main

    return main(["--config", config, *args])


def _export(config: str, capsys, week: str = "2026-W48") -> dict:
    capsys.readouterr()
    assert _run(config, "export", "appraisals", "--week", week, "--team", "ops") == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def newcomer_week(sim, demo_team, db, config, capsys) -> dict:
    """赵强 (new, template 新人模板: 学习进度 60 + 主管评分 40) files two checklist items on one KPI
    and one 活动销量 item outside his template; 张伟 rates him; the appraisal runs on Friday."""
    _sample(db, "activity_sales", "1000", date(2026, 11, 22), scope="双11主会场")
    _sample(db, "activity_sales", "1100", date(2026, 11, 26), scope="双11主会场")
    text = "计划\n读完运营手册 学习进度 =4\n做两个案例 学习进度 =6\n大促复盘 活动销量 =1100 @双11主会场"
    (receipt,) = sim.say("zhaoqiang", text)
    assert receipt["title"] == "本周计划已提交 · 2026-W48", receipt["text"]
    for kpi, values in (("learning", {"done": "8"}), ("leader_rating", {"stars": "4"})):
        (saved,) = sim.act(
            "zhangwei", "appraisal.rate", {"person": "zhaoqiang", "kpi": kpi, "week": "2026-W48", **values}
        )
        assert saved["title"] == "已保存"
    assert _run(config, "run", "appraisal", "--at", "2026-11-27T18:00:00+08:00") == 0
    (entry,) = [a for a in _export(config, capsys)["appraisals"] if a["employee"] == "zhaoqiang"]
    return entry


def test_every_plan_item_is_its_own_row_and_weight_zero_items_have_a_completion(newcomer_week):
    rows = [
        (i["kpi"], i["text"], i["weight"], i["completion"], i["contribution"], i["status"])
        for i in newcomer_week["items"]
    ]
    assert rows == [
        ("learning", "读完运营手册", 30, 0.8, 24.0, "ok"),  # 8 done of 4 + 6 planned, half the weight each
        ("learning", "做两个案例", 30, 0.8, 24.0, "ok"),
        ("leader_rating", "", 40, 1.0, 40.0, "ok"),
        ("activity_sales", "大促复盘", 0, 1.0, 0.0, "outside"),  # 1000 → 1100, target 1100
    ]
    learning = newcomer_week["items"][:2]
    assert [(i["done"], i["planned"]) for i in learning] == [(8, 10), (8, 10)]
    assert learning[0]["item_id"] != learning[1]["item_id"] and None not in [i["item_id"] for i in learning]
    assert newcomer_week["items"][2]["item_id"] is None and newcomer_week["items"][2]["rating"] == 4
    assert (newcomer_week["score"], newcomer_week["grade"]) == (88.0, "B")


def test_the_export_carries_the_rules_in_force(newcomer_week):
    e = newcomer_week
    assert (e["status"], e["template"], e["active"]) == ("published", "newcomer", True)
    assert e["weights"] == {"learning": 60, "leader_rating": 40}
    assert (e["cap"], e["score_cap"], e["curves"]) == (150, 150, {})
    assert e["grades"] == {"S": 120, "A": 100, "B": 80, "C": 60}
    assert e["ratings"] == {"1": 0, "2": 60, "3": 80, "4": 100, "5": 120}
    assert e["flags"] == ["manual_rating", "outside_template"]
    assert e["adjustments"] == []


def test_card_and_page_explain_alike_and_state_how_items_combine(sim, client, newcomer_week):
    from cards.explain import COMBINE_RULE

    (card,) = sim.say("zhaoqiang", "考核 2026-W48")
    assert COMBINE_RULE in card["text"]
    assert "完成 8 / 计划 10 = 80 %" in card["text"]
    assert "不在本模板内，不计分（(1,100 − 1,000) / (1,100 − 1,000) = 100 %）" in card["text"]
    url = next(b["url"] for b in card["actions"] if b.get("url"))
    page = client.get(url[url.index("/p/") :]).get_data(as_text=True)
    assert COMBINE_RULE in page
    assert "完成 8 / 计划 10 = 80 % × 权重 30 = 24.0 分" in page
    assert "暂无数据，按 0 计" not in page and "= 暂无数据" not in page


def test_a_template_kpi_without_data_reads_the_same_on_card_and_page(sim, client, db, demo_team, config):
    """The page used to say "暂无数据，按 0 计" where the card said "本周没有计划项，计 0"."""
    (receipt,) = sim.say("lilei", "计划\n优化详情页首屏 支付转化率 +2pp")
    _sample(db, "pay_conversion_rate", "3.50", date(2026, 11, 26))  # the week's data arrived
    assert _run(config, "run", "appraisal", "--at", "2026-11-27T18:00:00+08:00") == 0
    (card,) = sim.say("lilei", "考核 2026-W48")
    assert "本周没有计划项，计 0" in card["text"]  # 详情页点击率 is in the template, not in the plan
    url = next(b["url"] for b in card["actions"] if b.get("url"))
    page = client.get(url[url.index("/p/") :]).get_data(as_text=True)
    assert "本周没有计划项，计 0 × 权重 40 = 0.0 分" in page
    assert "暂无数据，按 0 计" not in page


def test_verify_finds_nothing_wrong_and_every_tampered_number(newcomer_week, config, capsys, tmp_path):
    assert _run(config, "verify", "appraisals", "--week", "2026-W48", "--team", "ops") == 0
    assert "0 discrepancies" in capsys.readouterr().out
    data = _export(config, capsys)
    path = tmp_path / "w48.json"
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    assert _run(config, "verify", "appraisals", "--week", "2026-W48", "--file", str(path)) == 0
    zhao = next(a for a in data["appraisals"] if a["employee"] == "zhaoqiang")
    zhao["score"] = 90.0
    zhao["items"][0]["contribution"] = 25.0
    zhao["items"][3]["completion"] = None
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    capsys.readouterr()
    assert _run(config, "verify", "appraisals", "--week", "2026-W48", "--file", str(path)) == 1
    out = capsys.readouterr().out.splitlines()
    who = "zhaoqiang 2026-W48 v1"
    first, fourth = zhao["items"][0]["item_id"], zhao["items"][3]["item_id"]
    assert out[:3] == [
        f"{who}: item {first} (learning) contribution published 25.0 ≠ recomputed 24.0",
        f"{who}: item {fourth} (activity_sales) completion published None ≠ recomputed 1",
        f"{who}: score published 90.0 ≠ recomputed 88.0",
    ]
    assert out[-1].endswith("3 discrepancies")


def test_verify_does_not_import_the_scoring_code():
    import ast

    source = (Path(__file__).parents[1] / "appraisal" / "verify.py").read_text("utf-8")
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "json", "collections.abc", "dataclasses", "decimal", "typing"}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_tabular_appraisals_are_one_row_per_item_and_per_adjustment(newcomer_week, config, tmp_path, fmt):
    import csv
    import io

    from openpyxl import load_workbook

    out = tmp_path / f"a.{fmt}"
    assert _run(config, "export", "appraisals", "--week", "2026-W48", "--format", fmt, "-o", str(out)) == 0
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    else:
        rows = [list(r) for r in load_workbook(out, read_only=True).active.iter_rows(values_only=True)]
    header = rows[0]
    assert header[:15] == [
        "week", "employee", "team", "version", "template", "template_reason", "score", "grade",
        "kpi", "weight", "baseline", "target", "actual", "completion", "contribution",
    ]  # fmt: skip
    zhao = [dict(zip(header, r, strict=True)) for r in rows[1:] if r[1] == "zhaoqiang"]
    assert [(r["kpi"], r["kind"]) for r in zhao] == [
        ("learning", "checklist"),
        ("learning", "checklist"),
        ("leader_rating", "rating"),
        ("activity_sales", "metric"),
    ]
    assert {str(r["appraisal_status"]) for r in zhao} == {"published"}
