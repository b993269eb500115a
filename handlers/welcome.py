"""A person's first message to the bot gets the welcome card once: what planloop does for them,
three things to try, the guide (``[server] guide_url``, else 帮助); a leader also gets the team's
setup checklist with what is missing and how to fix it. The welcome's buttons run the command
they name (``chat.command``), as if the person had typed it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cards.welcome import TRY_FIRST, SetupCheck, welcome_card
from handlers.inbound import Inbound
from handlers.router import Context, error_card, router
from handlers.workdays import first_workday, last_workday, shift_week, week_of
from storage import outbox
from storage.models import Kpi, MetricSample, Person, Team
from storage.people import person_target

STALE_AFTER_DAYS = 2  # reports arrive the next day; two days without one means a source is stuck


@router.after
def greet_once(event: Inbound, ctx: Context) -> None:
    if ctx.person_id is None or event.kind != "text" or ctx.welcomed():
        return
    person = ctx.person
    if person is None:
        return
    person.welcomed_at = ctx.now
    target = person_target(ctx.session, person, ctx.bots)
    if target is None:
        return
    checklist = leader_checklist(ctx.session, person, ctx.now)
    card = welcome_card(person.name, str(ctx.extra.get("guide_url") or ""), checklist)
    outbox.enqueue(ctx.session, target, card, dedupe_key=f"welcome:{person.id}", now=ctx.now)


@router.action("chat.command")
def run_command(event: Inbound, ctx: Context):  # noqa: ANN201 - the command's own card
    command = str(event.values.get("command", ""))
    if command not in {word for word, _ in TRY_FIRST}:
        return error_card("这个按钮已失效。发送“帮助”查看可用命令。")
    return router.dispatch(replace(event, kind="text", text=command, action="", values={}), ctx)


def leader_checklist(session: Session, person: Person, now: datetime) -> tuple[SetupCheck, ...]:
    """Per team the person leads: team file applied, group chat linked, data fresh, the week's schedule."""
    checks: list[SetupCheck] = []
    teams = session.scalars(
        select(Team).where(Team.leader_id == person.id, Team.active.is_(True)).order_by(Team.id)
    )
    for team in teams:
        tz = ZoneInfo(team.timezone)
        today = now.astimezone(tz).date()
        members = session.scalar(
            select(func.count()).where(Person.team_id == team.id, Person.active.is_(True))
        )
        checks.append(SetupCheck(f"{team.name} · 团队文件", True, f"已导入 {members} 人"))
        linked = bool(team.chat_id or team.webhook_enc)
        checks.append(
            SetupCheck(
                f"{team.name} · 团队群",
                linked,
                "已关联群聊"
                if linked
                else "在团队文件里给团队加上 chat = { bot = …, chat_id = … }，再运行 planloop apply",
            )
        )
        checks.append(_data_check(session, team, today))
        checks.append(SetupCheck(f"{team.name} · 本周安排", True, _schedule(team, today, tz)))
    return tuple(checks)


def _data_check(session: Session, team: Team, today: date) -> SetupCheck:
    metrics = select(Kpi.metric).where(Kpi.metric.is_not(None))
    if team.kpi_keys:
        metrics = metrics.where(Kpi.key.in_(team.kpi_keys))
    latest = session.scalar(select(func.max(MetricSample.day)).where(MetricSample.metric.in_(metrics)))
    what = f"{team.name} · 数据"
    if latest is None:
        return SetupCheck(
            what, False, "还没有任何指标数据：请管理员配置 [[sources]]，或用 planloop import 导入报表"
        )
    age = (today - latest).days
    if age > STALE_AFTER_DAYS:
        return SetupCheck(
            what,
            False,
            f"最新数据是 {latest:%m-%d}（{age} 天前）：请管理员运行 planloop sources check 检查数据源",
        )
    return SetupCheck(what, True, f"最新数据 {latest:%m-%d}")


def _schedule(team: Team, today: date, tz: ZoneInfo) -> str:
    week = week_of(datetime.combine(today, datetime.min.time(), tzinfo=tz), tz)
    last = last_workday(week)
    if last is None or last < today:
        week = shift_week(week, 1)
    first, last = first_workday(week), last_workday(week)
    after = first_workday(shift_week(week, 1))
    parts = []
    if first is not None:
        parts.append(f"计划日 {first:%m-%d} {team.plan_day_time}（{team.plan_deadline_time} 截止）")
    if last is not None:
        parts.append(f"考核 {last:%m-%d} 20:00")
    if after is not None:
        parts.append(f"周初汇总 {after:%m-%d} 09:00")
    return " · ".join(parts) or f"{week} 没有工作日"
