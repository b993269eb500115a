"""The rules a run used, as a third party reads them (issue 16): a template in the team file's units.

``rules_of(template)`` is what an appraisal stores in ``appraisals.rules`` and what ``export
appraisals`` shows: weights (points), ``cap`` (a percentage, as in the team file), curves and the
rating scale (percentages), grades (lower bounds, points) and ``score_cap`` (points: the total is
kept within 0 … cap × 100). ``flag_codes`` names the conditions of a result in words a script can
test (``late``, ``on_leave``, ``missing_data``, ``manual_rating`` …).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from appraisal.completion import HUNDRED
from appraisal.scoring import Result
from appraisal.templates import Template


def _n(value: Decimal) -> int | float:
    """A JSON number: an int when whole, else a float (rules are written by people, short decimals)."""
    return int(value) if value == value.to_integral_value() else float(value)


def rules_of(template: Template, version: int | None = None) -> dict[str, Any]:
    return {
        "template": template.id,
        "template_version": version,
        "weights": {k: _n(v) for k, v in template.weights.items()},
        "cap": _n(template.cap * HUNDRED),
        "curves": {
            key: [{"below": _n(s.below * HUNDRED), "score": _n(s.value * HUNDRED)} for s in curve.steps]
            for key, curve in template.curves.items()
        },
        "grades": {letter: _n(bound) for letter, bound in template.grades},
        "score_cap": _n(template.cap * HUNDRED),
        "allow_negative": template.allow_negative,
        "ratings": {str(stars): _n(ratio * HUNDRED) for stars, ratio in sorted(template.ratings.items())},
        "adjustments": [
            {"kpi": a.kpi, "name": a.name, "points": _n(a.points), "min": _n(a.low), "max": _n(a.high)}
            for a in template.adjustments
        ],
    }


def flag_codes(result: Result, *, late: bool, on_leave: bool, no_plan: bool, held: bool) -> list[str]:
    """The result's conditions as codes, in a fixed order."""
    rows = result.rows
    codes: Iterable[tuple[str, bool]] = (
        ("late", late),
        ("on_leave", on_leave),
        ("no_plan", no_plan),
        ("held", held),
        ("missing_data", any(r.status == "missing" and r.kind == "metric" for r in rows)),
        ("manual_rating", any(r.kind in ("rating", "checklist") and r.completion is not None for r in rows)),
        ("unplanned", any(r.status == "unplanned" for r in rows)),
        ("outside_template", any(r.status == "outside" for r in rows)),
        ("appeal_excluded", any(r.status == "excluded" for r in rows)),
        ("appeal_corrected", any("申诉后" in f and "更正" in f for r in rows for f in r.flags)),
        ("adjusted", any(a.points for a in result.adjustments)),
    )
    return [code for code, on in codes if on]
