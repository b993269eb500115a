"""A frozen clock walks whole weeks: plans filed, reports arriving each morning, the scheduler's
lag-alert slots firing hourly, the relay delivering through the simulator. We count what
each chat received, and when."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.worker.delivery import drain
from bot.worker.scheduler import fire_due
from storage.db import transaction
from storage.models import OutboxMessage, Person, PlanItem, SimMessage
from tests import worker_seed as seed

SH = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH).astimezone(UTC)


def days(first: str, last: str) -> list[str]:
    d, end = date.fromisoformat(first), date.fromisoformat(last)
    out = []
    while d <= end:
        out.append(d.isoformat())
        d += timedelta(days=1)
    return out


def team_of_three(session) -> None:
    seed.team(session)
    seed.person(session, "zhangwei", "张伟")
    seed.person(session, "lilei", "李雷")
    seed.person(session, "hanmeimei", "韩梅梅")
    seed.kpi(session, "conversion_rate", "支付转化率", metric="pay_conversion_rate")
    seed.kpi(session, "complaint_rate", "投诉率", direction="down")


def live_day(services, clock, day: str, reports: dict[str, str]) -> None:
    """One day: at 08:00 yesterday's reports arrive; the day's lag-alert slots fire; the relay delivers."""
    yesterday = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
    clock.set(local(f"{day} 08:00"))
    with transaction(services.sessions) as session:
        for metric, value in reports.items():
            seed.sample(session, metric, yesterday, value, at=clock())
    fire_due(services, local(f"{day} 00:00"), local(f"{day} 23:59"), only=("lag-alerts",))
    clock.set(local(f"{day} 23:59"))
    drain(services, sleep=lambda s: clock.advance(seconds=s))


def delivered(services) -> list[tuple[str, str, str]]:
    """(to, card title, when enqueued in local time) of everything sent, in order."""
    with services.sessions() as session:
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.target))
        out = []
        for row in rows:
            assert row.status == "sent", row.last_error
            out.append((row.target, row.card["title"], row.created_at.astimezone(SH).strftime("%m-%d %H:%M")))
        return out


def transcript(services, chat: str) -> list[str]:
    with services.sessions() as session:
        return [
            m.card["title"]
            for m in session.scalars(
                select(SimMessage).where(SimMessage.chat == chat).order_by(SimMessage.id)
            )
        ]


W48_REPORTS = {  # reports that arrive on the morning of each day (for the day before)
    "2026-11-24": {"pay_conversion_rate": "3.10", "complaint_rate": "1.15"},
    "2026-11-25": {"pay_conversion_rate": "3.20", "complaint_rate": "1.10"},  # 10 % vs a 40 % pace: lag
    "2026-11-26": {"pay_conversion_rate": "4.00", "complaint_rate": "1.05"},  # 50 % vs 60 %: fine
    "2026-11-27": {"pay_conversion_rate": "4.60", "complaint_rate": "1.02"},  # 80 % vs 80 %
    "2026-11-28": {"pay_conversion_rate": "4.70", "complaint_rate": "1.01"},
}


def file_w48(services, clock) -> int:
    clock.set(local("2026-11-23 10:00"))
    with transaction(services.sessions) as session:
        team_of_three(session)
        plan = seed.plan(
            session,
            "lilei",
            "2026-W48",
            [("优化详情页", "conversion_rate", "shop", "3.00", "5.00")],
            at=clock(),
        )
        seed.plan(
            session,
            "hanmeimei",
            "2026-W48",
            [("差评回访", "complaint_rate", "shop", "1.20", "1.00")],
            at=clock(),
        )
        return plan.items[0].id


def test_a_normal_week(services, clock) -> None:
    file_w48(services, clock)
    for day in days("2026-11-23", "2026-11-29"):
        live_day(services, clock, day, W48_REPORTS.get(day, {}))
    assert delivered(services) == [
        ("lilei", "进度提醒：优化详情页", "11-25 09:05"),  # Wednesday, first slot: once, not hourly
        ("zhangwei", "运营组 · 进度落后 1 项", "11-25 09:05"),  # one folded card for the team
    ]
    assert transcript(services, "lilei") == ["进度提醒：优化详情页"]
    assert transcript(services, "zhangwei") == ["运营组 · 进度落后 1 项"]
    assert transcript(services, "hanmeimei") == [] and transcript(services, "ops") == []


def test_snoozes_silence_the_employee_then_the_leader(services, clock, client) -> None:
    item_id = file_w48(services, clock)
    stuck = {
        d: {"pay_conversion_rate": "3.20", "complaint_rate": "1.02"} for d in days("2026-11-24", "2026-11-28")
    }
    live_day(services, clock, "2026-11-23", {})
    live_day(services, clock, "2026-11-24", stuck["2026-11-24"])
    live_day(services, clock, "2026-11-25", stuck["2026-11-25"])
    resp = client.post(
        "/sim/api/act",
        json={"as": "lilei", "chat": "dm", "action": "progress.snooze", "values": {"item": str(item_id)}},
    )
    assert resp.get_json()["replies"][0]["title"] == "本周不再提醒"
    live_day(services, clock, "2026-11-26", stuck["2026-11-26"])
    resp = client.post(
        "/sim/api/act",
        json={"as": "zhangwei", "chat": "dm", "action": "progress.team.snooze", "values": {"team": "ops"}},
    )
    assert resp.get_json()["replies"][0]["title"] == "本周不再汇总"
    live_day(services, clock, "2026-11-27", stuck["2026-11-27"])
    assert delivered(services) == [
        ("lilei", "进度提醒：优化详情页", "11-25 09:05"),
        ("zhangwei", "运营组 · 进度落后 1 项", "11-25 09:05"),
        ("zhangwei", "运营组 · 进度落后 1 项", "11-26 09:05"),  # lilei snoozed; the leader still hears
    ]


# 2026 国庆: 10-01 (Thu) to 10-07 off; 09-20 (Sun) and 10-10 (Sat) are 调休 workdays.
# W40 (09-28 – 10-04) has three workdays, Mon–Wed; W41 (10-05 – 10-11) has Thu, Fri and the Saturday.


def golden_week(services, clock, overrides: dict[str, bool]) -> None:
    clock.set(local("2026-09-28 10:00"))
    with transaction(services.sessions) as session:
        team_of_three(session)
        for day, workday in overrides.items():
            seed.calendar_day(session, day, workday, "公司安排")
        seed.plan(
            session,
            "lilei",
            "2026-W40",
            [("节前冲量", "conversion_rate", "shop", "3.00", "5.00")],
            at=clock(),
        )
    conversion = {"2026-09-29": "3.05", "2026-09-30": "3.10", "2026-10-09": "3.20", "2026-10-10": "3.25"}
    for day in days("2026-09-28", "2026-10-11"):
        if day == "2026-10-08":  # the first workday after the holiday: W41's plan
            clock.set(local("2026-10-08 08:30"))
            with transaction(services.sessions) as session:
                seed.plan(
                    session,
                    "lilei",
                    "2026-W41",
                    [("节后恢复", "conversion_rate", "shop", "3.15", "5.15")],
                    at=clock(),
                )
        # reports keep arriving through the holiday; the level stays at 3.15 until 10-08
        reports = {} if day == "2026-09-28" else {"pay_conversion_rate": conversion.get(day, "3.15")}
        live_day(services, clock, day, reports)


@pytest.mark.parametrize(
    ("overrides", "alert_days"),
    [
        # Wed 09-30: 2 of 3 workdays over, 5 % done → lag. Nothing during the holiday although
        # W40 still lags. Sat 10-10 (调休): Thu and Fri over, 5 % done → lag. Sunday: nothing.
        ({}, ["09-30 09:05", "10-10 09:05"]),
        # a company that keeps 10-10 off: W41 has two workdays and no day after them to alert on
        ({"2026-10-10": False}, ["09-30 09:05"]),
    ],
)
def test_national_day_and_the_make_up_saturday(
    services, clock, overrides: dict[str, bool], alert_days: list[str]
) -> None:
    golden_week(services, clock, overrides)
    got = delivered(services)
    assert [when for to, _, when in got if to == "lilei"] == alert_days
    assert [when for to, _, when in got if to == "zhangwei"] == alert_days
    assert {title for to, title, _ in got if to == "lilei"} <= {"进度提醒：节前冲量", "进度提醒：节后恢复"}


def test_no_alert_outside_working_hours_or_for_people_on_leave(services, clock) -> None:
    file_w48(services, clock)
    with transaction(services.sessions) as session:
        session.get(Person, "lilei").on_leave_until = date(2026, 11, 25)
        assert session.scalar(select(PlanItem.id)) is not None
    for day in days("2026-11-23", "2026-11-26"):
        live_day(services, clock, day, {"pay_conversion_rate": "3.05", "complaint_rate": "1.19"})
    # lilei is back on Thursday: alerted then; hanmeimei lags from Wednesday
    got = delivered(services)
    assert [(to, when) for to, _, when in got if to != "zhangwei"] == [
        ("hanmeimei", "11-25 09:05"),
        ("hanmeimei", "11-26 09:05"),
        ("lilei", "11-26 09:05"),
    ]
    assert [(title, when) for to, title, when in got if to == "zhangwei"] == [
        ("运营组 · 进度落后 1 项", "11-25 09:05"),
        ("运营组 · 进度落后 2 项", "11-26 09:05"),
    ]
