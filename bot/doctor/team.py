"""The team data a bot's checks look up: the group chats that name the bot and everyone's id on it.

Read from the database that ``planloop apply`` fills (``teams.chat`` and ``people.ids`` of the
team file); only active teams and people count, as only they get messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Identity, Person, Team


@dataclass(frozen=True)
class Group:
    team_id: str
    team_name: str
    chat_id: str


@dataclass(frozen=True)
class Member:
    person_id: str
    name: str
    external_id: str


@dataclass(frozen=True)
class TeamData:
    groups: tuple[Group, ...] = ()
    people: tuple[Member, ...] = ()


def load(session: Session, bot_id: str) -> TeamData:
    teams = session.scalars(
        select(Team)
        .where(Team.chat_bot == bot_id, Team.chat_id.is_not(None), Team.active.is_(True))
        .order_by(Team.id)
    )
    groups = tuple(Group(t.id, t.name, t.chat_id or "") for t in teams if t.chat_id)
    rows = session.execute(
        select(Person.id, Person.name, Identity.external_id)
        .join(Identity, Identity.person_id == Person.id)
        .where(Identity.bot_id == bot_id, Person.active.is_(True))
        .order_by(Person.id)
    )
    return TeamData(groups, tuple(Member(pid, name, ext) for pid, name, ext in rows))
