"""People from the platform's directory: what a pull found, who is new, who has left (issue 22).

A pull (bot/platforms/directory.py) is stored whole per bot in ``directory_members``. From it:
- **newcomers**: members still here whom no person is known by on that bot; the admin picks each
  one's person id, team, role and type, and ``add_people`` creates them (``added_from =
  "directory"``, so a later ``planloop apply`` of a file without them keeps them);
- **leavers**: active people whose id on a pulled bot is gone from its directory, or resigned or
  disabled there; they are only flagged: ``deactivate`` on the admin's confirmation, history kept.
Every change is audited with who made it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from handlers.setup import ID_PATTERN, known_roles
from handlers.team_edits import new_person
from storage.models import AuditLog, DirectoryMember, Identity, Person, Team


class DirectoryChoiceError(ValueError):
    """A newcomer's choice the admin must correct; the text names the person and the field."""


@dataclass(frozen=True)
class Member:
    """One directory member as a platform lists them (bot/platforms/directory.py reads them)."""

    external_id: str  # the id the bot messages: Feishu open_id, DingTalk userid, WeCom userid
    name: str
    departments: tuple[str, ...]  # department names, as the directory shows them
    active: bool  # False: resigned, frozen or disabled on the platform
    union_id: str | None = None  # DingTalk's unionId, which its OAuth sign-in returns


@dataclass(frozen=True)
class PullSummary:
    bot_id: str
    listed: int
    newcomers: int
    leavers: int


@dataclass(frozen=True)
class Newcomer:
    bot_id: str
    external_id: str
    name: str
    departments: tuple[str, ...]
    suggested_id: str
    existing: bool = False  # the suggestion is a person already here (picking it links their id)


@dataclass(frozen=True)
class Leaver:
    person_id: str
    name: str
    team_id: str
    bot_id: str
    external_id: str
    why: str  # "gone" (no longer listed) | "inactive" (resigned or disabled on the platform)


@dataclass(frozen=True)
class Choice:
    """The admin's pick for one newcomer."""

    bot_id: str
    external_id: str
    person_id: str
    name: str
    team_id: str
    role: str
    type: str = "veteran"
    hire_date: date | None = None


def record_pull(
    session: Session, bot_id: str, members: Sequence[Member], now: datetime, by: str
) -> PullSummary:
    """Replace ``bot_id``'s stored directory with this pull; say what it now shows."""
    session.execute(delete(DirectoryMember).where(DirectoryMember.bot_id == bot_id))
    session.flush()
    session.add_all(
        DirectoryMember(
            bot_id=bot_id, external_id=m.external_id, union_id=m.union_id, name=m.name[:200],
            departments=list(m.departments), active=m.active, seen_at=now,
        )
        for m in members
    )  # fmt: skip
    session.flush()
    summary = PullSummary(
        bot_id,
        len(members),
        sum(1 for n in newcomers(session) if n.bot_id == bot_id),
        sum(1 for lv in leavers(session) if lv.bot_id == bot_id),
    )
    detail = {"listed": summary.listed, "newcomers": summary.newcomers, "leavers": summary.leavers}
    session.add(AuditLog(at=now, actor=by, action="directory.pull", subject=bot_id, detail=detail))
    return summary


def pulled_bots(session: Session) -> list[str]:
    return list(session.scalars(select(DirectoryMember.bot_id).distinct().order_by(DirectoryMember.bot_id)))


def newcomers(session: Session) -> list[Newcomer]:
    """Active directory members no person is known by on that bot, with a free person id to suggest."""
    identities = list(session.scalars(select(Identity)))
    known = {(i.bot_id, i.external_id) for i in identities}
    has_id_on = {(i.person_id, i.bot_id) for i in identities}
    people = list(session.scalars(select(Person)))
    taken = {p.id for p in people}
    out: list[Newcomer] = []
    rows = list(
        session.scalars(
            select(DirectoryMember).where(DirectoryMember.active.is_(True)).order_by(DirectoryMember.bot_id)
        )
    )
    names_on_bot = Counter((row.bot_id, row.name) for row in rows)
    active_by_name: dict[str, list[str]] = {}
    for p in people:
        if p.active:
            active_by_name.setdefault(p.name, []).append(p.id)
    for row in rows:
        if (row.bot_id, row.external_id) in known:
            continue
        # someone already here by that name without an id on this bot (the admin made at the
        # start, a team file's person): suggest them, so the pick links instead of duplicating;
        # only when the name is unique on both sides, so a namesake is never offered an account
        same = [pid for pid in active_by_name.get(row.name, ()) if (pid, row.bot_id) not in has_id_on]
        link = len(same) == 1 and names_on_bot[(row.bot_id, row.name)] == 1
        suggested = same[0] if link else suggest_person_id(row.external_id, taken)
        taken.add(suggested)
        out.append(Newcomer(row.bot_id, row.external_id, row.name, tuple(row.departments), suggested, link))
    return sorted(out, key=lambda n: (n.departments[:1], n.name))


def leavers(session: Session) -> list[Leaver]:
    """Active people whose id on a pulled bot is no longer listed, or listed as resigned or disabled."""
    pulled = set(pulled_bots(session))
    listed = {(m.bot_id, m.external_id): m.active for m in session.scalars(select(DirectoryMember))}
    out: list[Leaver] = []
    query = (
        select(Identity, Person)
        .join(Person, Person.id == Identity.person_id)
        .where(Person.active.is_(True), Identity.bot_id.in_(pulled))
        .order_by(Person.team_id, Person.id)
    )
    for ident, person in session.execute(query):
        state = listed.get((ident.bot_id, ident.external_id))
        if state is True:
            continue
        why = "gone" if state is None else "inactive"
        out.append(Leaver(person.id, person.name, person.team_id, ident.bot_id, ident.external_id, why))
    return out


def suggest_person_id(external_id: str, taken: Iterable[str]) -> str:
    """A person id from a platform id (``LiLei`` → ``lilei``; ``ou_7dab…`` → ``ou_7dab…``), made unique."""
    base = re.sub(r"[^a-z0-9_.\-]", "", external_id.lower())[:60] or "person"
    taken = set(taken)
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def add_people(session: Session, choices: Sequence[Choice], *, by: str, now: datetime) -> list[str]:
    """Create the chosen newcomers as people known by their platform id; all or none. A person id
    that already exists (the admin made by ``planloop console link --name``, someone from a team
    file without this bot's id) gains this platform id instead.

    Raises DirectoryChoiceError naming every problem (an id already on that bot, a team or role
    unknown, a member no longer in the directory or already someone's)."""
    problems: list[str] = []
    teams = set(session.scalars(select(Team.id).where(Team.active.is_(True))))
    roles = known_roles(session)
    members = {(m.bot_id, m.external_id): m for m in session.scalars(select(DirectoryMember))}
    identities = list(session.scalars(select(Identity)))
    known = {(i.bot_id, i.external_id) for i in identities}
    has_id_on = {(i.person_id, i.bot_id): i.external_id for i in identities}
    people = {p.id: p for p in session.scalars(select(Person))}
    seen: set[tuple[str, str]] = set()  # (person id, bot): one id per person per bot
    picked: set[tuple[str, str]] = set()
    for c in choices:
        who = f"{c.name or c.external_id}（{c.external_id}）"
        existing = people.get(c.person_id)
        if (c.bot_id, c.external_id) in picked:
            problems.append(f"{who}：在这次提交里出现了两次")
            continue
        picked.add((c.bot_id, c.external_id))
        if (c.bot_id, c.external_id) not in members:
            problems.append(f"{who}：已不在通讯录里，请重新拉取")
        elif (c.bot_id, c.external_id) in known:
            problems.append(f"{who}：已经是系统里的人员")
        if not ID_PATTERN.match(c.person_id):
            problems.append(f"{who}：人员 ID 只能用字母、数字和 _-.，最长 64 个字符")
        elif (c.person_id, c.bot_id) in seen:
            problems.append(f"{who}：人员 ID {c.person_id} 在这次提交里用了两次")
        elif existing is not None and (c.person_id, c.bot_id) in has_id_on:
            problems.append(
                f"{who}：人员 {c.person_id} 在 {c.bot_id} 上已有账号 {has_id_on[(c.person_id, c.bot_id)]}"
            )
        elif existing is not None and not existing.active:
            problems.append(f"{who}：人员 {c.person_id} 已停用，请换一个 ID")
        seen.add((c.person_id, c.bot_id))
        if existing is not None:
            continue  # an existing person: only their id on this bot is added (team, role stay)
        if c.team_id not in teams:
            problems.append(f"{who}：请选择一个团队")
        if c.role not in roles:
            problems.append(f"{who}：岗位 {c.role} 不存在")
        if c.type not in ("new", "veteran"):
            problems.append(f"{who}：类型应为新人或老员工")
    if problems:
        raise DirectoryChoiceError("\n".join(problems))
    for c in choices:
        linked = c.person_id in people
        if not linked:
            name = c.name or members[(c.bot_id, c.external_id)].name
            new_person(session, c.person_id, name, c.team_id, c.role, c.type, added_from="directory",
                       hire_date=c.hire_date)  # fmt: skip
        session.add(Identity(bot_id=c.bot_id, external_id=c.external_id, person_id=c.person_id))
        detail: dict[str, Any] = {"bot": c.bot_id, "id": c.external_id}
        if not linked:
            detail.update(team=c.team_id, role=c.role)
        action = "person.link" if linked else "person.add"
        session.add(AuditLog(at=now, actor=by, action=action, subject=c.person_id, detail=detail))
    session.flush()
    return [c.person_id for c in choices]


def deactivate(session: Session, person_id: str, *, by: str, now: datetime, reason: str) -> Person | None:
    """The admin's confirmation that someone has left: inactive from now on, every record kept."""
    person = session.get(Person, person_id)
    if person is None or not person.active:
        return None
    person.active = False
    led = list(session.scalars(select(Team).where(Team.leader_id == person_id).order_by(Team.id)))
    for team in led:  # a team is never led by someone who has left (the export, the leader's cards)
        team.leader_id = None
    detail: dict[str, Any] = {"reason": reason}
    if led:
        detail["no_longer_leads"] = [t.id for t in led]
    session.add(AuditLog(at=now, actor=by, action="person.deactivate", subject=person_id, detail=detail))
    session.flush()
    return person
