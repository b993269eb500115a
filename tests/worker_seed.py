"""Rows for the worker tests, inserted directly: a team, people with simulator identities, KPIs, plans, samples."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from storage.models import CalendarDay, Identity, Kpi, MetricSample, Person, Plan, PlanItem, Team

SIM = "sim"


def team(
    session: Session, team_id: str = "ops", *, leader: str | None = "zhangwei", name: str = "运营组", **kw
) -> Team:
    kw.setdefault("chat_bot", SIM)
    row = Team(id=team_id, name=name, leader_id=leader, chat_id=team_id, **kw)
    session.add(row)
    session.flush()
    return row


def person(
    session: Session, person_id: str, name: str, team_id: str = "ops", *, bot: str = SIM, **kw
) -> Person:
    row = Person(id=person_id, name=name, team_id=team_id, role="operations", **kw)
    session.add(row)
    session.flush()
    if bot:
        session.add(Identity(bot_id=bot, external_id=person_id, person_id=person_id))
    session.flush()
    return row


def kpi(
    session: Session,
    key: str,
    name: str,
    *,
    unit: str = "%",
    direction: str = "up",
    metric: str = "",
    rating: bool = False,
) -> Kpi:
    """A metric KPI (its metric defaults to its key), or a rating KPI with no metric."""
    row = Kpi(
        key=key,
        name=name,
        unit=unit,
        direction=direction,
        metric=None if rating else (metric or key),
        kind="rating" if rating else "metric",
    )
    session.add(row)
    session.flush()
    return row


def plan(
    session: Session,
    person_id: str,
    week: str,
    items: list[tuple[str, str, str, str, str]],
    *,
    at: datetime,
    team_id: str = "ops",
    version: int = 1,
    current: bool = True,
) -> Plan:
    """``items``: (text, kpi key, scope, baseline, target)."""
    row = Plan(
        person_id=person_id,
        team_id=team_id,
        week=week,
        submitted_at=at,
        status="submitted",
        version=version,
        current=current,
    )
    for n, (text, kpi_key, scope, baseline, target) in enumerate(items, start=1):
        row.items.append(
            PlanItem(
                position=n,
                text=text,
                kpi_key=kpi_key,
                scope=scope,
                target_text=f"={target}",
                baseline=Decimal(baseline) if baseline else None,
                target=Decimal(target) if target else None,
            )
        )
    session.add(row)
    session.flush()
    return row


def sample(session: Session, metric: str, day: str, value: str, *, scope: str = "shop", at: datetime) -> None:
    existing = session.get(MetricSample, (metric, scope, date.fromisoformat(day)))
    if existing is not None:
        existing.value = Decimal(value)
        existing.fetched_at = at
    else:
        session.add(
            MetricSample(
                metric=metric,
                scope=scope,
                day=date.fromisoformat(day),
                value=Decimal(value),
                source="test",
                fetched_at=at,
            )
        )
    session.flush()


def calendar_day(session: Session, day: str, workday: bool, name: str = "") -> None:
    session.add(CalendarDay(day=date.fromisoformat(day), workday=workday, name=name))
    session.flush()
