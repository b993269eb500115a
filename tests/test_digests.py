"""The start-of-week summary's numbers, the weekly appraisal job (once when scheduled, again when an
admin asks), `planloop run` for the three jobs, a team that fails, and English."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from appraisal.templates import spec_of
from bot.cli.commands import main
from bot.demo.run import seed_metrics
from bot.worker import jobs
from bot.worker.delivery import drain
from bot.worker.jobs import run_job
from handlers import digests
from handlers.digests import previous_workweek
from handlers.template_switches import switch_template
from handlers.workdays import Calendar
from storage.db import transaction
from storage.models import Appraisal, JobRun, OutboxMessage, Person, SimMessage, Template
from tests import worker_seed as seed

SH = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH).astimezone(UTC)


def fire(services, clock, when: str, job: str, **kw: object):  # noqa: ANN001, ANN201
    clock.set(local(when))
    result = run_job(services, job, local(when), **kw)
    drain(services, sleep=lambda s: clock.advance(seconds=s))
    return result


def delivered(db, chat: str) -> list[SimMessage]:
    with db() as s:
        # in the order they arrived: PostgreSQL returns an unordered select in any order
        query = select(SimMessage).where(SimMessage.chat == chat, SimMessage.sender == "bot")
        return list(s.scalars(query.order_by(SimMessage.id)))


@pytest.mark.parametrize(
    ("week", "days_off", "expected"),
    [
        ("2026-W48", [], "2026-W47"),
        ("2026-W41", [], "2026-W40"),  # 国庆: W40 still had Mon–Wed
        ("2026-W48", ["2026-W47"], "2026-W46"),  # a whole week off is skipped
        ("2026-W48", ["2026-W47", "2026-W46", "2026-W45", "2026-W44"], "2026-W47"),  # looks back 4 at most
    ],
)
def test_last_week_is_the_latest_week_with_a_workday(week: str, days_off: list[str], expected: str) -> None:
    from handlers.workdays import week_dates

    overrides = {d: False for w in days_off for d in week_dates(w)}
    assert previous_workweek(week, Calendar(overrides)) == expected


# ---------------------------------------------------------------- the summary's numbers


def appraisal(
    s, person: str, week: str, score: str, grade: str, *, version: int = 1, current: bool = True
) -> None:
    s.add(
        Appraisal(
            person_id=person,
            team_id="ops",
            week=week,
            version=version,
            current=current,
            template_id="ops-default",
            template_reason="运营默认模板",
            score=D(score),
            grade=grade,
            items=[],
            flags=[],
            version_reason="",
            created_at=local("2026-11-20 20:00"),
        )
    )


@pytest.fixture
def last_week(db, clock) -> None:
    """运营组, W47 behind us: plans, reports, and published results for W47 and W46."""
    at = local("2026-11-16 10:00")
    with transaction(db) as s:
        seed.team(s)
        for pid, name in [
            ("zhangwei", "张伟"),
            ("lilei", "李雷"),
            ("hanmeimei", "韩梅梅"),
            ("chenjing", "陈静"),
        ]:
            seed.person(s, pid, name)
        seed.person(s, "liuyang", "刘洋")
        seed.person(s, "zhaoqiang", "赵强", hire_date=date(2026, 11, 30))
        seed.kpi(s, "conversion_rate", "支付转化率", metric="pay_conversion_rate")
        seed.kpi(s, "complaint_rate", "投诉率", direction="down")
        for tid, name in [("ops-default", "运营默认模板"), ("ops-push", "冲刺模板")]:
            entry = {"id": tid, "name": name, "role": "operations", "weights": {"conversion_rate": 100}}
            s.add(Template(id=tid, name=name, role="operations", spec=spec_of(entry)))
        seed.plan(
            s,
            "lilei",
            "2026-W47",
            [
                ("优化详情页", "conversion_rate", "shop", "3.00", "5.00"),  # 4.00 on Friday: 50 %, lagging
                ("差评回访", "complaint_rate", "shop", "1.20", "1.00"),  # 1.00: done
            ],
            at=at,
        )
        seed.plan(
            s, "hanmeimei", "2026-W47", [("会场转化", "conversion_rate", "s2", "3.00", "4.00")], at=at
        )  # 90 %
        seed.plan(
            s, "liuyang", "2026-W47", [("新品测款", "conversion_rate", "s3", "3.00", "4.00")], at=at
        )  # no data
        seed.sample(s, "pay_conversion_rate", "2026-11-20", "4.00", at=at)
        seed.sample(s, "complaint_rate", "2026-11-21", "1.00", at=at)
        seed.sample(s, "pay_conversion_rate", "2026-11-22", "3.90", scope="s2", at=at)
        seed.sample(
            s, "pay_conversion_rate", "2026-11-24", "9.00", scope="s2", at=at
        )  # next week: not counted
        appraisal(s, "lilei", "2026-W47", "95.5", "A")
        appraisal(s, "hanmeimei", "2026-W47", "60", "C")
        appraisal(s, "chenjing", "2026-W47", "0", "D")
        appraisal(s, "liuyang", "2026-W47", "50", "C", current=False)
        appraisal(s, "liuyang", "2026-W47", "88", "A", version=2)
        appraisal(s, "lilei", "2026-W46", "72", "B")
        appraisal(s, "hanmeimei", "2026-W46", "60", "C")
        appraisal(s, "chenjing", "2026-W46", "80", "B")
        # this week so far: 李雷 filed early, 韩梅梅 is on leave until Tuesday; a manual switch from today
        seed.plan(
            s, "lilei", "2026-W48", [("继续优化", "conversion_rate", "shop", "4.00", "5.00")], at=clock()
        )
        s.get(Person, "hanmeimei").on_leave_until = date(2026, 11, 24)
        s.flush()
        switch_template(
            s, "ops", "ops-push", by="zhangwei", now=local("2026-11-23 08:00"), until=date(2026, 11, 29)
        )


def test_the_summarys_numbers(services, db, clock, last_week) -> None:
    result = fire(services, clock, "2026-11-23 09:00", "monday-summary")
    assert (result.status, result.enqueued) == ("done", 2)
    (leader,) = delivered(db, "zhangwei")
    assert leader.text.splitlines() == [
        "运营组 · 周初汇总 · 2026-W48（组长版）",
        "上周：2026-W47（11-16–11-22）",
        "平均完成度：83 %",  # (75 % + 90 %) / 2; 刘洋 has no data and 陈静 no plan
        "平均得分：60.9",  # (95.5 + 60 + 0 + 88) / 4 = 60.875, the current versions only
        "等级分布：S 0 · A 2 · B 0 · C 1 · D 1",
        "本周已提交计划：1/3 人",  # 李雷 of 李雷, 陈静, 刘洋 (韩梅梅 on leave, 赵强 not hired yet)
        "成员 | 完成度 | 落后 | 得分 | 等级 | 较前一周",
        "李雷 | 75 % | 1 | 95.5 | A | +23.5",
        "刘洋 | 暂无数据 | — | 88.0 | A | —",
        "韩梅梅 | 90 % | — | 60.0 | C | ±0.0",
        "陈静 | 未提交计划 | — | 0.0 | D | −80.0",
        "变化最大：陈静 80.0 → 0.0（−80.0）、李雷 72.0 → 95.5（+23.5）",
        "上周仍落后的事项（1）",
        "成员 | 落后 | 完成度",
        "李雷 | 优化详情页（支付转化率） | 50 %",
        "本周未提交计划：陈静、刘洋",
        "请假：韩梅梅",
        "本周考核模板",
        "· 冲刺模板（张伟 手动切换，11-23–11-29）替代 运营默认模板（4 人）（本周起）",
        "这张卡片只发给组长。完成度只计有数据的事项；得分是上周发布的最新版本。",
        "<查看团队进度>",
    ]
    (group,) = delivered(db, "ops")
    assert group.text.splitlines() == [
        "运营组 · 周初汇总 · 2026-W48",
        "上周：2026-W47（11-16–11-22）",
        "平均完成度：83 %",
        "平均得分：60.9",
        "等级分布：S 0 · A 2 · B 0 · C 1 · D 1",
        "本周已提交计划：1/3 人",
        "上周仍落后的事项（1）",
        "· 李雷：优化详情页（支付转化率）",
        "本周考核模板",
        "· 冲刺模板（张伟 手动切换，11-23–11-29）替代 运营默认模板（4 人）（本周起）",
        "个人得分只私信发给本人和组长；群里只有团队整体数据和落后提醒。",
    ]


def test_the_summary_in_english(services, db, clock, last_week) -> None:
    services.settings = replace(services.settings, locale="en-US")
    fire(services, clock, "2026-11-23 09:00", "monday-summary")
    (leader,) = delivered(db, "zhangwei")
    lines = leader.text.splitlines()
    assert lines[:3] == [
        "运营组 · Monday summary · 2026-W48 (leader)",
        "Last week：2026-W47 (11-16–11-22)",
        "Average completion：83 %",
    ]
    assert "刘洋 | no data | — | 88.0 | A | —" in lines
    assert "Biggest movers: 陈静 80.0 → 0.0 (−80.0), 李雷 72.0 → 95.5 (+23.5)" in lines
    assert "No plan yet this week：陈静, 刘洋" in lines
    (group,) = delivered(db, "ops")
    assert group.text.splitlines()[0] == "运营组 · Monday summary · 2026-W48"
    assert "· 李雷: 优化详情页 (支付转化率)" in group.text


def test_the_summary_goes_on_the_first_workday_only_and_once(services, db, clock, last_week) -> None:
    for day in ("2026-11-22", "2026-11-24"):  # Sunday, Tuesday
        assert fire(services, clock, f"{day} 09:00", "monday-summary").status == "skipped"
    assert fire(services, clock, "2026-11-23 09:00", "monday-summary").enqueued == 2
    assert fire(services, clock, "2026-11-23 09:00", "monday-summary").status == "skipped"  # claimed
    assert jobs.monday_summary(services, local("2026-11-23 09:00")).enqueued == 0  # a retry: deduplicated
    assert [len(delivered(db, c)) for c in ("zhangwei", "ops")] == [1, 1]
    assert fire(services, clock, "2026-11-23 09:00", "monday-summary", explicit=True).enqueued == 2
    assert [len(delivered(db, c)) for c in ("zhangwei", "ops")] == [2, 2]


def test_a_failing_team_does_not_stop_the_others_and_is_recovered(
    services, db, clock, demo_team, monkeypatch
) -> None:
    real = digests.send_monday_summary
    calls = {"ops": 0}

    def flaky(session, team_id, *args, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        if team_id == "ops" and calls["ops"] == 0:
            calls["ops"] += 1
            raise ConnectionError("database went away")
        return real(session, team_id, *args, **kw)

    monkeypatch.setattr(digests, "send_monday_summary", flaky)
    result = fire(services, clock, "2026-11-23 09:00", "monday-summary")
    assert result.status == "failed" and "ops: ConnectionError" in result.reason
    assert (len(delivered(db, "service")), len(delivered(db, "ops"))) == (1, 0)  # the other team went out
    clock.set(local("2026-11-23 09:40"))  # the recover job takes the failed run over
    assert jobs.recover(services, clock()).detail["statuses"] == ["done"]
    drain(services, sleep=lambda s: clock.advance(seconds=s))
    assert (len(delivered(db, "service")), len(delivered(db, "ops"))) == (1, 1)  # nothing twice
    assert (len(delivered(db, "wangfang")), len(delivered(db, "zhangwei"))) == (1, 1)


# ---------------------------------------------------------------- the weekly appraisal


@pytest.fixture
def week_of_data(db, clock, demo_team) -> None:
    with transaction(db) as s:
        seed_metrics(s, date(2026, 11, 30), clock())  # this week's reports too


def appraisal_counts(db) -> tuple[int, int]:
    with db() as s:
        versions = s.scalar(select(func.count()).select_from(Appraisal).where(Appraisal.week == "2026-W48"))
        current = s.scalar(
            select(func.count()).where(Appraisal.week == "2026-W48", Appraisal.current.is_(True))
        )
    return versions, current


def test_the_appraisal_runs_on_the_last_workday_once_and_again_when_asked(
    services, db, clock, week_of_data
) -> None:
    # ops: 李雷, 韩梅梅, 陈静, 刘洋, 赵强 (the leader filed nothing); service: 孙丽, 周敏, 吴军, 郑刚, 冯涛
    assert fire(services, clock, "2026-11-26 20:00", "appraisal").status == "skipped"  # Thursday
    result = fire(services, clock, "2026-11-27 20:00", "appraisal")
    assert (result.status, result.enqueued) == ("done", 10 + 2)
    assert appraisal_counts(db) == (10, 10)
    for person in ("lilei", "hanmeimei", "chenjing", "liuyang", "zhaoqiang", "sunli", "zhoumin", "fengtao"):
        (card,) = delivered(db, person)
        assert card.card["title"].startswith("2026-W48 考核结果 · ")
    (table,) = delivered(db, "zhangwei")
    assert table.card["title"] == "运营设计组 · 2026-W48 考核汇总"
    assert table.text.splitlines()[1] == "5 人的考核结果已于 11-27 20:00 发布，每人已私信收到自己的计算说明。"
    assert delivered(db, "ops") == [] and delivered(db, "service") == []  # never the group
    # a retry of the scheduled run (recover) publishes nothing again
    assert jobs.appraisal(services, local("2026-11-27 20:00")).enqueued == 0
    assert appraisal_counts(db) == (10, 10)
    # the admin's `planloop run appraisal`: new versions, with the reason, sent again
    again = fire(services, clock, "2026-11-27 20:00", "appraisal", explicit=True)
    assert again.enqueued == 12 and appraisal_counts(db) == (20, 10)
    with db() as s:
        row = s.scalars(
            select(Appraisal).where(Appraisal.person_id == "lilei", Appraisal.current.is_(True))
        ).one()
    assert (row.version, row.version_reason.split("；")[0]) == (2, "管理员重新运行（planloop run）")
    assert [m.card["title"] for m in delivered(db, "zhangwei")] == ["运营设计组 · 2026-W48 考核汇总"] * 2
    assert "（第 2 版）" in delivered(db, "zhangwei")[1].text


def test_an_unreachable_leader_still_lets_people_have_their_cards(services, db, clock, week_of_data) -> None:
    with transaction(db) as s:
        for identity in s.get(Person, "zhangwei").identities:
            s.delete(identity)
    result = fire(services, clock, "2026-11-27 20:00", "appraisal")
    assert result.enqueued == 10 + 1  # ten cards, wangfang's table; zhangwei's table has nowhere to go
    assert len(delivered(db, "lilei")) == 1 and len(delivered(db, "wangfang")) == 1


# ---------------------------------------------------------------- `planloop run JOB --at`


@pytest.fixture
def config(tmp_path, engine) -> str:
    url = engine.url.render_as_string(hide_password=False)
    path = tmp_path / "planloop.toml"
    path.write_text(
        f'[server]\ndatabase_url = "{url}"\nsecret_key = "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA="\n'
        'public_url = "http://planloop.test"\n[simulator]\nenabled = true\n'
    )
    return str(path)


@pytest.mark.parametrize(
    ("job", "at", "chats"),
    [
        # both leaders and both group chats
        ("monday-summary", "2026-11-23T09:00", {"zhangwei": 1, "ops": 1, "wangfang": 1, "service": 1}),
        # every member without a plan (nobody filed), never a leader
        ("reminders", "2026-11-23T10:00", {"lilei": 1, "zhoumin": 1, "zhangwei": 0, "wangfang": 0}),
        # the lists of who has not planned
        ("reminders", "2026-11-23T14:00", {"zhangwei": 1, "wangfang": 1, "lilei": 0}),
        # everyone's card and the two tables
        ("appraisal", "2026-11-27T20:00", {"lilei": 1, "zhoumin": 1, "zhangwei": 1, "wangfang": 1, "ops": 0}),
    ],
)
def test_planloop_run_delivers_and_sends_again(
    config, db, week_of_data, capsys, job: str, at: str, chats: dict[str, int]
) -> None:
    for times in (1, 2):  # the admin's explicit act: each run sends its messages
        assert main(["--config", config, "run", job, "--at", at]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == f"{job} {at}:00+08:00: done"
        queued = int(out[1].split()[1])
        assert out[1] == f"消息：入队 {queued} 条，送达 {queued} 条，0 条最终失败" and queued > 0
        for chat, n in chats.items():
            assert len(delivered(db, chat)) == n * times, (chat, times)
    with db() as s:
        assert s.scalars(select(JobRun.attempt).where(JobRun.job == job).order_by(JobRun.attempt)).all() == [
            1,
            2,
        ]
        assert s.scalar(select(func.count()).where(OutboxMessage.status != "sent")) == 0


def test_planloop_run_on_a_day_off_sends_nothing(config, db, week_of_data, capsys) -> None:
    assert main(["--config", config, "run", "monday-summary", "--at", "2026-11-28T09:00"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "monday-summary 2026-11-28T09:00:00+08:00: skipped (no team is due; "
        "ops: due 2026-11-30, the first workday of 2026-W49; service: due 2026-11-30, the first workday of 2026-W49)",
        "消息：入队 0 条，送达 0 条，0 条最终失败",
    ]


def test_dates_follow_the_clock_not_the_run(services, db, clock, week_of_data) -> None:
    """A run "as of" Friday 20:00 that happens on Saturday (a catch-up) still appraises W48, and the
    leader's table says when it really went out."""
    clock.set(local("2026-11-28 11:00"))
    result = run_job(services, "appraisal", local("2026-11-27 20:00"))
    assert result.enqueued == 12
    drain(services, sleep=lambda s: clock.advance(seconds=s))
    (table,) = delivered(db, "wangfang")
    assert "5 人的考核结果已于 11-28 11:00 发布" in table.text
    assert clock() - local("2026-11-28 11:00") < timedelta(minutes=1)
