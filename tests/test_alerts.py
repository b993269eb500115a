"""Lag alerts in one pass (who gets what, when not), and the buttons on the alert cards."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from cards.model import Card
from cards.render import text as text_render
from handlers.alerts import run_lag_alerts, snooze_until
from storage.db import transaction
from storage.models import Identity, OutboxMessage, PlanItem
from tests import worker_seed as seed

SH = ZoneInfo("Asia/Shanghai")
BOTS = frozenset({"sim"})


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH).astimezone(UTC)


def lagging_team(session) -> dict[str, int]:
    """Team ops in W48; 李雷 and 韩梅梅 both at 5 % by Wednesday (pace 40 %)."""
    at = local("2026-11-23 10:00")
    seed.team(session)
    for pid, name in (("zhangwei", "张伟"), ("lilei", "李雷"), ("hanmeimei", "韩梅梅")):
        seed.person(session, pid, name)
    seed.kpi(session, "conversion_rate", "支付转化率", metric="pay_conversion_rate")
    ids = {}
    for pid, scope in (("lilei", "a"), ("hanmeimei", "b")):
        plan = seed.plan(
            session, pid, "2026-W48", [("提升转化", "conversion_rate", scope, "3.00", "5.00")], at=at
        )
        seed.sample(session, "pay_conversion_rate", "2026-11-24", "3.10", scope=scope, at=at)
        ids[pid] = plan.items[0].id
    return ids


def messages(session) -> list[tuple[str, str, str]]:
    rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.target))
    return [(r.target, r.card["title"], r.dedupe_key) for r in rows]


def test_one_pass_alerts_each_member_and_folds_for_the_leader(db) -> None:
    with transaction(db) as session:
        ids = lagging_team(session)
        run = run_lag_alerts(session, local("2026-11-25 09:05"), bots=BOTS)
        assert (run.employee, run.leader, run.lagging) == (2, 1, 2)
        assert messages(session) == [
            ("hanmeimei", "进度提醒：提升转化", f"lag:{ids['hanmeimei']}:2026-11-25"),
            ("lilei", "进度提醒：提升转化", f"lag:{ids['lilei']}:2026-11-25"),
            ("zhangwei", "运营组 · 进度落后 2 项", "lag-team:ops:2026-11-25"),
        ]
        leader_card = Card.from_dict(
            session.scalars(select(OutboxMessage).where(OutboxMessage.target == "zhangwei")).one().card
        )
        text = text_render.render(leader_card)
        assert "李雷 | 提升转化 | 5 % | 40 %" in text and "韩梅梅 | 提升转化 | 5 % | 40 %" in text
        alert = Card.from_dict(
            session.scalars(select(OutboxMessage).where(OutboxMessage.target == "lilei")).one().card
        )
        assert [b.label for b in alert.buttons] == ["更新说明", "需要支持", "本周不再提醒"]
        assert {b.value["item"] for b in alert.buttons} == {str(ids["lilei"])}
        assert "目前完成 5 %，按已过的工作日应达 40 %" in text_render.render(alert)
        # the same workday again (the next hourly slot): nothing new
        again = run_lag_alerts(session, local("2026-11-25 10:05"), bots=BOTS)
        assert (again.employee, again.leader) == (0, 0)
        assert len(messages(session)) == 3


@pytest.mark.parametrize(
    ("moment", "reason"),
    [
        ("2026-11-25 08:59", "outside 09:00–18:00"),
        ("2026-11-25 18:00", "outside 09:00–18:00"),
        ("2026-11-28 10:00", "not a workday"),  # Saturday
    ],
)
def test_no_alerts_outside_working_time(db, moment: str, reason: str) -> None:
    with transaction(db) as session:
        lagging_team(session)
        run = run_lag_alerts(session, local(moment), bots=BOTS)
        assert run.skipped == {"ops": reason}
        assert messages(session) == []


def test_an_explicit_rerun_sends_again(db) -> None:
    with transaction(db) as session:
        lagging_team(session)
        run_lag_alerts(session, local("2026-11-25 09:05"), bots=BOTS)
        again = run_lag_alerts(session, local("2026-11-25 09:05"), bots=BOTS, dedupe_suffix="#run1")
        assert (again.employee, again.leader) == (2, 1)


def test_people_without_a_chat_identity_are_skipped_not_fatal(db) -> None:
    with transaction(db) as session:
        lagging_team(session)
        session.query(Identity).filter(Identity.person_id.in_(["lilei", "zhangwei"])).delete()
        run = run_lag_alerts(session, local("2026-11-25 09:05"), bots=BOTS)
        assert (run.employee, run.leader) == (1, 0)
        assert [m[0] for m in messages(session)] == ["hanmeimei"]


# --- buttons ----------------------------------------------------------------------------------


def act(client, who: str, action: str, **values: str) -> dict:
    resp = client.post("/sim/api/act", json={"as": who, "chat": "dm", "action": action, "values": values})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()["replies"][0]


def test_update_note_form_and_save(client, db, clock) -> None:
    with transaction(db) as session:
        ids = lagging_team(session)
    clock.set(local("2026-11-25 10:00"))
    item = str(ids["lilei"])
    form = act(client, "lilei", "progress.note", item=item)
    assert form["form"]["action"] == "progress.note.save" and form["form"]["values"] == {"item": item}
    empty = act(client, "lilei", "progress.note.save", item=item, note="  ")
    assert empty["form"]["error"] == "请写几句说明。"
    too_long = act(client, "lilei", "progress.note.save", item=item, note="字" * 1001)
    assert too_long["form"]["error"].startswith("说明最多 1000 字")
    done = act(client, "lilei", "progress.note.save", item=item, note="详情页周四上线")
    assert done["title"] == "说明已保存"
    with db() as session:
        assert session.get(PlanItem, ids["lilei"]).note == "详情页周四上线"


def test_ask_for_help_tells_the_leader_once_a_day(client, db, clock) -> None:
    with transaction(db) as session:
        ids = lagging_team(session)
    clock.set(local("2026-11-25 10:00"))
    first = act(client, "lilei", "progress.help", item=str(ids["lilei"]))
    clock.advance(minutes=30)  # (the same click within a second is one event in the simulator)
    second = act(client, "lilei", "progress.help", item=str(ids["lilei"]))
    assert (first["title"], second["title"]) == ("已通知组长", "已经通知过组长")
    with db() as session:
        (row,) = session.scalars(select(OutboxMessage)).all()
        assert (row.target, row.card["title"]) == ("zhangwei", "李雷 需要支持")
        assert "5 %（应达 40 %）" in text_render.render(Card.from_dict(row.card))


@pytest.mark.parametrize(
    ("who", "action", "owner", "title"),
    [
        ("hanmeimei", "progress.note", "lilei", "没有权限"),  # someone else's item
        ("hanmeimei", "progress.help", "lilei", "没有权限"),
        ("hanmeimei", "progress.snooze", "lilei", "没有权限"),
        ("zhangwei", "progress.snooze", "lilei", "本周不再提醒"),  # the leader may snooze a member's item
        ("zhangwei", "progress.note", "lilei", "没有权限"),  # but not write their note
        ("lilei", "progress.team.snooze", "", "没有权限"),
    ],
)
def test_button_permissions(client, db, clock, who: str, action: str, owner: str, title: str) -> None:
    with transaction(db) as session:
        ids = lagging_team(session)
    clock.set(local("2026-11-25 10:00"))
    values = {"item": str(ids[owner])} if owner else {"team": "ops"}
    assert act(client, who, action, **values)["title"] == title


@pytest.mark.parametrize("item", ["", "abc", "999999"])
def test_buttons_with_a_bad_item(client, db, clock, item: str) -> None:
    with transaction(db) as session:
        lagging_team(session)
    assert act(client, "lilei", "progress.note", item=item)["title"] == "没有权限"


def test_snooze_lasts_until_sunday(client, db, clock) -> None:
    with transaction(db) as session:
        ids = lagging_team(session)
    clock.set(local("2026-11-25 10:00"))
    act(client, "lilei", "progress.snooze", item=str(ids["lilei"]))
    with transaction(db) as session:
        assert str(snooze_until(session, ids["lilei"])) == "2026-11-29"
        run = run_lag_alerts(session, local("2026-11-25 11:05"), bots=BOTS)
        assert [m[0] for m in messages(session)] == ["hanmeimei", "zhangwei"]
        assert run.employee == 1


def test_show_progress_button_gives_the_leader_the_team(client, db, clock) -> None:
    with transaction(db) as session:
        lagging_team(session)
    clock.set(local("2026-11-25 10:00"))
    card = act(client, "zhangwei", "progress.show")
    assert card["title"] == "运营组 · 2026-W48 团队进度"
