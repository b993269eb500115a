"""``export appraisals`` (issue 16): everything a third party needs to recompute every score.

Per appraisal: who, the version and why, ``status`` (``published`` | ``held``), the template, its
version and why it applied, the rules in force for that run (``weights``, ``cap`` %, ``curves``,
``grades``, ``score_cap`` points, ``allow_negative``, ``ratings``), ``flags`` (codes) and ``notes``
(the sentences the card shows), the score and grade, one entry per plan item (a template KPI with
no plan item has ``item_id: null``) and the ``adjustments``. The rule, also in docs/appraisal.md:

    score = clamp(Σ items.contribution + Σ adjustments.points, 0, score_cap); grade from grades

CSV and XLSX are one row per item with the appraisal's fields repeated, and one row of kind
``adjustment`` per adjustment; the first columns keep CONTRACT.md's order.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from appraisal.rules import rules_of
from appraisal.selection import week_days
from handlers.appraisals import load_templates
from handlers.spreadsheets import ExportError
from storage.models import Appraisal, Person, Team


def _number(value: Any) -> float | int | None:
    if value is None or value == "":
        return None
    d = Decimal(str(value))
    return int(d) if d == d.to_integral_value() and abs(d) < 10**15 else float(d)


def _float(value: Any) -> float | None:
    return None if value is None or value == "" else float(Decimal(str(value)))


def _item(row: dict[str, Any], cap: Decimal) -> dict[str, Any]:
    raw, counted = row.get("raw"), row.get("completion")
    kind = str(row.get("kind") or "metric")
    out: dict[str, Any] = {
        "kpi": row["kpi"],
        "weight": _number(row.get("weight")),
        "baseline": _float(row.get("baseline")),
        "target": _float(row.get("target")),
        "actual": _float(row.get("actual")),
        "completion": _float(raw if raw is not None else counted),
        "contribution": _float(row.get("contribution")),
        "item_id": row.get("item_id"),
        "text": row.get("text") or "",
        "scope": row.get("scope") or "",
        "kind": kind,
        "direction": row.get("direction") or "up",
        "unit": row.get("unit") or "",
        "status": row.get("status") or "ok",
        "scored_completion": _float(counted),
        "capped": raw is not None and raw != "" and Decimal(str(raw)) > cap,
    }
    if kind == "rating":
        out["rating"] = row.get("stars")
    if kind == "checklist":
        out["done"], out["planned"] = row.get("done"), row.get("planned")
    return out


def _adjustment(row: dict[str, Any]) -> dict[str, Any]:
    points, per = Decimal(str(row.get("points") or 0)), Decimal(str(row.get("per") or 0))
    count = Decimal(str(row.get("count") or 0))
    name = str(row.get("name") or row.get("kpi"))
    return {
        "kind": "bonus" if (points > 0 or (points == 0 and per > 0)) else "penalty",
        "points": _number(points),
        "reason": f"{name} {count.normalize():f} 次 × {per.normalize():f} 分",
        "kpi": row.get("kpi"),
        "count": _number(count),
        "per": _number(per),
        "min": _number(row.get("low")),
        "max": _number(row.get("high")),
    }


def _rules(session: Session, row: Appraisal) -> dict[str, Any]:
    if row.rules:
        return dict(row.rules)
    # a result stored before issue 16: the template as it is now
    template = next((t for t in load_templates(session) if t.id == row.template_id), None)
    return rules_of(template) if template is not None else {}


def appraisal_entry(session: Session, row: Appraisal, active: bool = True) -> dict[str, Any]:
    rules = _rules(session, row)
    cap = Decimal(str(rules.get("cap", 150))) / 100
    stored = [i for i in row.items or [] if isinstance(i, dict)]
    return {
        "employee": row.person_id,
        "team": row.team_id,
        "week": row.week,
        "version": row.version,
        "template": row.template_id,
        "template_reason": row.template_reason,
        "score": float(row.score),
        "grade": row.grade,
        "items": [_item(i, cap) for i in stored if i.get("kind") != "adjustment"],
        "active": active,
        "status": row.status or "published",
        "version_reason": row.version_reason,
        "template_version": rules.get("template_version"),
        "weights": rules.get("weights", {}),
        "cap": rules.get("cap"),
        "curves": rules.get("curves", {}),
        "grades": rules.get("grades", {}),
        "score_cap": rules.get("score_cap"),
        "allow_negative": rules.get("allow_negative", False),
        "ratings": rules.get("ratings", {}),
        "flags": list(rules.get("flags", [])),
        "notes": [str(f) for f in row.flags or []],
        "adjustments": [_adjustment(i) for i in stored if i.get("kind") == "adjustment"],
    }


def export_appraisals(session: Session, week: str, team: str | None = None) -> dict[str, Any]:
    """The newest version of every appraisal of ``week`` (held ones too, marked), removed people
    included with ``"active": false``."""
    week_days(week)
    query = select(Appraisal).where(Appraisal.week == week, Appraisal.current.is_(True))
    if team is not None:
        if session.get(Team, team) is None:
            raise ExportError(f"no team with id {team!r}")
        query = query.where(Appraisal.team_id == team)
    rows = list(session.scalars(query.order_by(Appraisal.team_id, Appraisal.person_id)))
    ids = {r.person_id for r in rows}
    active = dict(session.execute(select(Person.id, Person.active).where(Person.id.in_(ids))).all())
    return {
        "week": week,
        "rule": "score = clamp(Σ items.contribution + Σ adjustments.points, 0, score_cap)",
        "appraisals": [appraisal_entry(session, r, bool(active.get(r.person_id, True))) for r in rows],
    }


# ---------------------------------------------------------------- CSV / XLSX

HEAD = ("week", "employee", "team", "version", "template", "template_reason", "score", "grade")
ITEM = ("kpi", "weight", "baseline", "target", "actual", "completion", "contribution")
MORE = (
    "item_id",
    "text",
    "scope",
    "kind",
    "direction",
    "unit",
    "status",
    "scored_completion",
    "capped",
    "rating",
    "done",
    "planned",
    "points",
    "reason",
)
TAIL = (
    "active",
    "appraisal_status",
    "template_version",
    "version_reason",
    "weights",
    "cap",
    "curves",
    "grades",
    "score_cap",
    "allow_negative",
    "ratings",
    "flags",
    "notes",
)


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        return (
            json.dumps(value, ensure_ascii=False, sort_keys=True)
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value))
            else ";".join(value)
        )
    return value


def appraisal_rows(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    rows: list[list[Any]] = []
    for entry in data["appraisals"]:
        first = [entry.get(col, data.get(col)) for col in HEAD]
        last = [_cell(entry.get("status" if col == "appraisal_status" else col)) for col in TAIL]
        for item in entry["items"] or [{}]:
            rows.append(first + [item.get(c) for c in ITEM] + [item.get(c) for c in MORE] + last)
        for adj in entry.get("adjustments", []):
            shaped = {**adj, "kind": "adjustment"}
            middle = [shaped.get(c) for c in ITEM] + [shaped.get(c) for c in MORE]
            rows.append(first + middle + last)
    return [*HEAD, *ITEM, *MORE, *TAIL], rows
