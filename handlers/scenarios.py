"""An admin turns a scenario (物流高峰 …) on or off; audited. The team file keeps what was switched
unless it names ``active`` itself (handlers/setup.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from storage.models import AuditLog, Scenario


def set_scenario(
    session: Session, scenario_id: str, active: bool, *, by: str, now: datetime
) -> Scenario | None:
    """The scenario after the change (None: no such scenario); a no-op change writes nothing."""
    row = session.get(Scenario, scenario_id)
    if row is None:
        return None
    if row.active != active:
        row.active = active
        session.add(
            AuditLog(
                at=now,
                actor=by,
                action="scenario.on" if active else "scenario.off",
                subject=f"scenario {scenario_id}",
                detail={"active": active},
            )
        )
    return row
