"""Who is who: people and teams, and where a message to them goes (outbox targets).

``bots`` is the set of bot ids configured in this deployment: a person or team whose
own bot is not configured falls back to another bot they are known on (the simulator
in the demo), so nothing is queued for a bot that cannot send.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Identity, Person, Team
from storage.outbox import Target

SIM = "sim"


def person_target(session: Session, person: Person, bots: Collection[str]) -> Target | None:
    """A direct message to ``person``: on their team's bot if configured, else any configured bot."""
    ids = {
        i.bot_id: i.external_id
        for i in session.scalars(select(Identity).where(Identity.person_id == person.id))
    }
    return _direct(person, ids, bots)


CHUNK = 1000  # ids per IN (...) look-up


def person_targets(session: Session, people: Iterable[Person], bots: Collection[str]) -> dict[str, Target]:
    """``person_target`` of many people, their identities read in one query per thousand; the
    people with no reachable chat are left out."""
    people = list(people)
    known: dict[str, dict[str, str]] = {}
    ids = sorted({p.id for p in people})
    for n in range(0, len(ids), CHUNK):
        query = select(Identity.person_id, Identity.bot_id, Identity.external_id).where(
            Identity.person_id.in_(ids[n : n + CHUNK])
        )
        for person_id, bot_id, external_id in session.execute(query):
            known.setdefault(person_id, {})[bot_id] = external_id
    out = {}
    for person in people:
        target = _direct(person, known.get(person.id, {}), bots)
        if target is not None:
            out[person.id] = target
    return out


def _direct(person: Person, ids: dict[str, str], bots: Collection[str]) -> Target | None:
    """The first configured bot ``person`` is known on (bot id → their id there), their team's first."""
    preferred = [person.team.chat_bot] if person.team and person.team.chat_bot else []
    order = preferred + sorted(b for b in ids if b != SIM) + [SIM]
    for bot_id in order:
        if bot_id in bots and bot_id in ids:
            return Target(bot_id, "user", ids[bot_id])
    return None


def team_chat_target(team: Team, bots: Collection[str]) -> Target | None:
    """The team's group chat: the app bot's chat, else its send-only group robot, else the simulator."""
    if team.chat_bot and team.chat_id and team.chat_bot in bots:
        return Target(team.chat_bot, "chat", team.chat_id)
    if team.webhook_enc and team.chat_bot in bots:
        return Target(team.chat_bot or "", "webhook", team.id)
    if SIM in bots:
        return Target(SIM, "chat", team.id)
    return None


def leader_of(session: Session, team: Team) -> Person | None:
    return session.get(Person, team.leader_id) if team.leader_id else None


def active_members(session: Session, team_id: str) -> list[Person]:
    query = select(Person).where(Person.team_id == team_id, Person.active.is_(True)).order_by(Person.id)
    return list(session.scalars(query))


def led_team_ids(session: Session, leader_id: str) -> list[str]:
    return list(session.scalars(select(Team.id).where(Team.leader_id == leader_id)))


def member_named(session: Session, team_ids: Collection[str], word: str) -> Person | None:
    """An active member of ``team_ids`` by id or by name (a leader types either)."""
    return session.scalars(
        select(Person)
        .where(
            Person.team_id.in_(team_ids), Person.active.is_(True), (Person.id == word) | (Person.name == word)
        )
        .order_by(Person.id)
    ).first()
