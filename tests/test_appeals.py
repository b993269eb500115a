"""Appeals (handlers/appeals.py): chat flows go through the simulator like a transcript."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from handlers.appraisal_runs import current_appraisal, run_week
from storage.models import Appeal, AuditLog, OutboxMessage
from tests.appraisal_shop import NOW, by_person, lilei_week48, seed_shop


@pytest.fixture
def shop(db) -> None:
    seed_shop(db)


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
