"""Exports of a week (CONTRACT.md "Export"): plans now; progress and appraisals plug in the same way.

``export`` builds plain data; ``encode`` turns it into JSON, CSV or XLSX bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Person, Plan, Team


class ExportError(Exception):
    pass


def _num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def export_plans(session: Session, week: str, *, team: str | None, now: datetime) -> dict[str, Any]:
    """Every active person of the team(s) with their current plan of ``week`` (status "missing" if none)."""
    people_q = select(Person).where(Person.active.is_(True)).order_by(Person.team_id, Person.id)
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
                "status": plan.status,
                "submitted_at": plan.submitted_at.astimezone(zone).isoformat(timespec="seconds"),
                "version": plan.version,
                "items": items,
            }
        )
    return {"week": week, "plans": out}


@dataclass(frozen=True)
class _ItemProgress:
    actual: Decimal | None
    completion: Decimal | None
    lagging: bool


def _progress(session: Session, plans: list[Plan], now: datetime) -> dict[int, _ItemProgress]:
    """Latest actual within the week, completion and lag per item: handlers.progress, one query a week."""
    from handlers.progress import week_progress

    out: dict[int, _ItemProgress] = {}
    for week in sorted({p.week for p in plans}):
        people = [p.person_id for p in plans if p.week == week]
        for item in week_progress(session, week, now, person_ids=people):
            out[item.item_id] = _ItemProgress(item.actual, item.completion, item.lagging)
    return out


def _export_appraisals(session: Session, week: str, *, team: str | None, now: datetime) -> dict[str, Any]:
    from handlers.appraisals import export_appraisals

    return export_appraisals(session, week, team)


EXPORTERS: dict[str, Callable[..., dict[str, Any]]] = {
    "plans": export_plans,
    "appraisals": _export_appraisals,
}


def export(session: Session, what: str, week: str, *, team: str | None, now: datetime) -> dict[str, Any]:
    exporter = EXPORTERS.get(what)
    if exporter is None:
        raise ExportError(f"export {what} is not available in this build")
    return exporter(session, week, team=team, now=now)


def flat_rows(data: dict[str, Any], what: str) -> tuple[list[str], list[list[Any]]]:
    """One row per item (plans, progress) or per KPI row (appraisals), for CSV and XLSX."""
    if what == "appraisals":
        header = [
            "week",
            "employee",
            "team",
            "version",
            "template",
            "template_reason",
            "score",
            "grade",
            "kpi",
            "weight",
            "baseline",
            "target",
            "actual",
            "completion",
            "contribution",
        ]
        rows = []
        for a in data["appraisals"]:
            head = [
                a["week"],
                a["employee"],
                a["team"],
                a["version"],
                a["template"],
                a["template_reason"],
                a["score"],
                a["grade"],
            ]
            for item in a["items"] or [{}]:
                rows.append(head + [item.get(k) for k in header[8:]])
        return header, rows
    key = "plans" if "plans" in data else what
    header = [
        "week",
        "employee",
        "team",
        "status",
        "submitted_at",
        "text",
        "kpi",
        "scope",
        "baseline",
        "target",
        "actual",
        "progress",
        "lagging",
    ]
    rows = []
    for plan in data[key]:
        head = [data["week"], plan["employee"], plan["team"], plan["status"], plan["submitted_at"]]
        for item in plan["items"] or [{}]:
            rows.append(head + [item.get(k) for k in header[5:]])
    return header, rows


def encode(data: dict[str, Any], what: str, fmt: str) -> bytes:
    if fmt == "json":
        return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    header, rows = flat_rows(data, what)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        writer.writerows(rows)
        return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel on Windows opens it as UTF-8
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(what)
        sheet.append(header)
        for row in rows:
            sheet.append(row)
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()
    raise ExportError(f"unknown format {fmt!r}")
