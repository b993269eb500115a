"""The demo's living team: four past weeks and this one, acted out through the real paths.

A new user opening the demo should find a team in the middle of its work, not an empty
database: plans (some late, one revised), progress notes, published appraisals (a leader's
rating, a decided appeal, a week under the promotion template), the Monday summaries, and this
week with most plans filed, one missing and one item lagging.

Nothing here writes a row directly. People speak through the simulator's JSON face
(``/sim/api/say`` and ``/sim/api/act``, as the chat page does), the scheduled jobs run through
``run_job`` on a clock that walks through the past weeks, and the relay delivers through the
simulator. So the story shows exactly what the product does, and changes with it.

Deterministic and relative to today; told once per database (a database with any plan is
left as it is), so a restart neither repeats nor doubles it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from bot.config import Settings
from storage.models import Kpi, Person, Plan, PlanItem

log = logging.getLogger("planloop.demo")

# One weekly plan per role: (what, KPI key), covering the KPIs of the role's templates: the
# operations plan carries 活动销量 for the weeks under the promotion template (活动销量 70 +
# 转化率 30) and 点击率 for the others (转化率 60 + 点击率 40).
PLANS = {
    "operations": [
        ("优化详情页首屏", "conversion_rate"),
        ("主图测试", "ctr"),
        ("会场引流", "activity_sales"),
    ],
    "design": [("主图点击优化", "ctr"), ("详情页改版", "conversion_rate")],
    "customer_service": [
        ("差评回访", "complaint_rate"),
        ("快捷回复整理", "avg_response"),
        ("售前话术优化", "inquiry_conversion"),
    ],
    "warehouse": [("打包流程优化", "ship_24h"), ("库位整理", "turnover_days"), ("复核扫码", "mis_shipment")],
}
# How far each past week's plan is met (completion), per person-week in turn: a realistic spread
# of grades instead of whatever the synthetic data happens to do against a fixed target.
PACE = (
    Decimal("1.15"),
    Decimal("0.9"),
    Decimal("1.3"),
    Decimal("0.75"),
    Decimal("1.05"),
    Decimal("0.6"),
    Decimal("1.0"),
)
THIS_WEEK_TARGET = "+5%"
LEARNING_LINE = "学习新人课程 学习进度 =5"  # a newcomer's checklist: five lessons
LAGGING_LINE = "大促会场改版 支付转化率 +3pp"  # this week's stretch goal: the data will not keep pace
NOTE = "本周主图 A/B 测试已上线两版，周四看数据再定稿。"
APPEAL = "周三会场页面改版，当天转化数据异常，申请剔除此项。"
APPEAL_REPLY = "同意：改版当天数据不可比。"


@dataclass(frozen=True)
class Cast:
    """Who does what in the story, chosen from the team file (sorted ids: deterministic)."""

    leader: str  # the first team's leader: switches its template, decides the appeal
    leaders: dict[str, str]  # person -> their team's leader
    members: list[str]  # active, not a team leader
    roles: dict[str, str]
    newcomers: set[str]  # employee type "new": a learning checklist, rated by their leader
    late: list[str]  # one late filer per past week, rotating
    reviser: str
    noter: str
    rated: list[str]  # members rated by their leader each week (design role, newcomers)
    missing: str  # files nothing this week
    lagging: str  # adds the stretch item this week


class StoryClock:
    """The clock the story's services read: it walks through the past, never past ``limit``."""

    def __init__(self, limit: datetime):
        self.limit = limit
        self.at = limit

    def __call__(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = min(at, self.limit).astimezone(UTC)

    def advance(self, seconds: float) -> None:
        self.at = min(self.at + timedelta(seconds=seconds), self.limit)


def told(session: Any) -> bool:
    return bool(session.scalar(select(func.count()).select_from(Plan)))


def tell(settings: Settings, now: datetime) -> bool:
    """Act out the story up to ``now`` (aware); False when this database already has one."""
    from bot.services import build_services
    from bot.web.app import create_app

    clock = StoryClock(now)
    services = build_services(settings, clock=clock)
    try:
        with services.sessions() as session:
            if told(session):
                return False
            cast = _cast(session)
        if cast is None:
            log.info("demo story skipped: the team file has no leader with members")
            return False
        story = _Story(services, clock, create_app(settings, services).test_client(), cast)
        story.run(now)
        return True
    finally:
        services.engine.dispose()


def _cast(session: Any) -> Cast | None:
    from storage.models import Team

    teams = list(session.scalars(select(Team).order_by(Team.id)))
    leader_ids = {t.leader_id for t in teams if t.leader_id}
    people = list(session.scalars(select(Person).where(Person.active.is_(True)).order_by(Person.id)))
    members = [p.id for p in people if p.id not in leader_ids and p.role in PLANS]
    if not teams or not members or not teams[0].leader_id:
        return None
    roles = {p.id: p.role for p in people}
    team_leader = {t.id: t.leader_id for t in teams}
    leaders = {p.id: team_leader[p.team_id] for p in people if team_leader.get(p.team_id)}
    newcomers = {p.id for p in people if p.type == "new" and p.id in members}
    first_team = [p.id for p in people if p.team_id == teams[0].id and p.id in members]
    ops = [m for m in first_team if roles[m] == "operations" and m not in newcomers] or first_team
    rated = [m for m in members if (roles[m] == "design" or m in newcomers) and m in leaders]
    return Cast(
        leader=teams[0].leader_id,
        leaders=leaders,
        members=members,
        roles=roles,
        newcomers=newcomers,
        late=[members[(n * 3 + 1) % len(members)] for n in range(4)],
        reviser=ops[0],
        noter=rated[0] if rated else ops[0],
        rated=rated,
        missing=next((m for m in first_team if m in newcomers), ops[-1]),
        lagging=ops[1] if len(ops) > 1 else ops[0],
    )


class _Story:
    def __init__(self, services: Any, clock: StoryClock, client: Any, cast: Cast):
        self.services = services
        self.clock = clock
        self.client = client
        self.cast = cast
        self.tz = services.settings.tz
        with services.sessions() as session:
            self.team = session.get(Person, cast.leader).team_id

    # ------------------------------------------------------------ the chat, as a person uses it

    def at(self, day: date, hhmm: str) -> datetime:
        return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=self.tz)

    def say(self, who: str, text: str) -> list[dict[str, Any]]:
        res = self.client.post("/sim/api/say", json={"as": who, "chat": "dm", "text": text})
        replies: list[dict[str, Any]] = res.get_json().get("replies", [])
        self.deliver()
        return replies

    def act(self, who: str, action: str, values: dict[str, Any]) -> list[dict[str, Any]]:
        res = self.client.post(
            "/sim/api/act", json={"as": who, "chat": "dm", "action": action, "values": values}
        )
        replies: list[dict[str, Any]] = res.get_json().get("replies", [])
        self.deliver()
        return replies

    def messages(self, who: str) -> list[dict[str, Any]]:
        res = self.client.get(f"/sim/api/messages?chat={who}")
        found: list[dict[str, Any]] = res.get_json().get("messages", [])
        return found

    def deliver(self) -> None:
        from bot.worker.delivery import drain

        drain(self.services, sleep=self.clock.advance)

    def job(self, name: str, moment: datetime) -> None:
        from bot.worker.jobs import run_job

        if moment > self.clock.limit:
            return
        self.clock.set(moment)
        run_job(self.services, name, moment, explicit=True, who="demo")
        self.deliver()

    def file(self, who: str, moment: datetime, lines: list[str]) -> None:
        if moment > self.clock.limit:
            return
        self.clock.set(moment)
        self.say(who, "计划\n" + "\n".join(lines))

    def lines(self, who: str, day: date, pace: Decimal | None) -> list[str]:
        """The person's plan as typed: each target set so that the week's data meets it at
        ``pace`` (a plan filed ``day``, judged on the week's last sample); None: a plain +2%."""
        from handlers.plan_items import latest_value

        out = []
        with self.services.sessions() as session:
            for text, key in PLANS[self.cast.roles[who]]:
                kpi = session.get(Kpi, key)
                if kpi is None:
                    continue
                target = THIS_WEEK_TARGET if kpi.direction == "up" else THIS_WEEK_TARGET.replace("+", "-")
                if pace is not None and kpi.metric:
                    sunday = day + timedelta(days=6 - day.weekday())
                    before = latest_value(session, kpi.metric, "shop", day)
                    after = latest_value(session, kpi.metric, "shop", sunday)
                    target = _target(kpi.direction, before, after, pace) or target
                out.append(f"{text} {kpi.name} {target}")
        if who in self.cast.newcomers:
            out.append(LEARNING_LINE)
        return out

    # ------------------------------------------------------------ the weeks

    def run(self, now: datetime) -> None:
        from handlers.workdays import first_workday, last_workday, shift_week, week_of

        this_week = week_of(now, self.tz)
        for back in (4, 3, 2, 1):
            week = shift_week(this_week, -back)
            first, last = first_workday(week), last_workday(week)
            if first is None or last is None:
                continue  # a week without a workday (a long holiday): nothing happened
            self.past_week(back, first, last)
            after = first_workday(shift_week(week, 1))
            if after is not None:
                self.job("monday-summary", self.at(after, "09:00"))
        first = first_workday(this_week)
        if first is not None:
            self.this_week(first, now)
        self.clock.set(now)

    def past_week(self, back: int, first: date, last: date) -> None:
        cast = self.cast
        promo = back == 2
        if promo:  # the leader switches the operations group to the promotion template for the week
            sunday = first + timedelta(days=6 - first.weekday())
            self.clock.set(self.at(first, "09:00"))
            self.say(cast.leader, f"切换模板 ops-promo 至 {sunday:%m-%d}")
        late = cast.late[back - 1]
        for n, who in enumerate(cast.members):
            pace = PACE[(n + back) % len(PACE)]
            if who == late:  # after the 14:00 deadline: accepted and marked late
                self.file(who, self.at(first, "15:20"), self.lines(who, first, pace))
                continue
            moment = self.at(first, "09:30") + timedelta(minutes=3 * n)
            if back == 3 and who == cast.reviser:  # first a plain plan, then the real one: version 2
                self.file(who, moment, self.lines(who, first, None))
                moment = self.at(first, "11:00")
            self.file(who, moment, self.lines(who, first, pace))

        self.clock.set(self.at(last, "16:00"))
        self.note(cast.noter, first)
        for n, who in enumerate(cast.rated):
            rating = {"person": who, "week": _week(first)}
            self.act(
                cast.leaders[who],
                "appraisal.rate",
                {**rating, "kpi": "leader_rating", "stars": str(3 + (n + back) % 3)},
            )
            if who in cast.newcomers:
                done = str(3 + (n + back) % 3)
                self.act(cast.leaders[who], "appraisal.rate", {**rating, "kpi": "learning", "done": done})
        self.job("appraisal", self.at(last, "20:00"))
        if promo:
            self.clock.set(self.at(last, "21:00"))
            self.appeal(self.lowest_scored(_week(first)))
            if not self.say(cast.leader, "恢复模板"):
                log.info("demo story: the template switch had already ended")

    def this_week(self, first: date, now: datetime) -> None:
        cast = self.cast
        start = self.at(first, "09:30")
        for n, who in enumerate(m for m in cast.members if m != cast.missing):
            lines = self.lines(who, first, None)
            if who == cast.lagging:
                lines = [LAGGING_LINE, *lines[1:]]
            self.file(who, start + timedelta(minutes=3 * n), lines)
        self.job("reminders", self.at(first, "14:00"))  # the leader's list names who is missing
        self.job("lag-alerts", now)

    def note(self, who: str, first: date) -> None:
        with self.services.sessions() as session:
            item_id = session.scalar(
                select(PlanItem.id)
                .join(Plan, Plan.id == PlanItem.plan_id)
                .where(Plan.person_id == who, Plan.week == _week(first))
                .order_by(Plan.version.desc(), PlanItem.id)
                .limit(1)
            )
        if item_id is not None:
            self.act(who, "progress.note.save", {"item": str(item_id), "note": NOTE})

    def lowest_scored(self, week: str) -> str:
        """The first team's member with the week's lowest score: the one likely to appeal."""
        from storage.models import Appraisal

        with self.services.sessions() as session:
            rows = session.scalars(
                select(Appraisal)
                .where(Appraisal.week == week, Appraisal.current.is_(True), Appraisal.team_id == self.team)
                .order_by(Appraisal.score, Appraisal.person_id)
            )
            return next((r.person_id for r in rows if r.person_id in self.cast.members), self.cast.members[0])

    def weakest_kpi(self, who: str, appraisal_id: str) -> str:
        """The KPI of the appraisal's least-completed weighted item: what a person would appeal."""
        from storage.models import Appraisal

        with self.services.sessions() as session:
            row = session.get(Appraisal, int(appraisal_id)) if appraisal_id.isdigit() else None
            items = [i for i in (row.items if row else []) if i.get("kpi") and i.get("weight")]
        return str(min(items, key=_completion)["kpi"]) if items else ""

    def appeal(self, who: str) -> None:
        """Appeal the first item of the latest appraisal card; the leader excludes it."""
        card = next(
            (
                m
                for m in reversed(self.messages(who))
                if any(a["id"] == "appraisal.appeal" for a in m["actions"])
            ),
            None,
        )
        if card is None:
            return
        buttons = [a for a in card["actions"] if a["id"] == "appraisal.appeal"]
        weakest = self.weakest_kpi(who, str(buttons[0]["value"].get("appraisal", "")))
        button = next((b for b in buttons if b["value"].get("kpi") == weakest), buttons[0])
        self.act(who, "appraisal.appeal.submit", {**button["value"], "note": APPEAL})
        review = next(
            (
                m
                for m in reversed(self.messages(self.cast.leader))
                if (m.get("form") or {}).get("action") == "appraisal.appeal.decide"
            ),
            None,
        )
        if review is None:
            return
        values = {**review["form"]["values"], "decision": "exclude", "reply": APPEAL_REPLY}
        self.act(self.cast.leader, "appraisal.appeal.decide", values)


def _completion(item: dict[str, Any]) -> float:
    try:
        return float(item.get("completion"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("inf")


def _target(direction: str, before: Decimal | None, after: Decimal | None, pace: Decimal) -> str:
    """A relative target ("+1.8%", "-4.2%") that the move from ``before`` to ``after`` meets at
    ``pace``; "" when the week went the wrong way or barely moved (then the plain target stands)."""
    if not before or after is None:
        return ""
    moved = (after - before) / before * 100 * (1 if direction == "up" else -1)
    percent = (moved / pace).quantize(Decimal("0.1"))
    if percent < Decimal("0.5"):
        return ""
    return f"{'+' if direction == 'up' else '-'}{percent}%"


def _week(day: date) -> str:
    from handlers.workdays import iso_week

    return iso_week(day)
