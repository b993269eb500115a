"""Plan reminders: when they are due, whom they skip, and an admin's explicit re-run (the chat commands,
leave, pauses and the leader's buttons: test_reminder_commands.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.worker.delivery import drain
from bot.worker.jobs import run_job
from handlers.reminders import phase
from handlers.workdays import Calendar
from storage.db import transaction
from storage.models import OutboxMessage, SimMessage, Team
from tests import worker_seed as seed

SH = ZoneInfo("Asia/Shanghai")


def local(text: str, zone: ZoneInfo = SH) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone).astimezone(UTC)


def team(**kw: object) -> Team:
    values: dict[str, object] = {
        "id": "ops",
        "name": "运营组",
        "timezone": "Asia/Shanghai",
        "plan_day_time": "10:00",
        "plan_deadline_time": "14:00",
        "reminders_paused_until": None,
    }
    values.update(kw)
    return Team(**values)


@pytest.mark.parametrize(
    ("kw", "overrides", "when", "due"),
    [
        ({}, {}, "2026-11-23 09:59", "before 10:00"),
        ({}, {}, "2026-11-23 10:00", "remind"),
        ({}, {}, "2026-11-23 13:59", "remind"),
        ({}, {}, "2026-11-23 14:00", "deadline"),
        ({}, {}, "2026-11-23 20:30", "deadline"),
        ({}, {}, "2026-11-23 21:00", "after 21:00"),  # nobody is pinged at night
        ({}, {}, "2026-11-24 10:00", "not the plan day (11-23)"),
        # 国庆 2026: W41's first workday is Thursday 10-08; W40's Monday 09-28
        ({}, {}, "2026-10-05 10:00", "not the plan day (10-08)"),
        ({}, {}, "2026-10-08 10:00", "remind"),
        ({}, {}, "2026-09-28 14:30", "deadline"),
        # a company that keeps the Monday off moves the day to Tuesday
        ({}, {date(2026, 11, 23): False}, "2026-11-23 10:00", "not the plan day (11-24)"),
        ({}, {date(2026, 11, 23): False}, "2026-11-24 10:00", "remind"),
        # a whole week off (春节-like): nothing at all
        ({}, {date(2026, 11, 23 + n): False for n in range(7)}, "2026-11-23 10:00", "no workday this week"),
        # the team's own times
        ({"plan_day_time": "09:30", "plan_deadline_time": "12:00"}, {}, "2026-11-23 09:30", "remind"),
        ({"plan_day_time": "09:30", "plan_deadline_time": "12:00"}, {}, "2026-11-23 12:00", "deadline"),
        (
            {"plan_deadline_time": "09:00"},
            {},
            "2026-11-23 15:00",
            "remind",
        ),  # a deadline before the start: no list
        # paused through that day (inclusive), and not the day after
        ({"reminders_paused_until": date(2026, 11, 23)}, {}, "2026-11-23 10:00", "paused until 2026-11-23"),
        ({"reminders_paused_until": date(2026, 11, 22)}, {}, "2026-11-23 10:00", "remind"),
    ],
)
def test_what_is_due_when(kw: dict, overrides: dict, when: str, due: str) -> None:
    got = phase(team(**kw), local(when), Calendar(overrides))
    assert (got if isinstance(got, str) else got[1]) == due


def test_times_are_the_teams_own_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    t = team(timezone="Europe/Berlin")
    got = phase(t, local("2026-11-23 10:00", berlin), Calendar({}))
    assert not isinstance(got, str) and got[1] == "remind"
    assert got[0].deadline == datetime(2026, 11, 23, 14, 0, tzinfo=berlin)
    # 10:00 in Shanghai is 03:00 in Berlin
    assert phase(t, local("2026-11-23 10:00"), Calendar({})) == "before 10:00"


# ---------------------------------------------------------------- whom the reminders reach


@pytest.fixture
def shop(db, clock):  # noqa: ANN201
    """运营组: leader 张伟, 李雷 (files early), 韩梅梅, 赵强 (joins next week), 陈静 (paused), 刘洋 (on leave)."""
    with transaction(db) as s:
        seed.team(s)
        seed.person(s, "zhangwei", "张伟")
        seed.person(s, "lilei", "李雷")
        seed.person(s, "hanmeimei", "韩梅梅")
        seed.person(s, "zhaoqiang", "赵强", hire_date=date(2026, 11, 30))
        seed.person(s, "chenjing", "陈静", reminders_paused=True)
        seed.person(s, "liuyang", "刘洋", on_leave_until=date(2026, 11, 23))
        seed.person(s, "gone", "离职者", active=False)
        seed.kpi(s, "conversion_rate", "支付转化率", metric="pay_conversion_rate")
        seed.plan(
            s, "lilei", "2026-W48", [("优化详情页", "conversion_rate", "shop", "3.00", "5.00")], at=clock()
        )


def fire(services, clock, when: str, job: str = "reminders", **kw: object):  # noqa: ANN001, ANN201
    clock.set(local(when))
    result = run_job(services, job, local(when), **kw)
    drain(services, sleep=lambda s: clock.advance(seconds=s))
    return result


def inbox(db, chat: str) -> list[str]:
    """Titles of what the relay delivered to ``chat`` (not the synchronous answers to commands)."""
    with db() as s:
        rows = s.scalars(
            select(OutboxMessage).where(OutboxMessage.target == chat).order_by(OutboxMessage.created_at)
        ).all()
        assert all(r.status == "sent" for r in rows)
        return [r.card["title"] for r in rows]


def test_one_reminder_each_skipping_planned_paused_on_leave_unhired_leader_and_inactive(
    services, db, clock, shop
) -> None:
    for when in ("2026-11-23 09:30", "2026-11-23 10:00", "2026-11-23 10:30", "2026-11-23 13:30"):
        fire(services, clock, when)
    assert inbox(db, "hanmeimei") == ["提醒：填写 2026-W48 周计划"]  # once, though four slots fired
    for quiet in ("zhangwei", "lilei", "zhaoqiang", "chenjing", "liuyang", "gone"):
        assert inbox(db, quiet) == [], quiet
    fire(services, clock, "2026-11-23 14:00")
    fire(services, clock, "2026-11-23 14:30")
    assert inbox(db, "zhangwei") == ["运营组 · 2026-W48 未提交计划 2 人"]  # once
    with db() as s:
        card = s.scalars(select(OutboxMessage).where(OutboxMessage.target == "zhangwei")).one().card
    table = next(block for block in card["blocks"] if block["type"] == "table")
    assert table["rows"] == [["陈静", "已暂停提醒"], ["韩梅梅", "已提醒"]]  # paused people still listed
    assert "请假：刘洋" in str(card["blocks"])
    assert [b["action"] for b in card["buttons"]] == [
        "plan.remind",
        "progress.show",
        "leave.mark",
        "leave.mark",
    ]
    # the next week: 赵强 has joined, 刘洋 is back; nothing on the days between
    for day in ("24", "25", "26", "27"):
        fire(services, clock, f"2026-11-{day} 10:00")
    fire(services, clock, "2026-11-30 10:00")
    assert inbox(db, "zhaoqiang") == ["提醒：填写 2026-W49 周计划"]
    assert inbox(db, "liuyang") == ["提醒：填写 2026-W49 周计划"]
    assert inbox(db, "lilei") == ["提醒：填写 2026-W49 周计划"]


def test_a_paused_team_hears_nothing_and_an_explicit_run_sends_again(services, db, clock, shop) -> None:
    with transaction(db) as s:
        s.get(Team, "ops").reminders_paused_until = date(2026, 11, 23)
    assert fire(services, clock, "2026-11-23 10:00").enqueued == 0
    assert fire(services, clock, "2026-11-23 14:00").enqueued == 0
    with transaction(db) as s:
        s.get(Team, "ops").reminders_paused_until = None
    first = fire(services, clock, "2026-11-23 10:30")
    again = fire(services, clock, "2026-11-23 10:30", explicit=True)  # `planloop run reminders --at …`
    assert (first.enqueued, again.enqueued) == (1, 1)
    assert inbox(db, "hanmeimei") == ["提醒：填写 2026-W48 周计划"] * 2
    with db() as s:
        keys = sorted(s.scalars(select(OutboxMessage.dedupe_key)))
    assert keys == ["remind:plan:hanmeimei:2026-W48", "remind:plan:hanmeimei:2026-W48#run1"]


def test_reminders_in_english(services, db, clock, shop) -> None:
    from dataclasses import replace

    services.settings = replace(services.settings, locale="en-US")
    fire(services, clock, "2026-11-23 10:00")
    fire(services, clock, "2026-11-23 14:00")
    assert inbox(db, "hanmeimei") == ["Reminder: your plan for 2026-W48"]
    assert inbox(db, "zhangwei") == ["运营组 · 2026-W48: 2 without a plan"]
    with db() as s:
        text = s.scalars(select(SimMessage.text).where(SimMessage.chat == "hanmeimei")).one()
    assert (
        "韩梅梅, your plan for this week (11-23–11-29) is not in yet. Please file it by 11-23 14:00" in text
    )


MEMBER_COMMANDS = ("写计划", "进度", "考核", "请假", "销假", "暂停提醒", "恢复提醒", "帮助")
LEADER_COMMANDS = ("暂停团队提醒", "恢复团队提醒", "评分", "切换模板", "恢复模板", "解锁 姓名", "请假 姓名")


@pytest.mark.parametrize(
    "who, leader",
    [("zhangwei", True), ("wangfang", True), ("lilei", False), ("zhoumin", False), ("nobody", False)],
)
def test_help_lists_the_commands_this_person_may_use(sim, demo_team, who, leader) -> None:
    text = sim.say(who, "帮助")[0]["text"]
    assert [w for w in MEMBER_COMMANDS if w not in text] == []
    assert [w for w in LEADER_COMMANDS if w in text] == (list(LEADER_COMMANDS) if leader else [])
    assert ("组长命令" in text) == leader
