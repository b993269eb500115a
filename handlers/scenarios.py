"""An admin turns a scenario (物流高峰 …) on or off, audited as ``scenario.on`` / ``scenario.off``.

The next appraisal run selects templates with it (handlers/appraisals.Rules). The team file keeps
what was switched unless it names ``active`` itself (handlers/setup.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import AuditLog, Scenario


class ScenarioError(Exception):
    """No such scenario; the message says which exist."""


def all_scenarios(session: Session) -> list[Scenario]:
    return list(session.scalars(select(Scenario).order_by(Scenario.id)))


def set_scenario(session: Session, scenario_id: str, active: bool, *, by: str, now: datetime) -> Scenario:
    """The scenario after the change; a repeat changes nothing and writes no audit line."""
    row = session.get(Scenario, scenario_id, with_for_update=True)
    if row is None:
        known = "、".join(s.id for s in all_scenarios(session)) or "（无）"
        raise ScenarioError(f"没有 id 为“{scenario_id}”的场景（可选：{known}）")
    if row.active != active:
        row.active = active
        session.add(
            AuditLog(
                at=now,
                actor=by,
                action="scenario.on" if active else "scenario.off",
                subject=f"scenario {scenario_id}",
                detail={"scenario": scenario_id, "active": active},
            )
        )
    return row
