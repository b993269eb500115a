"""Plan submission: the whole path through the simulator (items and their checks: test_plan_items.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.demo.run import demo_value
from bot.worker.delivery import drain
from storage.models import AuditLog, Plan, PlanItem

YESTERDAY = datetime(2026, 11, 22).date()  # the clock is Monday 2026-11-23 10:00 +08:00


# ---------------------------------------------------------------- through the simulator


def _form_values(*items):
    values = {}
    for n, (text, kpi, target, scope) in enumerate(items, start=1):
        values.update(
            {f"item{n}_text": text, f"item{n}_kpi": kpi, f"item{n}_target": target, f"item{n}_scope": scope}
        )
    return values


THREE = (
    ("优化详情页首屏", "conversion_rate", "+2%", ""),
    ("差评回访", "complaint_rate", "-10%", ""),
    ("主图测试", "ctr", "+0.5pp", ""),
)


def test_plan_form_is_prefilled_with_the_role_sections(sim, demo_team):
    (card,) = sim.say("lilei", "写计划")
    assert card["title"] == "填写本周计划 · 2026-W48"
    labels = [f["label"] for f in card["form"]["fields"] if f["name"].endswith("_text")]
    assert labels == ["1. 活动策划", "2. 推广执行", "3. 数据优化", "4. 其他事项", "5. 其他事项"]
    kpi_select = next(f for f in card["form"]["fields"] if f["name"] == "item3_kpi")
    assert kpi_select["value"] == "conversion_rate"  # 数据优化 suggests the conversion KPI
    assert "支付转化率（%）" in [o["label"] for o in kpi_select["options"]]
    assert card["form"]["action"] == "plan.submit"


def test_a_three_item_plan_is_stored_and_the_receipt_shows_resolved_targets(sim, demo_team, db):
    (receipt,) = sim.act("lilei", "plan.submit", _form_values(*THREE))
    assert receipt["title"] == "本周计划已提交 · 2026-W48"
    conv = demo_value("pay_conversion_rate", YESTERDAY)
    complaint = demo_value("complaint_rate", YESTERDAY)
    ctr = demo_value("ctr", YESTERDAY)
    q = Decimal("0.01")
    assert f"{conv.quantize(q)} % → {(conv * Decimal('1.02')).quantize(q)} %" in receipt["text"]
    assert f"{complaint.quantize(q)} % → {(complaint * Decimal('0.9')).quantize(q)} %" in receipt["text"]
    assert f"{ctr.quantize(q)} % → {(ctr + Decimal('0.5')).quantize(q)} %" in receipt["text"]
    with db() as s:
        plan = s.scalar(select(Plan).where(Plan.person_id == "lilei"))
        assert (plan.week, plan.version, plan.status) == ("2026-W48", 1, "submitted")
        assert [(i.kpi_key, i.baseline, i.target) for i in plan.items] == [
            ("conversion_rate", conv, conv * Decimal("1.02")),
            ("complaint_rate", complaint, complaint * Decimal("0.9")),
            ("ctr", ctr, ctr + Decimal("0.5")),
        ]


@pytest.mark.parametrize(
    "items, field, message",
    [
        ((("优化详情页", "", "+2pp", ""),), "item1_kpi", "每一项都要关联一个指标"),
        ((("优化详情页", "conversion_rate", "+abc", ""),), "item1_target", "看不懂"),
        (
            (("优化详情页", "conversion_rate", "+2pp", ""), ("", "ctr", "+0.5pp", "")),
            "item2_text",
            "请写上这一项要做什么",
        ),
        ((("x" * 201, "conversion_rate", "+2pp", ""),), "item1_text", "内容太长"),
    ],
)
def test_invalid_input_comes_back_in_the_form_and_nothing_is_stored(
    sim, demo_team, db, items, field, message
):
    (card,) = sim.act("lilei", "plan.submit", _form_values(*items))
    assert card["form"]["action"] == "plan.submit"
    assert "计划未保存" in card["form"]["error"]
    errored = {f["name"]: f["error"] for f in card["form"]["fields"] if f["error"]}
    assert message in errored[field]
    kept = {f["name"]: f["value"] for f in card["form"]["fields"]}
    assert kept["item1_text"] == items[0][0]  # what the person typed is kept
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 0


def test_a_double_click_stores_one_plan(sim, demo_team, db):
    sim.act("lilei", "plan.submit", _form_values(*THREE))
    (second,) = sim.act("lilei", "plan.submit", _form_values(*THREE), id="another-click")
    assert "内容与当前版本相同" in second["text"]
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 1


def test_a_platform_retry_with_the_same_event_id_has_one_effect(sim, demo_team, db):
    first = sim.act("lilei", "plan.submit", _form_values(*THREE), id="evt-1")
    again = sim.client.post(
        "/sim/api/act",
        json={
            "as": "lilei",
            "chat": "dm",
            "action": "plan.submit",
            "values": _form_values(THREE[0]),
            "id": "evt-1",
        },
    )
    assert first and again.get_json() == {"replies": [], "duplicate": True}
    with db() as s:
        assert s.scalar(select(func.count()).select_from(PlanItem)) == 3


def test_resubmitting_before_the_deadline_makes_a_new_version_with_history(sim, demo_team, db):
    sim.act("lilei", "plan.submit", _form_values(*THREE))
    (card,) = sim.act("lilei", "plan.submit", _form_values(*THREE[:2]))
    assert "第 2 版" in card["text"]
    with db() as s:
        versions = s.execute(
            select(Plan.version, Plan.current).where(Plan.person_id == "lilei").order_by(Plan.version)
        ).all()
        assert versions == [(1, False), (2, True)]
        assert (
            s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "plan.submit")) == 2
        )


def test_after_the_deadline_the_leader_must_unlock(sim, demo_team, db, clock):
    sim.act("lilei", "plan.submit", _form_values(*THREE))
    clock.set(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))  # Tuesday 11:00, past Monday 14:00
    (locked,) = sim.act("lilei", "plan.submit", _form_values(*THREE[:1]))
    assert "需要主管解锁" in locked["form"]["error"]
    (denied,) = sim.say("hanmeimei", "解锁 lilei")
    assert denied["title"] == "没有权限"
    (ok,) = sim.say("zhangwei", "解锁 lilei")
    assert ok["title"] == "已解锁"
    (again,) = sim.act("lilei", "plan.submit", _form_values(*THREE[:1]), id="after-unlock")
    assert "第 2 版" in again["text"]
    (relocked,) = sim.act("lilei", "plan.submit", _form_values(*THREE[1:2]))
    assert "需要主管解锁" in relocked["form"]["error"]


@pytest.mark.parametrize(
    "said, title, text",
    [
        ("解锁 李雷", "已解锁", "李雷 现在可以重新提交 2026-W48 的计划（一次）。"),
        ("解锁 lilei", "已解锁", "李雷 现在可以重新提交 2026-W48 的计划（一次）。"),
        ("解锁 李蕾", "找不到成员", "你的团队里没有叫“李蕾”的成员。"),
        ("解锁 王芳", "找不到成员", "你的团队里没有叫“王芳”的成员。"),  # another team's leader
        ("解锁", "操作未完成", "用法：解锁 姓名（例如：解锁 李雷）"),
    ],
)
def test_unlock_takes_a_name_and_tells_the_member_until_when(
    sim, services, demo_team, clock, said, title, text
):
    sim.act("lilei", "plan.submit", _form_values(*THREE))
    clock.set(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))  # Tuesday 11:00, past Monday 14:00
    (card,) = sim.say("zhangwei", said)
    assert (card["title"], card["text"].splitlines()[1]) == (title, text)
    drain(services)
    told = [m for m in sim.messages("lilei") if m["title"] == "计划已解锁 · 2026-W48"]
    if title == "已解锁":
        (message,) = told
        assert "张伟 允许你重新提交 2026-W48 的计划一次，在 11-29（周日）24:00 前有效。" in message["text"]
    else:
        assert told == []


def test_a_first_plan_after_the_deadline_is_accepted_as_late(sim, demo_team, db, clock):
    clock.set(datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    (receipt,) = sim.act("lilei", "plan.submit", _form_values(*THREE))
    assert "已提交（迟交）" in receipt["text"]


def test_text_plan_with_the_contract_example_is_stored(sim, demo_team, db):
    text = "计划\n优化详情页首屏 支付转化率 +2pp\n差评回访 投诉率 -10%\n双11会场 活动销量 +20% @双11主会场"
    (receipt,) = sim.say("lilei", text)
    assert receipt["title"] == "本周计划已提交 · 2026-W48"
    assert "基线待首个数据确定" in receipt["text"]  # no data for the venue yet
    with db() as s:
        items = s.scalars(select(PlanItem).order_by(PlanItem.position)).all()
        assert [(i.kpi_key, i.scope, i.target_text) for i in items] == [
            ("conversion_rate", "shop", "+2pp"),
            ("complaint_rate", "shop", "-10%"),
            ("activity_sales", "双11主会场", "+20%"),
        ]


def test_text_plan_errors_are_numbered_by_line_and_nothing_is_stored(sim, demo_team, db):
    (card,) = sim.say(
        "lilei", "计划\n优化详情页首屏 支付转化率 +abc\n两段 +2pp\n差评回访 投诉率 -10%\n回访 转化 +1pp"
    )
    assert card["title"] == "计划未保存"
    lines = [line for line in card["text"].splitlines() if line.startswith("第")]
    assert [line.split("：")[0] for line in lines] == ["第2行", "第3行", "第5行"]
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 0


def test_someone_the_bot_does_not_know_gets_a_clear_answer(sim, demo_team):
    (card,) = sim.say("stranger", "写计划")
    assert card["title"] == "未加入团队" and "stranger" in card["text"]


def test_help_is_the_fallback(sim, demo_team):
    (card,) = sim.say("lilei", "你好")
    assert card["title"] == "planloop 帮助"


def test_the_transcript_keeps_what_was_said_and_answered(sim, demo_team):
    sim.say("lilei", "写计划")
    messages = sim.messages("lilei")
    assert [(m["from"], m["title"]) for m in messages] == [("lilei", ""), ("bot", "填写本周计划 · 2026-W48")]


def test_a_request_that_loses_a_race_on_a_unique_key_is_run_once_more(sim, demo_team, db, monkeypatch):
    """The loser of two simultaneous submits sees the winner's plan and stores nothing twice."""
    import dataclasses

    from sqlalchemy.exc import IntegrityError

    from bot import dispatch

    real = dispatch._process_once
    attempts = []

    def racing(services, platform, inbound):
        attempts.append(inbound.event_id)
        if len(attempts) == 1:
            # the other click commits first; our own commit then fails on (person_id, week, version)
            real(services, platform, dataclasses.replace(inbound, event_id="the-other-click"))
            raise IntegrityError(
                "INSERT INTO plans", {}, Exception("duplicate key (person_id, week, version)")
            )
        return real(services, platform, inbound)

    monkeypatch.setattr(dispatch, "_process_once", racing)
    (card,) = sim.act("lilei", "plan.submit", _form_values(*THREE), id="this-click")
    assert attempts == ["this-click", "this-click"]
    assert "内容与当前版本相同" in card["text"]
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 1


@pytest.mark.parametrize("text", ["写计划", "计划", "进度", "考核"])
def test_a_command_in_the_group_is_answered_privately(sim, demo_team, services, text):
    """Answers carry the asker's data and links signed for them: the group sees only a notice."""
    from bot.worker.delivery import drain

    sim.act("lilei", "plan.submit", _form_values(*THREE))  # so 计划 has something to show
    (notice,) = sim.say("lilei", text, chat="ops")
    assert notice["title"] == "已私信回复" and "/p/" not in notice["text"] and not notice["actions"]
    drain(services)
    group = sim.messages("ops")
    assert all("/p/" not in m["text"] for m in group)
    private = sim.messages("lilei")
    assert private[-1]["from"] == "bot" and private[-1]["title"] != "已私信回复"
