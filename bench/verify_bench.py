"""Benchmark: `planloop verify appraisals` on a large export, by hand.

    python bench/verify_bench.py [--appraisals 2000] [--items 5]

Builds an export of ``--appraisals`` published appraisals with ``--items`` metric items each (a
curve on one KPI, a capped item, a penalty), writes it as JSON, and times loading plus
recomputing every score with verify/appraisals.py. Each appraisal is built consistent, so the
run must report 0 discrepancies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appraisal.verify import load, verify  # noqa: E402


def _appraisal(n: int, items: int) -> dict:
    weights = {f"k{i}": 100 / items for i in range(items)}
    rows, total = [], 0.0
    for i in range(items):
        baseline, target = 3.0, 4.0
        actual = 3.0 + ((n + i) % 20) / 10  # 0 % … 190 %
        raw = (actual - baseline) / (target - baseline)
        scored = min(max(raw, 0.0), 1.5)
        if i == 0 and scored < 0.6:
            scored = 0.0  # the curve on k0: below 60 % counts 0
        contribution = weights[f"k{i}"] * scored
        total += contribution
        rows.append(
            {
                "item_id": n * items + i,
                "kpi": f"k{i}",
                "kind": "metric",
                "direction": "up",
                "status": "ok",
                "weight": weights[f"k{i}"],
                "baseline": baseline,
                "target": target,
                "actual": actual,
                "completion": raw,
                "scored_completion": scored,
                "capped": raw > 1.5,
                "contribution": contribution,
            }
        )
    count = n % 4
    points = max(-5 * count, -15)
    score = min(max(total + points, 0.0), 150.0)
    grades = {"S": 120, "A": 100, "B": 80, "C": 60}
    grade = next((g for g, b in sorted(grades.items(), key=lambda x: -x[1]) if round(score, 6) >= b), "D")
    return {
        "employee": f"p{n}",
        "team": "t",
        "week": "2026-W48",
        "version": 1,
        "status": "published",
        "weights": weights,
        "cap": 150,
        "curves": {"k0": [{"below": 60, "score": 0}]},
        "grades": grades,
        "score_cap": 150,
        "ratings": {},
        "allow_negative": False,
        "items": rows,
        "adjustments": [
            {
                "kind": "penalty",
                "kpi": "bad",
                "count": count,
                "per": -5,
                "min": -15,
                "max": 0,
                "points": points,
            }
        ],
        "score": score,
        "grade": grade,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appraisals", type=int, default=2000)
    parser.add_argument("--items", type=int, default=5)
    args = parser.parse_args()
    data = {"week": "2026-W48", "appraisals": [_appraisal(n, args.items) for n in range(args.appraisals)]}
    text = json.dumps(data)
    start = time.perf_counter()
    report = verify(load(text))
    took = time.perf_counter() - start
    print(f"{report.checked} appraisals × {args.items} items ({len(text) / 1e6:.1f} MB JSON)")
    print(f"load + verify: {took:.3f} s ({took / max(report.checked, 1) * 1e6:.0f} µs per appraisal)")
    print(f"discrepancies: {len(report.discrepancies)}")
    for line in report.lines()[:5]:
        print("  " + line)


if __name__ == "__main__":
    main()
