"""A person's first message gets the welcome card once; a leader's carries the team's checklist;
its buttons run the command they name."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import delete, update

from bot.worker.delivery import drain
from storage.models import MetricSample, Person, Team


@pytest.fixture
def strangers(demo_team, db):
    """The example team, none of whom has talked to the bot yet."""
    with db() as s, s.begin():
        s.execute(update(Person).values(welcomed_at=None))
    return demo_team


def welcomes(sim, who: str) -> list[dict]:
    return [m for m in sim.messages(who) if m["title"] == "欢迎使用 planloop"]


def test_a_first_message_is_answered_and_welcomed_once(sim, services, strangers):
    (answer,) = sim.say("lilei", "进度")
    assert answer["title"] == "李雷 · 2026-W48 进度"  # the command is still answered
    sim.say("lilei", "帮助")
    drain(services)
    (card,) = welcomes(sim, "lilei")
    assert card["text"].splitlines()[1].startswith("李雷，你好！我是 planloop。")
    assert [(a["label"], a["value"]) for a in card["actions"]] == [
        ("写本周计划", {"command": "写计划"}),
        ("看本周进度", {"command": "进度"}),
        ("看最近的考核", {"command": "考核"}),
    ]
    assert "发送“帮助”查看你可以用的全部命令。" in card["text"]  # no guide_url configured
    assert "组长" not in card["text"]


@pytest.mark.parametrize(
    "command, title",
    [("写计划", "填写本周计划 · 2026-W48"), ("进度", "李雷 · 2026-W48 进度"), ("考核", "考核结果")],
)
def test_the_welcome_buttons_run_their_command(sim, strangers, command, title):
    (card,) = sim.act("lilei", "chat.command", {"command": command})
    assert card["title"] == title


def test_a_welcome_button_runs_only_the_commands_it_offers(sim, strangers):
    (card,) = sim.act("zhangwei", "chat.command", {"command": "暂停团队提醒 至 12-31"})
    assert card["title"] == "操作未完成" and "按钮已失效" in card["text"]


def test_a_leaders_welcome_carries_the_teams_checklist(sim, services, strangers, db):
    with db() as s, s.begin():  # the service team's data stopped nine days ago; ops has none linked
        s.execute(update(Team).where(Team.id == "ops").values(chat_id=None, webhook_enc=None))
        s.execute(delete(MetricSample).where(MetricSample.day > date(2026, 11, 13)))
    sim.say("zhangwei", "你好")
    drain(services)
    (card,) = welcomes(sim, "zhangwei")
    table = next(b for b in card["card"]["blocks"] if b["type"] == "table")
    assert [tuple(r) for r in table["rows"]] == [
        ("运营设计组 · 团队文件", "✅ 就绪", "已导入 6 人"),
        (
            "运营设计组 · 团队群",
            "⚠️ 待处理",
            "在团队文件里给团队加上 chat = { bot = …, chat_id = … }，再运行 planloop apply",
        ),
        (
            "运营设计组 · 数据",
            "⚠️ 待处理",
            "最新数据是 11-13（10 天前）：请管理员运行 planloop sources check 检查数据源",
        ),
        (
            "运营设计组 · 本周安排",
            "✅ 就绪",
            "计划日 11-23 10:00（14:00 截止） · 考核 11-27 20:00 · 周初汇总 11-30 09:00",
        ),
    ]
    assert "你是组长：团队的准备情况**（2/4 项就绪）" in card["card"]["blocks"][2]["text"]


def test_the_guide_link_comes_from_server_guide_url(sim, services, strangers, monkeypatch):
    monkeypatch.setitem(services.settings.extra, "guide_url", "https://intranet.example/planloop/guide")
    sim.say("lilei", "帮助")
    drain(services)
    (card,) = welcomes(sim, "lilei")
    assert card["actions"][-1] == {
        "id": "",
        "label": "使用指南",
        "value": {},
        "url": "https://intranet.example/planloop/guide",
    }
