"""`planloop config export`: the database's configuration written back as a team file.

The database is the source of truth once the console edits it; this is the way back to a file a
person can read, keep in version control and `planloop apply` on another installation. Applying
the export to the database it came from changes nothing (tests/test_config_export.py).

Only what is active is written: a deactivated person, team or retired template stays in the
database with its history, and a file without them keeps them deactivated. A team chat's robot
webhook and secret are stored encrypted and never written out: the file names an environment
variable for each instead (``env:…``), and ``needed_env`` lists them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import tomli_w
from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.setup import BUILTIN_ROLES
from storage.models import CalendarDay, Identity, Kpi, Period, Person, Role, Scenario, Team, Template


@dataclass
class Export:
    data: dict[str, list[dict[str, Any]]]
    needed_env: list[str] = field(default_factory=list)  # env:NAME references the file makes


def webhook_env(team_id: str, what: str) -> str:
    """The environment variable an exported team file reads a team robot's ``webhook``/``secret`` from."""
    return f"PLANLOOP_TEAM_{re.sub(r'[^A-Z0-9]', '_', team_id.upper())}_{what.upper()}"


def export(session: Session) -> Export:
    """Every active team, person, KPI, template, period, scenario, calendar day and custom role."""
    out = Export(data={})
    teams = list(session.scalars(select(Team).where(Team.active.is_(True)).order_by(Team.id)))
    active = set(session.scalars(select(Person.id).where(Person.active.is_(True))))
    out.data["teams"] = [_team(t, out.needed_env, active) for t in teams]
    ids: dict[str, dict[str, str]] = {}
    for ident in session.scalars(select(Identity).order_by(Identity.bot_id)):
        if ident.bot_id != "sim":  # the simulator knows everyone by their person id
            ids.setdefault(ident.person_id, {})[ident.bot_id] = ident.external_id
    people = session.scalars(
        select(Person).where(Person.active.is_(True)).order_by(Person.team_id, Person.id)
    )
    out.data["people"] = [_person(p, ids.get(p.id, {})) for p in people]
    out.data["kpis"] = [_kpi(k) for k in session.scalars(select(Kpi).order_by(Kpi.key))]
    templates = session.scalars(select(Template).where(Template.active.is_(True)).order_by(Template.id))
    out.data["templates"] = [_template(t) for t in templates]
    out.data["periods"] = [
        {"id": p.id, "name": p.name, "from": p.start_md, "to": p.end_md}
        for p in session.scalars(select(Period).order_by(Period.id))
    ]
    out.data["scenarios"] = [
        {"id": s.id, "name": s.name, "active": s.active}
        for s in session.scalars(select(Scenario).order_by(Scenario.id))
    ]
    out.data["calendar"] = [
        {"date": d.day, "workday": d.workday, **({"name": d.name} if d.name else {})}
        for d in session.scalars(select(CalendarDay).order_by(CalendarDay.day))
    ]
    out.data["roles"] = [
        {"id": r.id, "name": r.name, "sections": r.sections, "promo_sections": r.promo_sections}
        for r in session.scalars(select(Role).order_by(Role.id))
        if not _builtin(r)
    ]
    out.data = {table: rows for table, rows in out.data.items() if rows}
    return out


def render(exported: Export, header: list[str]) -> str:
    """The team file's text: ``header`` lines as comments, then the tables."""
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header)
    # one document: TOML needs short arrays written inline (periods, scenarios) before the first [[table]]
    return comments + "\n" + tomli_w.dumps(exported.data)


def _team(team: Team, needed_env: list[str], active: set[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": team.id, "name": team.name}
    if team.leader_id in active:  # a leader who has left is not written: the file would not apply
        row["leader"] = team.leader_id
    chat: dict[str, Any] = {}
    if team.chat_bot:
        chat["bot"] = team.chat_bot
    if team.chat_id:
        chat["chat_id"] = team.chat_id
    for what, sealed in (("webhook", team.webhook_enc), ("secret", team.webhook_secret_enc)):
        if sealed:
            name = webhook_env(team.id, what)
            chat[what] = f"env:{name}"
            needed_env.append(name)
    if team.webhook_allow_private:
        chat["allow_private"] = True
    if chat:
        row["chat"] = chat
    row.update(timezone=team.timezone, lag_margin=team.lag_margin)
    row.update(plan_time=team.plan_day_time, plan_deadline=team.plan_deadline_time)
    if team.kpi_keys is not None:
        row["kpis"] = list(team.kpi_keys)
    return row


def _person(person: Person, ids: dict[str, str]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": person.id, "name": person.name, "team": person.team_id}
    row.update(role=person.role, type=person.type)
    if person.hire_date:
        row["hire_date"] = person.hire_date
    if ids:
        row["ids"] = ids
    return row


def _kpi(kpi: Kpi) -> dict[str, Any]:
    row: dict[str, Any] = {"key": kpi.key, "name": kpi.name, "unit": kpi.unit, "direction": kpi.direction}
    row["kind"] = kpi.kind
    if kpi.metric:
        row["metric"] = kpi.metric
    row["scope"] = kpi.scope
    return row


def _template(template: Template) -> dict[str, Any]:
    row: dict[str, Any] = {"id": template.id}
    if template.name:
        row["name"] = template.name
    for key in ("role", "period", "scenario", "employee_type"):
        value = getattr(template, key)
        if value is not None:
            row[key] = value
    row.update(_without_nulls(template.spec))
    return row


def _without_nulls(value: Any) -> Any:
    """TOML has no null: a template spec's absent settings are simply left out."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None]
    return value


def _builtin(role: Role) -> bool:
    """A built-in role as planloop defines it (every apply writes those): not worth a [[roles]] entry."""
    known = BUILTIN_ROLES.get(role.id)
    return known is not None and {
        "name": known["name"],
        "sections": known["sections"],
        "promo_sections": known["promo_sections"],
    } == {"name": role.name, "sections": role.sections, "promo_sections": role.promo_sections}
