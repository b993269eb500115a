"""What the appraisal chat flows share: who is acting, the team a leader means, notices, replies.

Used by ``handlers/appraisal_runs.py`` ("考核"), ``template_switches.py``, ``appeals.py`` and
``ratings.py``.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cards.model import Card, Markdown
from handlers.appraisals import AppraisalError
from handlers.inbound import Inbound
from handlers.router import Context, PermissionDenied
from storage import outbox
from storage.models import Person, Team
from storage.people import person_target


def team_today(team: Team, now: datetime) -> date:
    """Today in the team's time zone."""
    return now.astimezone(ZoneInfo(team.timezone)).date()


def acting_person(ctx: Context) -> Person:
    if ctx.person is None:  # the router calls non-public handlers with a person only
        raise PermissionDenied("还不认识你")
    return ctx.person


def led_team(ctx: Context, event: Inbound, named: str = "") -> Team:
    """The team the acting leader means: named, else the chat's team, else their only team."""
    me = acting_person(ctx)
    teams = list(ctx.session.scalars(select(Team).where(Team.leader_id == me.id, Team.active.is_(True))))
    if not teams:
        raise PermissionDenied("只有团队主管可以做这件事。")
    if named:
        team = next((t for t in teams if t.id == named or t.name == named), None)
        if team is None:
            raise PermissionDenied(f"你不是“{named}”的主管。")
        return team
    if event.chat_type == "group":
        in_chat = next((t for t in teams if t.chat_id == event.chat), None)
        if in_chat is not None:
            return in_chat
    if len(teams) == 1:
        return teams[0]
    raise AppraisalError("你是多个团队的主管，请写明团队：切换模板 模板id 至 12-01 团队 团队id")


def require_leader_of(session: Session, team_id: str, person: Person) -> None:
    team = session.get(Team, team_id)
    if team is None or team.leader_id != person.id:
        raise PermissionDenied("只有该员工所在团队的主管可以处理。")


def notify(ctx: Context, person: Person | None, card: Card, key: str) -> None:
    target = person_target(ctx.session, person, ctx.bots) if person else None
    if target is not None:
        outbox.enqueue(ctx.session, target, card, dedupe_key=key, now=ctx.now)


def done_card(title: str, text: str, toast: str = "") -> Card:
    return Card(title=title, theme="green", blocks=(Markdown(text),), toast=toast)
