"""`planloop run JOB --at …`: the admin's explicit run, delivered before the command exits."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.cli.commands import main
from storage.db import transaction
from storage.models import JobRun, SimMessage
from tests import worker_seed as seed

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def config(tmp_path, engine):
    url = engine.url.render_as_string(hide_password=False)
    path = tmp_path / "planloop.toml"
    path.write_text(
        f'[server]\ndatabase_url = "{url}"\nsecret_key = "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA="\n'
        "[simulator]\nenabled = true\n"
    )
    return str(path)


def seed_lag(db, year: int = 2026) -> None:
    """李雷 at 5 % on the Wednesday of week 48 of ``year`` (2026-W48, or one far ahead of the clock)."""
    monday = datetime.fromisocalendar(year, 48, 1)
    at = monday.replace(hour=10, tzinfo=SH).astimezone(UTC)
    with transaction(db) as session:
        seed.team(session)
        seed.person(session, "zhangwei", "张伟")
        seed.person(session, "lilei", "李雷")
        seed.kpi(session, "conversion_rate", "支付转化率", metric="pay_conversion_rate")
        plan_items = [("优化详情页", "conversion_rate", "shop", "3.00", "5.00")]
        seed.plan(session, "lilei", f"{year}-W48", plan_items, at=at)
        tuesday = datetime.fromisocalendar(year, 48, 2).date().isoformat()
        seed.sample(session, "pay_conversion_rate", tuesday, "3.10", at=at)


@pytest.fixture
def lagging(db):
    seed_lag(db)


def titles(db, chat: str) -> list[str]:
    with db() as session:
        return [
            m.card["title"]
            for m in session.scalars(
                select(SimMessage).where(SimMessage.chat == chat).order_by(SimMessage.id)
            )
        ]


def test_run_lag_alerts_delivers_and_runs_again_when_asked(config, db, lagging, capsys) -> None:
    assert main(["--config", config, "run", "lag-alerts", "--at", "2026-11-25T09:05"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "lag-alerts 2026-11-25T09:05:00+08:00: done",
        "消息：入队 2 条，送达 2 条，0 条最终失败",
    ]
    assert titles(db, "lilei") == ["进度提醒：优化详情页"]
    assert titles(db, "zhangwei") == ["运营组 · 进度落后 1 项"]
    # the admin's second run of the same moment sends again (it is their explicit act)
    assert main(["--config", config, "run", "lag-alerts", "--at", "2026-11-25T09:05"]) == 0
    assert titles(db, "lilei") == ["进度提醒：优化详情页"] * 2
    with db() as session:
        assert session.scalars(select(JobRun.attempt).order_by(JobRun.attempt)).all() == [1, 2]


def test_run_as_of_a_future_time_still_delivers_now(config, db, capsys) -> None:
    seed_lag(db, 2036)  # years ahead of the real clock the command runs on
    assert main(["--config", config, "run", "lag-alerts", "--at", "2036-11-26T10:00+08:00"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "lag-alerts 2036-11-26T10:00:00+08:00: done",
        "消息：入队 2 条，送达 2 条，0 条最终失败",
    ]
    assert titles(db, "lilei") == ["进度提醒：优化详情页"]


def test_run_progress_reports_counts(config, db, lagging, capsys) -> None:
    assert main(["--config", config, "run", "progress", "--at", "2026-11-25T09:05"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "progress 2026-11-25T09:05:00+08:00: done",
        "消息：入队 0 条，送达 0 条，0 条最终失败",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "monday-sumary"], "unknown job 'monday-sumary'"),
        (["run", "lag-alerts", "--at", "next monday"], "--at：不是 ISO 日期时间"),
    ],
)
def test_run_usage_errors(config, argv: list[str], message: str, capsys) -> None:
    code = main(["--config", config, *argv])
    assert code in (1, 2)
    assert message in capsys.readouterr().err
