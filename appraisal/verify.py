"""Recompute every published appraisal from ``export appraisals`` alone (issue 16).

Standard library only, and on purpose no import of the rest of ``appraisal/`` (a test checks): this is the check a third party
would write from docs/appraisal.md. Per item, from the exported fields:

- metric:    completion = (actual − baseline) / (target − baseline), or for a "down" KPI
             (baseline − actual) / (baseline − target);
  rating:    completion = ratings[stars] / 100;  checklist: completion = done / planned;
- scored_completion: floored at 0 (at −cap / 100 when ``allow_negative``), through the KPI's
  curve (the first step whose ``below`` the completion is under gives its ``score``), then at most
  cap / 100;
- contribution = weight × scored_completion (0 without a completion);
- the counted items of a KPI share its weight: Σ weight = weights[kpi] × 100 / Σ weights of the
  KPIs not excluded;
- adjustments: points = clamp(count × per, min, max);
- score = clamp(Σ contribution + Σ adjustments.points, 0, score_cap); grade = the highest band of
  ``grades`` whose lower bound the score reaches, else D.

Exported numbers are JSON numbers (binary floats); two values agree within ``TOLERANCE``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

TOLERANCE = Decimal("0.000001")  # points, and ratios; far below what a card shows (0.1 point)
LOWEST = "D"


@dataclass(frozen=True)
class Discrepancy:
    who: str
    what: str
    published: Any
    recomputed: Any

    def __str__(self) -> str:
        return f"{self.who}: {self.what} published {self.published} ≠ recomputed {self.recomputed}"


def _d(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _differ(a: Decimal | None, b: Decimal | None) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return abs(a - b) > TOLERANCE


def _raw(item: Mapping[str, Any], ratings: Mapping[str, Any]) -> Decimal | None:
    kind = item.get("kind", "metric")
    if kind == "rating":
        stars = item.get("rating")
        scale = _d(ratings.get(str(stars))) if stars is not None else None
        return None if scale is None else scale / 100
    if kind == "checklist":
        done, planned = _d(item.get("done")), _d(item.get("planned"))
        if done is None or planned is None or planned <= 0:
            return None
        return done / planned
    b, t, a = _d(item.get("baseline")), _d(item.get("target")), _d(item.get("actual"))
    if b is None or t is None or a is None or t == b:
        return None
    if item.get("direction") == "down":
        return (b - a) / (b - t)
    return (a - b) / (t - b)


def _scored(raw: Decimal, steps: Sequence[Mapping[str, Any]], cap: Decimal, negative: bool) -> Decimal:
    ratio = max(raw, -cap) if negative else max(raw, Decimal(0))
    for step in steps:
        if ratio < Decimal(str(step["below"])) / 100:
            ratio = Decimal(str(step["score"])) / 100
            break
    return min(ratio, cap)


def grade_of(score: Decimal, grades: Mapping[str, Any]) -> str:
    for letter, bound in sorted(grades.items(), key=lambda g: Decimal(str(g[1])), reverse=True):
        if score >= Decimal(str(bound)):
            return letter
    return LOWEST


def check(appraisal: Mapping[str, Any]) -> list[Discrepancy]:
    """Every disagreement between one exported appraisal and its recomputation."""
    who = f"{appraisal.get('employee')} {appraisal.get('week')} v{appraisal.get('version')}"
    out: list[Discrepancy] = []
    cap = Decimal(str(appraisal.get("cap", 150))) / 100
    curves = appraisal.get("curves") or {}
    ratings = appraisal.get("ratings") or {}
    negative = bool(appraisal.get("allow_negative"))
    weights = {k: Decimal(str(v)) for k, v in (appraisal.get("weights") or {}).items()}
    items = appraisal.get("items") or []
    excluded = {i["kpi"] for i in items if i.get("status") == "excluded"}
    kept = sum((w for k, w in weights.items() if k not in excluded), Decimal(0))
    total = Decimal(0)
    shares: dict[str, Decimal] = {}
    for item in items:
        label = f"item {item.get('item_id')} ({item.get('kpi')})"
        weight = _d(item.get("weight")) or Decimal(0)
        if item.get("status") not in ("outside", "excluded"):
            shares[item["kpi"]] = shares.get(item["kpi"], Decimal(0)) + weight
        raw = _raw(item, ratings)
        if _differ(_d(item.get("completion")), raw):
            out.append(Discrepancy(who, f"{label} completion", item.get("completion"), raw))
        scored = None if raw is None else _scored(raw, curves.get(item["kpi"], []), cap, negative)
        if _differ(_d(item.get("scored_completion")), scored):
            out.append(Discrepancy(who, f"{label} scored_completion", item.get("scored_completion"), scored))
        if scored is not None and bool(item.get("capped")) != (raw is not None and raw > cap):
            out.append(Discrepancy(who, f"{label} capped", item.get("capped"), raw is not None and raw > cap))
        contribution = weight * scored if scored is not None else Decimal(0)
        if _differ(_d(item.get("contribution")) or Decimal(0), contribution):
            out.append(Discrepancy(who, f"{label} contribution", item.get("contribution"), contribution))
        total += contribution
    for key, weight in weights.items():
        if key in excluded or not kept:
            continue
        expected = weight * 100 / kept
        if _differ(shares.get(key, Decimal(0)), expected):
            out.append(Discrepancy(who, f"weights of {key}", shares.get(key), expected))
    for adj in appraisal.get("adjustments") or []:
        points = _d(adj.get("points")) or Decimal(0)
        count, per = _d(adj.get("count")), _d(adj.get("per"))
        if count is not None and per is not None:
            low, high = _d(adj.get("min")) or Decimal(0), _d(adj.get("max")) or Decimal(0)
            expected = min(max(count * per, low), high)
            if _differ(points, expected):
                out.append(
                    Discrepancy(who, f"adjustment {adj.get('kpi')} points", adj.get("points"), expected)
                )
        total += points
    ceiling = Decimal(str(appraisal.get("score_cap", 150)))
    score = min(max(total, Decimal(0)), ceiling)
    if _differ(_d(appraisal.get("score")), score):
        out.append(Discrepancy(who, "score", appraisal.get("score"), score))
    grade = grade_of(round(score, 6), appraisal.get("grades") or {})
    if grade != appraisal.get("grade"):
        out.append(Discrepancy(who, "grade", appraisal.get("grade"), grade))
    return out


@dataclass(frozen=True)
class Report:
    checked: int
    held: int
    discrepancies: tuple[Discrepancy, ...]

    def lines(self) -> list[str]:
        out = [str(d) for d in self.discrepancies]
        out.append(
            f"{self.checked} published appraisals recomputed, {self.held} held (not scored), "
            f"{len(self.discrepancies)} discrepancies"
        )
        return out


def verify(data: Mapping[str, Any], team: str | None = None) -> Report:
    """Check every published appraisal of an export (one team's when ``team`` is given)."""
    entries: Iterable[Mapping[str, Any]] = data.get("appraisals") or []
    if team:
        entries = [a for a in entries if a.get("team") == team]
    checked = held = 0
    found: list[Discrepancy] = []
    for entry in entries:
        if entry.get("status", "published") != "published":
            held += 1
            continue
        checked += 1
        found.extend(check(entry))
    return Report(checked, held, tuple(found))


def load(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("appraisals"), list):
        raise ValueError('not an `export appraisals` JSON file (no "appraisals" list)')
    return data
