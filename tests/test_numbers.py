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


@pytest.fixture
def config(tmp_path, engine):
    url = engine.url.render_as_string(hide_password=False)
    path = tmp_path / "planloop.toml"
    path.write_text(
        f'[server]\ndatabase_url = "{url}"\nsecret_key = "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA="\n'
    )
    return str(path)


def _without(person: str, tmp_path) -> str:
    """examples/team.toml with one [[people]] entry removed, as an admin edits the file."""
    text = (EXAMPLE.read_text("utf-8")).split("\n[[people]]\n")
    kept = [block for block in text if not block.startswith(f'id = "{person}"')]
    path = tmp_path / "team.toml"
    path.write_text("\n[[people]]\n".join(kept), "utf-8")
    return str(path)


def test_a_removed_person_stays_in_the_export_of_the_weeks_they_worked(sim, demo_team, config, tmp_path, capsys):
    from bot.cli import main

    _sample_plan(sim)
    assert main(["--config", config, "apply", _without("lilei", tmp_path)]) == 0
    capsys.readouterr()
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
