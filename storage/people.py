"""Who is who: people and teams, and where a message to them goes (outbox targets)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Identity, Person, Team
from storage.outbox import Target


def person_target(session: Session, person: Person) -> Target | None:
    """A direct message to ``person`` on their team's bot (or any bot they are known on)."""
    bot_id = person.team.chat_bot if person.team else None
    query = select(Identity).where(Identity.person_id == person.id)
    ids = list(session.scalars(query))
    preferred = next((i for i in ids if i.bot_id == bot_id), None) or (ids[0] if ids else None)
    if preferred is None:
        return None
    return Target(preferred.bot_id, "user", preferred.external_id)


def team_chat_target(team: Team) -> Target | None:
    """The team's group chat: the app bot's chat if set, else its send-only group robot."""
    if team.chat_bot and team.chat_id:
        return Target(team.chat_bot, "chat", team.chat_id)
    if team.webhook_enc:
        return Target(team.chat_bot or "", "webhook", team.id)
    return None


def leader_of(session: Session, team: Team) -> Person | None:
    return session.get(Person, team.leader_id) if team.leader_id else None


def active_members(session: Session, team_id: str) -> list[Person]:
    query = select(Person).where(Person.team_id == team_id, Person.active.is_(True)).order_by(Person.id)
    return list(session.scalars(query))
