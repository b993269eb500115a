"""Issue 16: no score without data — a week whose data did not arrive is held, never a D."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select

from bot.worker.delivery import drain
from bot.worker.jobs import run_job
from storage.db import transaction
from storage.models import Appraisal, MetricSample, SourceRun, SourceState
from tests.test_numbers import _sample

SH = ZoneInfo("Asia/Shanghai")
FRIDAY = datetime(2026, 11, 27, 20, 0, tzinfo=SH)  # the appraisal slot of W48's last workday


@pytest.fixture
def admins(services):
    services.settings = replace(services.settings, extra={**services.settings.extra, "admins": ["wangfang"]})
    return services


def _cards(sim, chat: str, title: str) -> list[dict]:
    return [m for m in sim.messages(chat) if m["from"] == "bot" and title in m["title"]]


@pytest.fixture
def held_week(admins, sim, db, clock, demo_team):
    """李雷 and 韩梅梅 plan on 支付转化率; its W48 report never arrives (the source failed)."""
    for who in ("lilei", "hanmeimei"):
        (receipt,) = sim.say(who, "计划\n优化详情页首屏 支付转化率 +2pp")
        assert receipt["title"] == "本周计划已提交 · 2026-W48"
    with transaction(db) as s:
        s.execute(
            delete(MetricSample).where(
                MetricSample.metric == "pay_conversion_rate", MetricSample.day >= date(2026, 11, 23)
            )
        )
        s.add(
            SourceRun(
                source_id="demo",
                started_at=datetime(2026, 11, 27, 17, 0, tzinfo=SH),
                finished_at=datetime(2026, 11, 27, 17, 1, tzinfo=SH),
                error="HTTP 502 from the report server",
            )
        )
    clock.set(FRIDAY)
    result = run_job(admins, "appraisal", FRIDAY)
    assert result.status == "done", result
    drain(admins, sleep=lambda s: clock.advance(seconds=s))
    return admins


def test_a_week_without_data_is_held_and_the_leader_and_admins_are_told(
    held_week, sim, client, db, config, capsys
):
    from bot.cli.commands import main

    assert _cards(sim, "lilei", "考核结果") == [] and _cards(sim, "hanmeimei", "考核结果") == []
    for chat in ("zhangwei", "wangfang"):  # the leader, and the admin
        (card,) = _cards(sim, chat, "考核暂缓发布")
        assert card["title"] == "2026-W48 考核暂缓发布 · 运营设计组 · 数据缺失"
        text = card["text"]
        assert "· 李雷：支付转化率（指标 pay_conversion_rate，范围 shop）缺少 11-23 – 11-27 的数据" in text
        assert "· 韩梅梅：支付转化率（指标 pay_conversion_rate，范围 shop）缺少 11-23 – 11-27 的数据" in text
        assert "· demo：11-27 17:00，错误：HTTP 502 from the report server" in text
        assert [a["label"] for a in card["actions"]] == ["重新拉取", "按现有数据发布"]
    with db() as s:
        rows = s.scalars(select(Appraisal).where(Appraisal.week == "2026-W48", Appraisal.team_id == "ops"))
        held = {r.person_id: r.status for r in rows if r.person_id in ("lilei", "hanmeimei")}
    assert held == {"lilei": "held", "hanmeimei": "held"}
    page = client.get(f"/p/{held_week.links.token('lilei', 'appraisal', '2026-W48', held_week.clock())}")
    assert "李雷 在 2026-W48 还没有考核结果" in page.get_data(as_text=True)
    (mine,) = sim.say("lilei", "考核 2026-W48")
    assert mine["title"] == "2026-W48 考核结果 · 数据缺失" and "暂缓发布" in mine["text"]
    assert re.search(r"\d 分", mine["text"]) is None  # no score shown
    capsys.readouterr()
    assert main(["--config", config, "verify", "appraisals", "--week", "2026-W48", "--team", "ops"]) == 0
    assert " 2 held (not scored), 0 discrepancies" in capsys.readouterr().out
    assert main(["--config", config, "export", "appraisals", "--week", "2026-W48", "--team", "ops"]) == 0
    lilei = next(a for a in json.loads(capsys.readouterr().out)["appraisals"] if a["employee"] == "lilei")
    assert lilei["status"] == "held" and "held" in lilei["flags"] and "missing_data" in lilei["flags"]


def test_the_monday_summary_shows_held_people_as_data_missing(held_week, sim, clock):
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=SH)
    clock.set(monday)
    assert run_job(held_week, "monday-summary", monday).status == "done"
    drain(held_week, sleep=lambda s: clock.advance(seconds=s))
    (card,) = [
        m for m in _cards(sim, "zhangwei", "") if "W49" in m["title"] and "table" in json.dumps(m["card"])
    ]
    table = next(b for b in card["card"]["blocks"] if b["type"] == "table")
    rows = {r[0]: r for r in table["rows"]}
    assert rows["李雷"][4] == "数据缺失" and rows["韩梅梅"][4] == "数据缺失"
    assert "D" not in (rows["李雷"][4], rows["韩梅梅"][4])


def test_the_tick_publishes_once_the_data_is_complete(held_week, sim, db, clock):
    later = datetime(2026, 11, 28, 9, 0, tzinfo=SH)
    clock.set(later)
    assert run_job(held_week, "appraisal-held", later).detail["released"] == 0  # still missing
    _sample(db, "pay_conversion_rate", "3.10", date(2026, 11, 26))
    assert run_job(held_week, "appraisal-held", later.replace(minute=15)).detail["released"] == 2
    drain(held_week, sleep=lambda s: clock.advance(seconds=s))
    (card,) = _cards(sim, "lilei", "考核结果")
    assert "第 2 版：数据已到齐，自动发布" in card["text"]
    with db() as s:
        row = s.scalar(
            select(Appraisal).where(
                Appraisal.person_id == "lilei", Appraisal.week == "2026-W48", Appraisal.current
            )
        )
        assert (row.status, row.version) == ("published", 2)
    assert run_job(held_week, "appraisal-held", later.replace(minute=30)).status == "skipped"


def test_publish_with_the_data_there_is_and_repoll(held_week, sim, db, clock):
    (card,) = _cards(sim, "zhangwei", "考核暂缓发布")
    repoll = next(a for a in card["actions"] if a["label"] == "重新拉取")
    (denied,) = sim.act("lilei", repoll["id"], repoll["value"])
    assert denied["title"] == "没有权限"
    (asked,) = sim.act("wangfang", repoll["id"], repoll["value"])  # an admin who got the card
    assert asked["title"] == "已请求重新拉取"
    with db() as s:
        assert s.get(SourceState, ("planloop", "repoll")) is not None
    tick = run_job(held_week, "appraisal-held", datetime(2026, 11, 27, 20, 15, tzinfo=SH))
    assert tick.detail["polled"] == {} and tick.detail["released"] == 0  # polled (no sources here)
    with db() as s:
        assert s.get(SourceState, ("planloop", "repoll")) is None
    publish = next(a for a in card["actions"] if a["label"] == "按现有数据发布")
    (done,) = sim.act("zhangwei", publish["id"], publish["value"])
    assert done["title"] == "已按现有数据发布" and "已发布 2 人" in done["text"]
    drain(held_week, sleep=lambda s: clock.advance(seconds=s))
    (mine,) = _cards(sim, "lilei", "考核结果")
    assert "张伟按现有数据发布，缺少数据的项计 0 分：支付转化率（shop）" in mine["text"]
    assert "支付转化率：本周没有数据，计 0 分" in mine["text"]
    with db() as s:
        row = s.scalar(
            select(Appraisal).where(
                Appraisal.person_id == "lilei", Appraisal.week == "2026-W48", Appraisal.current
            )
        )
        assert row.status == "published" and "missing_data" in row.rules["flags"]
