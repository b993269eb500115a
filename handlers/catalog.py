"""The set-up as data, for the open API and the console: teams, people, KPIs, templates (with their
versions), periods (presets included) and scenarios, each a list of plain dicts in a stable order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.appraisals import load_periods
from storage.models import Kpi, Person, Scenario, Team, Template, TemplateVersion


def teams(session: Session, team: str | None = None) -> list[dict[str, Any]]:
    q = select(Team).order_by(Team.id)
    if team is not None:
        q = q.where(Team.id == team)
    return [
        {"id": t.id, "name": t.name, "leader": t.leader_id, "timezone": t.timezone, "active": t.active}
        for t in session.scalars(q)
    ]


def people(session: Session, team: str | None = None) -> list[dict[str, Any]]:
    q = select(Person).order_by(Person.team_id, Person.id)
    if team is not None:
        q = q.where(Person.team_id == team)
    return [
        {"id": p.id, "name": p.name, "team": p.team_id, "role": p.role, "type": p.type, "active": p.active}
        for p in session.scalars(q)
    ]


def kpis(session: Session) -> list[dict[str, Any]]:
    return [
        {
            "key": k.key,
            "name": k.name,
            "unit": k.unit,
            "direction": k.direction,
            "metric": k.metric,
            "kind": k.kind,
            "scope": k.scope,
        }
        for k in session.scalars(select(Kpi).order_by(Kpi.key))
    ]


def templates(session: Session) -> list[dict[str, Any]]:
    versions: dict[str, list[dict[str, Any]]] = {}
    for v in session.scalars(
        select(TemplateVersion).order_by(TemplateVersion.template_id, TemplateVersion.version)
    ):
        versions.setdefault(v.template_id, []).append(
            {"version": v.version, "reason": v.reason, "entry": v.entry}
        )
    return [
        {
            "id": t.id,
            "name": t.name,
            "role": t.role,
            "period": t.period,
            "scenario": t.scenario,
            "employee_type": t.employee_type,
            "active": t.active,
            "spec": dict(t.spec or {}),
            "versions": versions.get(t.id, []),
        }
        for t in session.scalars(select(Template).order_by(Template.id))
    ]


def periods(session: Session) -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "name": p.name,
            "from": f"{p.start[0]:02d}-{p.start[1]:02d}",
            "to": f"{p.end[0]:02d}-{p.end[1]:02d}",
        }
        for p in sorted(load_periods(session).values(), key=lambda p: p.id)
    ]


def scenarios(session: Session) -> list[dict[str, Any]]:
    return [
        {"id": s.id, "name": s.name, "active": s.active}
        for s in session.scalars(select(Scenario).order_by(Scenario.id))
    ]
