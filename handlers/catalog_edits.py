"""One KPI or one template written without a file (the open API's PUT): checked by the team file's
own validation (handlers.setup.parse, with the KPIs, roles and scenarios as stored), a template
edit versioned (handlers/template_versions.py), every write audited with who made it.

``planloop apply`` still owns the whole set-up: a later apply of a file without this template
retires it, as it retires any template the file leaves out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers.setup import TeamFileError, parse
from handlers.template_versions import entry_of, record
from storage.db import upsert
from storage.models import AuditLog, Kpi, Role, Scenario, Template


def _stored(session: Session, skip_kpi: str = "") -> dict[str, Any]:
    """The stored KPIs, roles and scenarios as a team file's tables (what a template may name)."""
    kpis = [
        {
            k: v
            for k, v in {
                "key": k.key,
                "name": k.name,
                "unit": k.unit,
                "direction": k.direction,
                "metric": k.metric,
                "kind": k.kind,
                "scope": k.scope,
            }.items()
            if v is not None
        }
        for k in session.scalars(select(Kpi).order_by(Kpi.key))
        if k.key != skip_kpi
    ]
    roles = [
        {"id": r.id, "name": r.name, "sections": list(r.sections), "promo_sections": list(r.promo_sections)}
        for r in session.scalars(select(Role).order_by(Role.id))
    ]
    scenarios = [
        {"id": s.id, "name": s.name} for s in session.scalars(select(Scenario).order_by(Scenario.id))
    ]
    return {"kpis": kpis, "roles": roles, "scenarios": scenarios}


def put_kpi(
    session: Session, key: str, entry: Mapping[str, Any], *, actor: str, now: datetime, via: str = "api"
) -> tuple[Kpi, bool]:
    """Create or replace KPI ``key``; (row, created). TeamFileError with every problem. ``via``
    names the door in the audit log: ``api.kpi.put`` or ``console.kpi.put``."""
    doc = _stored(session, skip_kpi=key)
    doc["kpis"].append({**entry, "key": key})
    values = parse(doc)["kpis"][key]
    row, before = upsert(session, Kpi, key, values)
    session.add(
        AuditLog(
            at=now,
            actor=actor,
            action=f"{via}.kpi.put",
            subject=f"kpi {key}",
            detail={"before": before, "after": values},
        )
    )
    session.flush()
    return row, before is None


def check_template(session: Session, template_id: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The template's columns and spec as ``put_template`` would store them; TeamFileError with
    every problem. Writes nothing (the console's validation as you type)."""
    doc = _stored(session)
    doc["templates"] = [{**{k: v for k, v in entry.items() if v is not None}, "id": template_id}]
    values: dict[str, Any] = parse(doc)["templates"][template_id]
    return values


def put_template(
    session: Session,
    template_id: str,
    entry: Mapping[str, Any],
    *,
    actor: str,
    now: datetime,
    via: str = "api",
) -> tuple[Template, int]:
    """Create or replace template ``template_id``; (row, version in force). TeamFileError with every problem."""
    values = check_template(session, template_id, entry)
    row = session.get(Template, template_id)
    before = entry_of(row) if row is not None else None
    if row is None:
        row = Template(id=template_id, **values, active=True)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
        row.active = True
    session.flush()
    version = record(session, row, now, f"{via.upper() if via == 'api' else via} ({actor})")
    session.add(
        AuditLog(
            at=now,
            actor=actor,
            action=f"{via}.template.put",
            subject=f"template {template_id}",
            detail={"version": version, "before": before, "after": entry_of(row)},
        )
    )
    session.flush()
    return row, version


__all__ = ["TeamFileError", "check_template", "put_kpi", "put_template"]
