"""Issue 16: rules as they stood that week — leave with a start, template versions, `run --week`."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from storage.models import Appraisal, Leave, Person, TemplateVersion
from tests.test_numbers import _sample

SH = ZoneInfo("Asia/Shanghai")


def _run(config: str, *args: str) -> int:
    from bot.cli.commands import main

    return main(["--config", config, *args])


def _appraised(db, week: str) -> set[str]:
    with db() as s:
        rows = s.scalars(select(Appraisal).where(Appraisal.week == week, Appraisal.current.is_(True)))
        return {r.person_id for r in rows}


# ---------------------------------------------------------------- leave


def test_a_leave_with_a_start_is_recorded_as_said(sim, db, demo_team):
    (card,) = sim.say("hanmeimei", "请假 12-01 至 12-05")
    assert card["text"].splitlines()[1].startswith("已登记 韩梅梅 请假 2026-12-01 至 2026-12-05（含两端）")
    (card,) = sim.say("zhangwei", "请假 李雷 11-30 至 12-06")
    assert "已登记 李雷 请假 2026-11-30 至 2026-12-06" in card["text"]
    (card,) = sim.say("zhangwei", "请假 liuyang 至 11-25")  # from today
    assert "已登记 刘洋 请假至 2026-11-25" in card["text"]
    with db() as s:
        leaves = s.execute(select(Leave.person_id, Leave.start, Leave.until).order_by(Leave.id)).all()
        assert leaves == [
            ("hanmeimei", date(2026, 12, 1), date(2026, 12, 5)),
            ("lilei", date(2026, 11, 30), date(2026, 12, 6)),
            ("liuyang", date(2026, 11, 23), date(2026, 11, 25)),
        ]
        # a leave that has not begun does not make anyone "on leave" today
        assert s.get(Person, "hanmeimei").on_leave_until is None
        assert s.get(Person, "liuyang").on_leave_until == date(2026, 11, 25)


def test_a_leave_recorded_later_never_removes_anyone_from_an_earlier_week(sim, db, clock, demo_team, config):
    assert _run(config, "run", "appraisal", "--week", "2026-W48") == 0
    assert "liuyang" in _appraised(db, "2026-W48")  # no plan, not on leave: appraised
    clock.set(datetime(2026, 12, 1, 10, 0, tzinfo=SH))
    (card,) = sim.say("zhangwei", "请假 liuyang 11-30 至 12-06")
    assert "已登记 刘洋 请假 2026-11-30 至 2026-12-06" in card["text"]
    assert _run(config, "run", "appraisal", "--week", "2026-W48") == 0  # a re-run of the earlier week
    assert "liuyang" in _appraised(db, "2026-W48")
    assert _run(config, "run", "appraisal", "--week", "2026-W49") == 0
    w49 = _appraised(db, "2026-W49")
    assert "liuyang" not in w49 and "hanmeimei" in w49  # away every day of W49


# ---------------------------------------------------------------- template versions


def test_a_rerun_uses_the_template_version_in_force_that_week(
    sim, db, clock, demo_team, team_spec, config, capsys
):
    from handlers.setup import apply

    (card,) = sim.say("lilei", "计划\n优化详情页首屏 支付转化率 +2pp\n主图测试 详情页点击率 +0.5pp")
    _sample(db, "pay_conversion_rate", "3.50", date(2026, 11, 26))
    _sample(db, "ctr", "4.00", date(2026, 11, 26))
    assert _run(config, "run", "appraisal", "--week", "2026-W48") == 0
    clock.set(datetime(2026, 12, 2, 2, 0, tzinfo=UTC))  # the admin edits the template the next week
    edited = copy.deepcopy(team_spec)
    edited["templates"]["ops-default"]["spec"]["weights"] = {"conversion_rate": 70, "ctr": 30}
    with db() as s, s.begin():
        apply(s, edited, now=clock())
    with db() as s:
        versions = s.execute(
            select(TemplateVersion.version, TemplateVersion.entry).where(
                TemplateVersion.template_id == "ops-default"
            )
        ).all()
    assert [(v, e["weights"]) for v, e in versions] == [
        (1, {"conversion_rate": 60, "ctr": 40}),
        (2, {"conversion_rate": 70, "ctr": 30}),
    ]

    def lilei() -> dict:
        capsys.readouterr()
        assert _run(config, "export", "appraisals", "--week", "2026-W48", "--team", "ops") == 0
        return next(a for a in json.loads(capsys.readouterr().out)["appraisals"] if a["employee"] == "lilei")

    assert _run(config, "run", "appraisal", "--week", "2026-W48") == 0
    again = lilei()
    assert (again["version"], again["template_version"], again["weights"]) == (
        2,
        1,
        {"conversion_rate": 60, "ctr": 40},
    )
    assert again["version_reason"].endswith("规则：ops-default 第 1 版，当周生效的版本")
    assert _run(config, "run", "appraisal", "--week", "2026-W48", "--current-rules") == 0
    now = lilei()
    assert (now["version"], now["template_version"], now["weights"]) == (
        3,
        2,
        {"conversion_rate": 70, "ctr": 30},
    )
    assert now["version_reason"].endswith("规则：ops-default 第 2 版，当前版本（按管理员要求）")
    assert [i["weight"] for i in now["items"]] == [70, 30]
    capsys.readouterr()
    assert _run(config, "verify", "appraisals", "--week", "2026-W48") == 0


# ---------------------------------------------------------------- run --week


@pytest.mark.parametrize(
    ("args", "line", "code"),
    [
        (("monday-summary", "--week", "2026-W49"), "monday-summary 2026-11-30T09:00:00+08:00: done", 0),
        (("appraisal", "--week", "2026-W48"), "appraisal 2026-11-27T20:00:00+08:00: done", 0),
        (("reminders", "--week", "2026-W49"), "reminders 2026-11-30T10:00:00+08:00: done", 0),
        (
            ("appraisal", "--at", "2026-11-25T20:00"),
            "appraisal 2026-11-25T20:00:00+08:00: skipped (no team is due; ops: due 2026-11-27, the last "
            "workday of 2026-W48; service: due 2026-11-27, the last workday of 2026-W48)",
            0,
        ),
        (
            ("lag-alerts", "--week", "2026-W49"),
            "planloop run：--week works for appraisal, monday-summary, reminders, not lag-alerts",
            2,
        ),
        (
            ("appraisal", "--week", "2026-W49", "--at", "2026-11-25T20:00"),
            "planloop run：--week 和 --at 只能给一个",
            2,
        ),
    ],
)
def test_run_by_week(db, demo_team, config, capsys, args, line, code):
    assert _run(config, "run", *args) == code
    out = capsys.readouterr()
    assert line in (out.out + out.err).splitlines()


# ---------------------------------------------------------------- baselines of a re-submission


def test_a_resubmission_keeps_the_weeks_baseline_and_the_leader_sees_both(
    sim, services, db, clock, demo_team
):
    from bot.worker.delivery import drain
    from storage.models import Plan

    _sample(db, "pay_conversion_rate", "3.00", date(2026, 11, 22))
    _sample(db, "ctr", "4.00", date(2026, 11, 22))
    (v1,) = sim.say("lilei", "计划\n优化详情页首屏 支付转化率 +2pp")
    assert v1["title"] == "本周计划已提交 · 2026-W48"
    clock.set(datetime(2026, 11, 25, 3, 0, tzinfo=UTC))  # Wednesday, past the deadline
    _sample(db, "pay_conversion_rate", "3.10", date(2026, 11, 24))  # the week's own progress
    _sample(db, "ctr", "4.20", date(2026, 11, 24))
    sim.say("zhangwei", "解锁 lilei")
    (v2,) = sim.say("lilei", "计划\n优化详情页首屏 支付转化率 +3pp\n主图测试 详情页点击率 +0.5pp")
    assert "已保存为第 2 版" in v2["text"]
    assert "支付转化率 基线沿用第 1 版的 3（现在最新值 3.1）" in v2["text"]
    with db() as s:
        plan = s.scalar(select(Plan).where(Plan.person_id == "lilei", Plan.current.is_(True)))
        got = [(i.kpi_key, i.baseline, i.target) for i in plan.items]
    from decimal import Decimal as D

    assert got == [
        ("conversion_rate", D("3.00"), D("6.00")),
        ("ctr", D("4.00"), D("4.50")),
    ]  # never 3.10 / 4.20
    drain(services, sleep=lambda s: clock.advance(seconds=s))
    (told,) = [m for m in sim.messages("zhangwei") if m["from"] == "bot" and "重新提交了" in m["title"]]
    assert told["title"] == "李雷 重新提交了 2026-W48 计划（第 2 版）"
    assert "支付转化率 基线沿用第 1 版的 3（现在最新值 3.1）" in told["text"]


def test_skipped_reminders_say_why(db, demo_team, config, capsys):
    assert _run(config, "run", "reminders", "--at", "2026-11-25T10:00") == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line == (
        "reminders 2026-11-25T10:00:00+08:00: skipped (no team is due; "
        "ops: not the plan day (11-23); next due 2026-11-30 10:00; "
        "service: not the plan day (11-23); next due 2026-11-30 10:00)"
    )
