"""Exports of a week (CONTRACT.md "Export"): plans now; progress and appraisals plug in the same way.

``export`` builds plain data; ``encode`` turns it into JSON, CSV or XLSX bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers import spreadsheets
from handlers.appraisal_export import appraisal_rows, export_appraisals
from handlers.progress import ItemProgress, week_progress
from handlers.spreadsheets import ExportError  # raised here too; callers catch exports.ExportError
from storage.models import Person, Plan, Team


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def export_plans(session: Session, week: str, *, team: str | None, now: datetime) -> dict[str, Any]:
    """Every active person of the team(s) with their current plan of ``week`` (status "missing" if none),
    and every deactivated person who filed a plan that week (``"active": false``): removing someone
    from the team file never removes the weeks they worked from an export."""
    filed = select(Plan.person_id).where(Plan.week == week)
    people_q = (
        select(Person)
        .where(Person.active.is_(True) | Person.id.in_(filed))
        .order_by(Person.team_id, Person.id)
    )
    if team:
        if session.get(Team, team) is None:
            raise ExportError(f"no team with id {team!r}")
        people_q = people_q.where(Person.team_id == team)
    people = list(session.scalars(people_q))
    plans = {
        p.person_id: p for p in session.scalars(select(Plan).where(Plan.week == week, Plan.current.is_(True)))
    }
    progress = _progress(session, list(plans.values()), now)
    out: list[dict[str, Any]] = []
    for person in people:
        plan = plans.get(person.id)
        if plan is None:
            out.append(
                {
                    "employee": person.id,
                    "team": person.team_id,
                    "active": person.active,
                    "status": "missing",
                    "submitted_at": None,
                    "version": 0,
                    "items": [],
                }
            )
            continue
        zone = ZoneInfo(person.team.timezone)
        items = []
        for item in plan.items:
            p = progress.get(item.id)
            items.append(
                {
                    "text": item.text,
                    "kpi": item.kpi_key,
                    "scope": item.scope,
                    "baseline": _num(item.baseline),
                    "target": _num(item.target),
                    "actual": _num(p.actual) if p else None,
                    "progress": _num(p.completion) if p else None,
                    "lagging": bool(p.lagging) if p else False,
                }
            )
        out.append(
            {
                "employee": person.id,
                "team": person.team_id,
                "active": person.active,
                "status": plan.status,
                "submitted_at": plan.submitted_at.astimezone(zone).isoformat(timespec="seconds"),
                "version": plan.version,
                "items": items,
            }
        )
    return {"week": week, "plans": out}


def _progress(session: Session, plans: list[Plan], now: datetime) -> dict[int, ItemProgress]:
    """Latest actual within the week, completion and lag per item: handlers.progress, one query a week."""
    out: dict[int, ItemProgress] = {}
    for week in sorted({p.week for p in plans}):
        people = [p.person_id for p in plans if p.week == week]
        for item in week_progress(session, week, now, person_ids=people):
            out[item.item_id] = item
    return out


def export_progress(session: Session, week: str, *, team: str | None, now: datetime) -> dict[str, Any]:
    """Each planned item's progress as of ``now``: actual, completion, expected pace, status."""
    if team and session.get(Team, team) is None:
        raise ExportError(f"no team with id {team!r}")
    by_person: dict[str, dict[str, Any]] = {}
    for item in week_progress(session, week, now, team_ids=[team] if team else None):
        entry = by_person.setdefault(
            item.person_id, {"employee": item.person_id, "team": item.team_id, "items": []}
        )
        entry["items"].append(
            {
                "text": item.text,
                "kpi": item.kpi_key,
                "scope": item.scope,
                "baseline": _num(item.baseline),
                "target": _num(item.target),
                "actual": _num(item.actual),
                "actual_date": item.actual_day.isoformat() if item.actual_day else None,
                "progress": _num(item.completion),
                "expected_pace": _num(item.pace),
                "status": item.status,
                "lagging": item.lagging,
            }
        )
    active = dict(session.execute(select(Person.id, Person.active).where(Person.id.in_(by_person))).all())
    for entry in by_person.values():
        entry["active"] = bool(active.get(entry["employee"], True))
    rows = sorted(by_person.values(), key=lambda e: (e["team"], e["employee"]))
    return {"week": week, "as_of": now.isoformat(timespec="seconds"), "progress": rows}


def _export_appraisals(session: Session, week: str, *, team: str | None, now: datetime) -> dict[str, Any]:
    return export_appraisals(session, week, team)


EXPORTERS: dict[str, Callable[..., dict[str, Any]]] = {
    "plans": export_plans,
    "progress": export_progress,
    "appraisals": _export_appraisals,
}


def export(session: Session, what: str, week: str, *, team: str | None, now: datetime) -> dict[str, Any]:
    exporter = EXPORTERS.get(what)
    if exporter is None:
        raise ExportError(f"export {what} is not available in this build")
    return exporter(session, week, team=team, now=now)


# Per export: the list in the JSON, the per-entry columns, the per-item columns (one CSV/XLSX row per item).
TABLES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "plans": (
        "plans",
        ("week", "employee", "team", "status", "submitted_at"),
        ("text", "kpi", "scope", "baseline", "target", "actual", "progress", "lagging"),
    ),
    "progress": (
        "progress",
        ("week", "employee", "team"),
        (
            "text",
            "kpi",
            "scope",
            "baseline",
            "target",
            "actual",
            "actual_date",
            "progress",
            "expected_pace",
            "status",
            "lagging",
        ),
    ),
    "appraisals": (
        "appraisals",
        ("week", "employee", "team", "version", "template", "template_reason", "score", "grade"),
        ("kpi", "weight", "baseline", "target", "actual", "completion", "contribution"),
    ),
}


# Per-entry columns added after the item columns, so the columns before them keep their places.
TAILS: dict[str, tuple[str, ...]] = {"plans": ("active",), "progress": ("active",)}


def flat_rows(data: dict[str, Any], what: str) -> tuple[list[str], list[list[Any]]]:
    """One row per item (a person without items keeps one row), for CSV and XLSX."""
    if what == "appraisals":
        return appraisal_rows(data)
    key, head, fields = TABLES[what]
    tail = TAILS.get(what, ())
    rows = []
    for entry in data[key]:
        first = [entry.get(col, data.get(col)) for col in head]
        last = [entry.get(col) for col in tail]
        for item in entry["items"] or [{}]:
            rows.append(first + [item.get(col) for col in fields] + last)
    return [*head, *fields, *tail], rows


def encode(data: dict[str, Any], what: str, fmt: str) -> bytes:
    if fmt == "json":
        return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    header, rows = flat_rows(data, what)
    if fmt == "csv":
        return spreadsheets.write_csv(header, rows)
    if fmt == "xlsx":
        return spreadsheets.write_xlsx(what, header, rows)
    raise ExportError(f"unknown format {fmt!r}")
