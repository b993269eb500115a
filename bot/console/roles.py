"""Who may see and do what in the console: admin (``[server] admins``), leader (their teams), member.

The permission table is data (``PAGES`` and ``ACTIONS``), so the tests walk it row by row.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Person, Team
from storage.people import led_team_ids

ADMIN, LEADER, MEMBER = "admin", "leader", "member"

# page -> the roles that may open it (a member sees only their own rows)
PAGES: dict[str, frozenset[str]] = {
    "team": frozenset({ADMIN, LEADER, MEMBER}),
    "appraisals": frozenset({ADMIN, LEADER, MEMBER}),
    "templates": frozenset({ADMIN, LEADER}),
    "delivery": frozenset({ADMIN}),
    "data": frozenset({ADMIN, LEADER}),  # a leader sees the freshness of the KPIs' metrics only
    "people": frozenset({ADMIN}),  # teams, the directory, leavers, the starter catalogue
}
# POST action -> the roles that may do it (a leader only for their own teams)
ACTIONS: dict[str, frozenset[str]] = {
    "switch": frozenset({ADMIN, LEADER}),
    "undo": frozenset({ADMIN, LEADER}),
    "scenario": frozenset({ADMIN}),
    "resend": frozenset({ADMIN}),
    "decide": frozenset({ADMIN, LEADER}),
    "pull": frozenset({ADMIN}),
    "upload": frozenset({ADMIN}),
    "edit_template": frozenset({ADMIN}),  # weights, cap, curves, grades: shared by every team
    "people": frozenset({ADMIN}),  # pull the directory, add people, deactivate, save a team
}


def admins_of(extra: Mapping[str, Any]) -> frozenset[str]:
    admins = extra.get("admins", [])
    return frozenset(str(a) for a in admins) if isinstance(admins, list | tuple) else frozenset()


@dataclass(frozen=True)
class Viewer:
    person_id: str
    name: str
    team_id: str
    role: str  # the highest: admin > leader > member
    led: tuple[str, ...]  # team ids they lead

    def may_open(self, page: str) -> bool:
        return self.role in PAGES.get(page, frozenset())

    def may(self, action: str, team_id: str | None = None) -> bool:
        if self.role not in ACTIONS.get(action, frozenset()):
            return False
        return self.role == ADMIN or team_id is None or team_id in self.led

    def team_ids(self, session: Session) -> list[str]:
        """The teams whose pages this viewer sees (a member: their own team, their own rows)."""
        if self.role == ADMIN:
            return list(session.scalars(select(Team.id).where(Team.active.is_(True)).order_by(Team.id)))
        if self.role == LEADER:
            return list(self.led)
        return [self.team_id]

    def sees_person(self, person: Person) -> bool:
        if self.role == ADMIN:
            return True
        if self.role == LEADER:
            return person.team_id in self.led or person.id == self.person_id
        return person.id == self.person_id


def viewer_for(session: Session, person: Person, admins: Collection[str]) -> Viewer:
    led = tuple(led_team_ids(session, person.id))
    role = ADMIN if person.id in admins else LEADER if led else MEMBER
    return Viewer(person.id, person.name, person.team_id, role, led)
