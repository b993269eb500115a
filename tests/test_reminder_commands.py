"""Reminders in chat: leave and pauses (audited), the leader's 再提醒一次 and leave buttons."""

# ruff: noqa: F811 - ``shop`` is test_reminders' fixture, imported so both files seed the same team

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import select

from bot.worker.delivery import drain
from storage.db import transaction
from storage.models import AuditLog, Person, SimMessage, Team
from tests import worker_seed as seed
from tests.test_reminders import fire, inbox, local, shop  # noqa: F401


def audit(db, action: str) -> list[tuple[str, str, dict]]:
    with db() as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))
        return [(r.actor, r.subject, r.detail) for r in rows]


def reply(sim, who: str, text: str) -> str:
    (card,) = sim.say(who, text, id=uuid.uuid4().hex)  # the same words twice are two messages
    return card["text"].splitlines()[1]


@pytest.mark.parametrize(
    ("who", "text", "answer", "until"),
    [
        (
            "hanmeimei",
            "请假 至 12-01",
            "已登记请假至 2026-12-01（含当天），期间不会收到计划提醒。提前回来请发送“销假”。",
            "2026-12-01",
        ),
        (
            "hanmeimei",
            "请假 至12月1日",
            "已登记请假至 2026-12-01（含当天），期间不会收到计划提醒。提前回来请发送“销假”。",
            "2026-12-01",
        ),
        (
            "hanmeimei",
            "请假 到 2026-11-23",
            "已登记请假至 2026-11-23（含当天），期间不会收到计划提醒。提前回来请发送“销假”。",
            "2026-11-23",
        ),
        (
            "hanmeimei",
            "请假 11-20",
            "已登记请假至 2027-11-20（含当天），期间不会收到计划提醒。提前回来请发送“销假”。",
            "2027-11-20",
        ),
        (
            "hanmeimei",
            "请假 韩梅梅 至 12-01",
            "已登记请假至 2026-12-01（含当天），期间不会收到计划提醒。提前回来请发送“销假”。",
            "2026-12-01",
        ),
        (
            "zhangwei",
            "请假 hanmeimei 至 12-01",
            "已登记 韩梅梅 请假至 2026-12-01（含当天），期间不提醒、不计入未提交名单。",
            "2026-12-01",
        ),
        (
            "zhangwei",
            "请假 韩梅梅 至 12-01",
            "已登记 韩梅梅 请假至 2026-12-01（含当天），期间不提醒、不计入未提交名单。",
            "2026-12-01",
        ),
        (
            "zhangwei",
            "leave hanmeimei until 12-01",
            "已登记 韩梅梅 请假至 2026-12-01（含当天），期间不提醒、不计入未提交名单。",
            "2026-12-01",
        ),
    ],
)
def test_leave_is_recorded_and_audited(sim, db, shop, who: str, text: str, answer: str, until: str) -> None:
    assert reply(sim, who, text) == answer
    with db() as s:
        assert s.get(Person, "hanmeimei").on_leave_until == date.fromisoformat(until)
    ((actor, subject, detail),) = audit(db, "person.leave")
    assert (actor, subject, detail["until"], detail["before"], detail["via"]) == (
        who,
        "hanmeimei",
        until,
        None,
        "command",
    )


USAGE = "格式：请假 12-01 至 12-05（不写开始日期则从今天起；组长为成员登记：请假 姓名 12-01 至 12-05；提前结束：销假）"


@pytest.mark.parametrize(
    ("who", "text", "answer"),
    [
        ("hanmeimei", "请假", USAGE),
        ("hanmeimei", "请假 至 明天", "日期“明天”看不懂：请写 12-01 或 2026-12-01。"),
        ("hanmeimei", "请假 至 2026-02-30", "日期“2026-02-30”看不懂：请写 12-01 或 2026-12-01。"),
        ("hanmeimei", "请假 至 2026-11-01", "日期 2026-11-01 已经过去，请写今天或以后的日期。"),
        ("hanmeimei", "请假 至 2028-01-01", "请假最长登记一年（到 2027-11-24 为止）。"),
        ("hanmeimei", "请假 lilei 至 12-01", "只有组长可以为其他成员登记请假或销假。"),  # not a leader
        ("zhangwei", "请假 nobody 至 12-01", "你带的团队里没有叫“nobody”的成员。"),
        (
            "zhangwei",
            "请假 a b c",
            USAGE,
        ),
    ],
)
def test_leave_refusals_change_nothing(sim, db, shop, who: str, text: str, answer: str) -> None:
    assert reply(sim, who, text) == answer
    with db() as s:
        assert s.get(Person, "hanmeimei").on_leave_until is None
        assert s.get(Person, "lilei").on_leave_until is None
    assert audit(db, "person.leave") == []


def test_back_from_leave(sim, db, shop) -> None:
    assert reply(sim, "liuyang", "销假") == "已销假，计划提醒恢复。"
    assert reply(sim, "liuyang", "销假") == "刘洋 当前没有请假。"
    reply(sim, "zhangwei", "请假 liuyang 至 12-01")
    assert reply(sim, "zhangwei", "销假 刘洋") == "已为 刘洋 销假。"
    assert [(a, s, d["before"]) for a, s, d in audit(db, "person.leave.end")] == [
        ("liuyang", "liuyang", "2026-11-23"),
        ("zhangwei", "liuyang", "2026-12-01"),
    ]


def test_pause_and_resume_my_reminders(sim, db, shop) -> None:
    assert reply(sim, "hanmeimei", "暂停提醒") == "已暂停你的计划提醒。发送“恢复提醒”重新开启。"
    assert reply(sim, "hanmeimei", "暂停提醒").startswith("你的计划提醒已经是暂停状态")
    with db() as s:
        assert s.get(Person, "hanmeimei").reminders_paused is True
    assert reply(sim, "hanmeimei", "恢复提醒") == "已恢复你的计划提醒。"
    assert reply(sim, "hanmeimei", "resume-reminders") == "你的计划提醒本来就是开启的。"
    assert [(a, d) for a, _, d in audit(db, "reminders.pause")] == [("hanmeimei", {})]
    assert [(a, d) for a, _, d in audit(db, "reminders.resume")] == [("hanmeimei", {})]


def test_a_leader_pauses_the_team(sim, db, shop) -> None:
    assert reply(sim, "hanmeimei", "暂停团队提醒 至 02-20") == "只有组长可以暂停或恢复团队的计划提醒。"
    assert (
        reply(sim, "zhangwei", "暂停团队提醒") == "格式：暂停团队提醒 至 02-20（多个团队时加：团队 团队id）"
    )
    assert (
        reply(sim, "zhangwei", "暂停团队提醒 至 02-20")
        == "运营组 的计划提醒暂停至 2027-02-20（含当天）。发送“恢复团队提醒”可提前恢复。"
    )
    with db() as s:
        assert s.get(Team, "ops").reminders_paused_until == date(2027, 2, 20)
    assert reply(sim, "zhangwei", "恢复团队提醒") == "运营组 的计划提醒已恢复。"
    assert reply(sim, "zhangwei", "恢复团队提醒") == "运营组 的计划提醒没有暂停。"
    ((actor, subject, detail),) = audit(db, "team.reminders.pause")
    assert (actor, subject, detail) == ("zhangwei", "team ops", {"until": "2027-02-20", "before": None})
    assert [d for _, _, d in audit(db, "team.reminders.resume")] == [{"before": "2027-02-20"}]


def test_a_leader_of_two_teams_names_one(sim, db, shop) -> None:
    with transaction(db) as s:
        seed.team(s, "design", name="设计组")
    assert reply(sim, "zhangwei", "暂停团队提醒 至 02-20").startswith("你是多个团队的组长")
    assert reply(sim, "zhangwei", "暂停团队提醒 至 02-20 团队 design").startswith("设计组 的计划提醒暂停至")
    assert reply(sim, "zhangwei", "恢复团队提醒 团队 ops") == "运营组 的计划提醒没有暂停。"


def missing_list(services, clock, sim) -> dict:  # noqa: ANN001
    fire(services, clock, "2026-11-23 10:00")
    fire(services, clock, "2026-11-23 14:00")
    return next(m for m in sim.messages("zhangwei") if "未提交计划" in m["title"])


def test_remind_again_once_and_only_by_the_leader(services, db, clock, shop, sim) -> None:
    card = missing_list(services, clock, sim)
    button = next(a for a in card["actions"] if a["id"] == "plan.remind")
    clock.set(local("2026-11-23 14:10"))
    (denied,) = sim.act("hanmeimei", "plan.remind", button["value"])
    assert denied["title"] == "没有权限"
    (done,) = sim.act("zhangwei", "plan.remind", button["value"])
    assert done["text"].splitlines()[1] == "已再次提醒 1 人：韩梅梅。"  # 陈静 paused, 刘洋 on leave
    (again,) = sim.act("zhangwei", "plan.remind", button["value"], id="second-click")
    assert again["text"].splitlines()[1] == "这些成员本周已经再提醒过一次，不会重复发送。"
    drain(services, sleep=lambda s: clock.advance(seconds=s))
    assert inbox(db, "hanmeimei") == ["提醒：填写 2026-W48 周计划", "张伟提醒：填写 2026-W48 周计划"]
    with db() as s:
        nudge = s.scalars(
            select(SimMessage).where(SimMessage.chat == "hanmeimei").order_by(SimMessage.id)
        ).all()[-1]
    assert "截止时间 11-23 14:00 已过，现在提交会记为迟交" in nudge.text
    assert [d for _, _, d in audit(db, "plan.remind")] == [{"week": "2026-W48", "people": ["hanmeimei"]}]
    clock.set(local("2026-11-30 09:00"))  # a week later the old card's button is stale
    (stale,) = sim.act("zhangwei", "plan.remind", button["value"])
    assert stale["text"].splitlines()[1] == "这是 2026-W48 的名单，已经过期。"


def test_the_leave_button(services, db, clock, shop, sim) -> None:
    card = missing_list(services, clock, sim)
    leave = next(
        a for a in card["actions"] if a["id"] == "leave.mark" and a["value"]["person"] == "hanmeimei"
    )
    assert leave["value"] == {"person": "hanmeimei", "until": "2026-11-29"}  # the week's Sunday
    (denied,) = sim.act("lilei", "leave.mark", leave["value"])
    assert denied["title"] == "没有权限"
    (done,) = sim.act("zhangwei", "leave.mark", leave["value"])
    assert (
        done["text"].splitlines()[1]
        == "已登记 韩梅梅 请假至 2026-11-29（含当天），期间不提醒、不计入未提交名单。"
    )
    (bad,) = sim.act("zhangwei", "leave.mark", {"person": "hanmeimei", "until": "soon"})
    assert bad["text"].splitlines()[1] == "日期“soon”看不懂：请写 12-01 或 2026-12-01。"
    with db() as s:
        assert s.get(Person, "hanmeimei").on_leave_until == date(2026, 11, 29)
    assert [(a, s, d["via"]) for a, s, d in audit(db, "person.leave")] == [
        ("zhangwei", "hanmeimei", "button")
    ]
