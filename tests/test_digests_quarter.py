"""A simulated quarter on the demo team: 13 ISO weeks (2026-W37 … W49) with 中秋 and 国庆, the 调休
Sunday 09-20 and Saturday 10-10, and the 双11 period (10-20–11-11) switching the operations
template. People file plans (some early, some late, some never), go on leave, pause reminders;
a leader pauses the whole team over 国庆, nudges, and marks a leave with a button.

Time is driven by the frozen clock through every slot the scheduler defines for the three
digest jobs; the relay delivers through the simulator after each slot; what each chat got is
read back from ``GET /sim/api/messages``. The expectation is computed here, from the scenario
and an independent statement of the 2026 calendar, never from the code under test.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.demo.run import seed_metrics
from bot.worker.delivery import drain
from bot.worker.jobs import run_job
from bot.worker.scheduler import fire_times, slots
from handlers import workdays
from storage.db import transaction
from storage.models import OutboxMessage

SH = ZoneInfo("Asia/Shanghai")
JOBS = ("monday-summary", "reminders", "appraisal")
WEEKS = [f"2026-W{n:02d}" for n in range(37, 50)]  # 13 weeks: 09-07 … 12-06

# The State Council's 2026 schedule (国办发明电〔2025〕7号) for these weeks, stated on its own:
# 中秋 09-25 (Fri) off; 国庆 10-01 – 10-07 off; 09-20 (Sun) and 10-10 (Sat) are 调休 workdays.
HOLIDAYS = {date(2026, 9, 25)} | {date(2026, 10, d) for d in range(1, 8)}
MAKE_UP = {date(2026, 9, 20), date(2026, 10, 10)}


def works(day: date) -> bool:
    return day in MAKE_UP or (day.weekday() < 5 and day not in HOLIDAYS)


def week_days(week: str) -> list[date]:
    year, number = int(week[:4]), int(week[6:])
    monday = date.fromisocalendar(year, number, 1)
    return [monday + timedelta(days=n) for n in range(7)]


def first_workday(week: str) -> date:
    return next(d for d in week_days(week) if works(d))


def last_workday(week: str) -> date:
    return [d for d in week_days(week) if works(d)][-1]


def at(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=SH)


# ---------------------------------------------------------------- the scenario

LEADERS = {"ops": "zhangwei", "service": "wangfang"}
MEMBERS = {
    "ops": ["lilei", "hanmeimei", "zhaoqiang", "chenjing", "liuyang"],
    "service": ["sunli", "zhoumin", "wujun", "zhenggang", "fengtao"],
}
TEAM_OF = {p: t for t, people in MEMBERS.items() for p in people} | {v: k for k, v in LEADERS.items()}
HIRED = {"zhaoqiang": date(2026, 10, 12), "zhoumin": date(2026, 11, 2)}  # examples/team.toml
ITEM = {  # one plan line per role, as a person would type it
    "operations": "优化详情页首屏 支付转化率 +2pp",
    "design": "主图点击优化 详情页点击率 +0.3pp",
    "customer_service": "差评回访 投诉率 -10%",
    "warehouse": "打包流程优化 24小时发货率 +1pp",
}
ROLE = {
    "zhangwei": "operations",
    "lilei": "operations",
    "hanmeimei": "operations",
    "zhaoqiang": "operations",
    "chenjing": "design",
    "liuyang": "design",
    "sunli": "customer_service",
    "zhoumin": "customer_service",
    "wujun": "customer_service",
    "wangfang": "customer_service",
    "zhenggang": "warehouse",
    "fengtao": "warehouse",
}


def filing(person: str, week: str) -> str | None:
    """When ``person`` files ``week``'s plan on its plan day (local HH:MM), or None: not at all."""
    n = int(week[6:])
    hired = HIRED.get(person)
    if hired is not None and hired > first_workday(week):
        return None
    return {
        "chenjing": "08:30",  # before the summary
        "sunli": "08:30",
        "lilei": "09:30",  # after the summary, before the reminder
        "hanmeimei": None if week == "2026-W43" else "11:00",  # reminded, files before the deadline
        "wujun": "11:00",
        "zhaoqiang": "15:00",  # after the deadline (late)
        "liuyang": "09:45" if n % 2 == 0 and week != "2026-W46" else None,  # even weeks; on leave in W46
        "zhangwei": "08:45" if week == "2026-W45" else None,  # a leader who files once is appraised once
    }.get(person)


@dataclass(frozen=True)
class Say:
    when: datetime
    who: str
    text: str
    expect: str  # the reply's title starts with this


# Leave, pauses and the leader's buttons, at these local moments.
COMMANDS = [
    Say(at(date(2026, 9, 18), "16:00"), "fengtao", "暂停提醒", "计划提醒"),
    Say(at(date(2026, 9, 28), "09:10"), "wangfang", "暂停团队提醒 至 10-11", "团队计划提醒"),
    Say(at(date(2026, 10, 16), "17:00"), "hanmeimei", "请假 至 10-23", "请假"),
    Say(at(date(2026, 10, 30), "16:00"), "fengtao", "恢复提醒", "计划提醒"),
    Say(at(date(2026, 11, 6), "17:00"), "zhangwei", "请假 liuyang 至 11-13", "请假"),
]
NUDGES = [at(date(2026, 10, 26), "14:10"), at(date(2026, 10, 26), "14:20")]  # the second sends nothing
LEAVE_BUTTON = at(date(2026, 11, 16), "14:30")  # zhangwei: "刘洋本周请假" on W47's list
PAUSED_REMINDERS = {"fengtao": (at(date(2026, 9, 18), "16:00"), at(date(2026, 10, 30), "16:00"))}
TEAM_PAUSE = {"service": (at(date(2026, 9, 28), "09:10"), date(2026, 10, 11))}
LEAVES = {  # person → [(recorded at, until inclusive)]
    "hanmeimei": [(at(date(2026, 10, 16), "17:00"), date(2026, 10, 23))],
    "liuyang": [
        (at(date(2026, 11, 6), "17:00"), date(2026, 11, 13)),
        (LEAVE_BUTTON, date(2026, 11, 22)),
    ],
}


def on_leave(person: str, moment: datetime) -> bool:
    return any(recorded <= moment and moment.date() <= until for recorded, until in LEAVES.get(person, []))


def away_all_week(person: str, run: datetime, sunday: date) -> bool:
    """On leave every day of the week, Monday (a leave starts the day it is recorded) to Sunday, as
    recorded when the appraisal runs (issue 16: only leave that overlapped the week counts)."""
    monday = sunday - timedelta(days=6)
    return any(
        recorded <= run and recorded.date() <= monday and until >= sunday
        for recorded, until in LEAVES.get(person, [])
    )


def paused(person: str, moment: datetime) -> bool:
    span = PAUSED_REMINDERS.get(person)
    return span is not None and span[0] <= moment < span[1]


def team_paused(team: str, moment: datetime) -> bool:
    span = TEAM_PAUSE.get(team)
    return span is not None and span[0] <= moment and moment.date() <= span[1]


def filed_before(person: str, week: str, hhmm: str) -> bool:
    when = filing(person, week)
    return when is not None and when < hhmm


# ---------------------------------------------------------------- the expectation


def expected() -> tuple[Counter, dict[tuple[str, str, str], str], dict[tuple[str, str], set[str]]]:
    """(messages per (chat, kind, week), local delivery time per (chat, kind, week), names on the
    leaders' lists per (team, week) for the summary ("plan") and the deadline ("missing"))."""
    count: Counter = Counter()
    when: dict[tuple[str, str, str], str] = {}
    names: dict[tuple[str, str], set[str]] = {}

    def add(chat: str, kind: str, week: str, moment: datetime) -> None:
        count[(chat, kind, week)] += 1
        when[(chat, kind, week)] = moment.strftime("%m-%d %H:%M")

    for week in WEEKS:
        plan_day, last_day, sunday = first_workday(week), last_workday(week), week_days(week)[-1]
        for team, members in MEMBERS.items():
            leader = LEADERS[team]
            # the start-of-week summary: the leader and the group chat, 09:00
            nine = at(plan_day, "09:00")
            add(leader, "summary-leader", week, nine)
            add(team, "summary-chat", week, nine)
            hired = [p for p in members if HIRED.get(p, date.min) <= plan_day]
            names[(team, f"plan {week}")] = {
                p for p in hired if not on_leave(p, nine) and not filed_before(p, week, "09:00")
            }
            # reminders at 10:00 on the plan day; the leader's list at 14:00
            ten, two = at(plan_day, "10:00"), at(plan_day, "14:00")
            if not team_paused(team, ten):
                for p in hired:
                    if not on_leave(p, ten) and not paused(p, ten) and not filed_before(p, week, "10:00"):
                        add(p, "reminder", week, ten)
                missing = {p for p in hired if not on_leave(p, two) and not filed_before(p, week, "14:00")}
                names[(team, f"missing {week}")] = missing
                if missing:
                    add(leader, "missing", week, two)
            # the appraisal on the last workday at 20:00: everyone hired by Sunday who planned or
            # was not on leave through Sunday; a leader only when they planned
            eight = at(last_day, "20:00")
            appraised = [
                p
                for p in [*members, leader]
                if HIRED.get(p, date.min) <= sunday
                and (filing(p, week) is not None or (p != leader and not away_all_week(p, eight, sunday)))
            ]
            for p in appraised:
                add(p, "appraisal", week, eight)
            names[(team, f"appraised {week}")] = set(appraised)
            if appraised:
                add(leader, "table", week, eight)
    # the nudge: W44's list shows zhaoqiang (files at 15:00) as the only one still remindable
    add("zhaoqiang", "nudge", "2026-W44", NUDGES[0])
    return count, when, names


# ---------------------------------------------------------------- reading the transcript

KINDS = [
    ("nudge", re.compile(r"^张伟提醒：填写 (\d{4}-W\d{2}) 周计划$")),
    ("reminder", re.compile(r"^提醒：填写 (\d{4}-W\d{2}) 周计划$")),
    ("missing", re.compile(r"^.+ · (\d{4}-W\d{2}) 未提交计划 \d+ 人$")),
    ("summary-leader", re.compile(r"^.+ · 周初汇总 · (\d{4}-W\d{2})（组长版）$")),
    ("summary-chat", re.compile(r"^.+ · 周初汇总 · (\d{4}-W\d{2})$")),
    ("table", re.compile(r"^.+ · (\d{4}-W\d{2}) 考核汇总$")),
    ("appraisal", re.compile(r"^(\d{4}-W\d{2}) 考核结果 · .+ · [\d.]+ 分 [SABCD]$")),
]
REPLIES = ("本周计划已提交", "请假", "计划提醒", "团队计划提醒", "再次提醒")  # answers to what people said


def kind_of(title: str) -> tuple[str, str] | None:
    for kind, pattern in KINDS:
        m = pattern.match(title)
        if m:
            return kind, m.group(1)
    return None


def field(text: str, label: str) -> set[str]:
    line = next(x for x in text.splitlines() if x.startswith(f"{label}："))
    value = line.split("：", 1)[1]
    return set() if value == "无" else set(value.split("、"))


NAMES = {
    "zhangwei": "张伟",
    "lilei": "李雷",
    "hanmeimei": "韩梅梅",
    "zhaoqiang": "赵强",
    "chenjing": "陈静",
    "liuyang": "刘洋",
    "wangfang": "王芳",
    "sunli": "孙丽",
    "zhoumin": "周敏",
    "wujun": "吴军",
    "zhenggang": "郑刚",
    "fengtao": "冯涛",
}


# ---------------------------------------------------------------- driving the quarter


def seed_quarter_metrics(db, clock) -> None:
    """The demo's deterministic daily reports for every day of the quarter (and the weeks around it)."""
    with transaction(db) as session:
        for today in (date(2026, 9, 28), date(2026, 10, 26), date(2026, 11, 23), date(2026, 12, 21)):
            seed_metrics(session, today, clock())


def timeline(services) -> list[tuple[datetime, str, object]]:
    start, end = at(date(2026, 9, 6), "23:59"), at(date(2026, 12, 6), "23:59")
    events: list[tuple[datetime, str, object]] = []
    for slot in slots(services):
        if slot.job in JOBS:
            events += [(t.astimezone(SH), "job", slot.job) for t in fire_times(slot.trigger, start, end)]
    for week in WEEKS:
        for person in ROLE:
            hhmm = filing(person, week)
            if hhmm is not None:
                events.append((at(first_workday(week), hhmm), "file", (person, week)))
    events += [(c.when, "say", c) for c in COMMANDS]
    events += [(t, "nudge", None) for t in NUDGES]
    events.append((LEAVE_BUTTON, "leave-button", None))
    # at one moment: people act before the slot fires (a 10:00 filing beats the 10:00 reminder)
    order = {"say": 0, "file": 0, "nudge": 0, "leave-button": 0, "job": 1}
    return sorted(events, key=lambda e: (e[0], order[e[1]]))


def latest_card(sim, chat: str, kind: str) -> dict:
    return [m for m in sim.messages(chat) if (kind_of(m["title"]) or ("",))[0] == kind][-1]


def press(sim, who: str, card: dict, action: str, **match: str) -> list[dict]:
    button = next(
        a
        for a in card["actions"]
        if a["id"] == action and all(a["value"].get(k) == v for k, v in match.items())
    )
    return sim.act(who, action, button["value"])


def run_quarter(services, clock, sim) -> dict[str, list[str]]:
    replies: dict[str, list[str]] = {}
    for moment, what, payload in timeline(services):
        clock.set(moment)
        if what == "job":
            result = run_job(services, str(payload), moment)
            assert result.status in ("done", "skipped"), result
            if result.enqueued:
                drain(services, sleep=lambda s: clock.advance(seconds=s))
            continue
        if what == "file":
            person, week = payload  # type: ignore[misc]
            (reply,) = sim.say(person, f"计划\n{ITEM[ROLE[person]]}")
            assert reply["title"] == f"本周计划已提交 · {week}", reply["text"]
        elif what == "say":
            assert isinstance(payload, Say)
            (reply,) = sim.say(payload.who, payload.text)
            assert reply["title"].startswith(payload.expect), reply["text"]
        elif what == "nudge":
            (reply,) = press(sim, "zhangwei", latest_card(sim, "zhangwei", "missing"), "plan.remind")
        else:
            card = latest_card(sim, "zhangwei", "missing")
            (reply,) = press(sim, "zhangwei", card, "leave.mark", person="liuyang")
        replies.setdefault(what, []).append(reply["text"].splitlines()[1])
        drain(services, sleep=lambda s: clock.advance(seconds=s))  # what a button queued goes out now
    return replies


@pytest.mark.slow
def test_a_quarter_of_reminders_appraisals_and_summaries(services, db, clock, demo_team, sim) -> None:
    seed_quarter_metrics(db, clock)
    replies = run_quarter(services, clock, sim)

    count, when, names = expected()
    got: Counter = Counter()
    times: dict[tuple[str, str, str], set[str]] = {}
    texts: dict[tuple[str, str, str], str] = {}
    cards: dict[tuple[str, str, str], dict] = {}
    delivered = 0
    for chat in [*ROLE, *MEMBERS]:
        for m in sim.messages(chat):
            if m["from"] != "bot":
                continue
            found = kind_of(m["title"])
            if found is None:
                assert m["title"].startswith(REPLIES), m["title"]  # a synchronous answer, not a delivery
                continue
            delivered += 1
            key = (chat, *found)
            got[key] += 1
            local = datetime.fromisoformat(m["at"]).astimezone(SH)
            assert works(local.date()), f"{key} delivered on a day off: {local}"
            times.setdefault(key, set()).add(local.strftime("%m-%d %H:%M"))
            texts[key], cards[key] = m["text"], m["card"]

    # exactly the expected messages, per chat, per kind, per week: nothing more, nothing less
    assert got == count
    assert {k: v for k, v in times.items()} == {k: {v} for k, v in when.items()}
    with db() as session:  # and nothing else was sent (every outbox row is one of the above)
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == delivered
        assert session.scalar(select(func.count()).where(OutboxMessage.status != "sent")) == 0

    # who the leaders were told about
    for week in WEEKS:
        for team, leader in LEADERS.items():
            planless = {NAMES[p] for p in names[(team, f"plan {week}")]}
            assert field(texts[(leader, "summary-leader", week)], "本周未提交计划") == planless, (team, week)
            if (leader, "missing", week) in count:
                missing = {NAMES[p] for p in names[(team, f"missing {week}")]}
                rows = cards[(leader, "missing", week)]["blocks"][1]["rows"]
                assert {r[0] for r in rows} == missing, (team, week)
            table = next(b for b in cards[(leader, "table", week)]["blocks"] if b["type"] == "table")
            assert {r[0] for r in table["rows"]} == {NAMES[p] for p in names[(team, f"appraised {week}")]}

    # the summary's people: last week's appraised people carry a score; the group card has none
    for week in WEEKS[1:]:
        last = WEEKS[WEEKS.index(week) - 1]
        for team, leader in LEADERS.items():
            table = next(b for b in cards[(leader, "summary-leader", week)]["blocks"] if b["type"] == "table")
            scored = {r[0] for r in table["rows"] if r[3] != "—"}
            assert scored == {NAMES[p] for p in names[(team, f"appraised {last}")]}, (team, week)
            chat_card = cards[(team, "summary-chat", week)]
            assert not any(b["type"] == "table" for b in chat_card["blocks"])
            group_text = texts[(team, "summary-chat", week)]
            for name, _, _, score, grade, _ in table["rows"]:  # no line puts a name next to a score
                for line in group_text.splitlines():
                    assert name not in line or (score not in line and f" {grade} " not in line), line

    # the 双11 template: from W43 (the week touching 10-20) to W46 (touching 11-11), then back
    promo = "大促模板（双11 10-20–11-11）替代 运营默认模板（2 人）"  # lilei, hanmeimei
    for week in WEEKS:
        text = texts[("ops", "summary-chat", week)]
        inside = "2026-W43" <= week <= "2026-W46"
        assert (promo in text) == inside, (week, text)
        assert (f"{promo}（本周起）" in text) == (week == "2026-W43")
    assert "· 运营默认模板（2 人）（本周起）" in texts[("ops", "summary-chat", "2026-W47")]

    # the leader's buttons did what they said, once
    assert replies["nudge"] == ["已再次提醒 1 人：赵强。", "这些成员本周已经再提醒过一次，不会重复发送。"]
    assert replies["leave-button"] == [
        "已登记 刘洋 请假至 2026-11-22（含当天），期间不提醒、不计入未提交名单。"
    ]


def test_the_scenarios_calendar_is_the_packages(services) -> None:
    """The statement above and the workday calendar agree on every day of the quarter."""
    for week in WEEKS:
        for day in week_days(week):
            assert workdays.is_workday(day) == works(day), day
