"""Hostile input, measured by hand (issue 17): XLSX bombs refused, and what the JSON depth scan costs.

    python bench/hostile.py             # bombs (each read in its own process) + JSON timings

Bombs are built by tests/test_hostile_imports.build_xlsx in a temp folder; each is read with the
default limits in a fresh process, which reports its time and peak RSS.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from sources import jsonlimits  # noqa: E402
from tests.test_hostile_imports import MEASURE, build_xlsx  # noqa: E402

BOMBS = {
    "200 MB of shared strings": {"shared_strings_mb": 200},
    "1,000,000 varied rows": {"rows": 1_000_000, "random_values": True},
    "3,000,000 rows, same value": {"rows": 3_000_000},
    "A1:XFD1048576 dimension, 5,000 rows": {"rows": 5000, "dimension": "A1:XFD1048576"},
}


def bombs() -> None:
    folder = Path(tempfile.mkdtemp())
    print("| bomb | file | refused by | seconds | peak RSS |\n|---|---|---|---|---|")
    for name, shape in BOMBS.items():
        path = build_xlsx(folder / "bomb.xlsx", **shape)
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, str(path)], cwd=ROOT, capture_output=True, text=True, check=True
        )
        m = json.loads(out.stdout)
        size = path.stat().st_size / 1e6
        why = m["refused"] or "not refused"
        print(f"| {name} | {size:.2f} MB | {why} | {m['seconds']:.2f} | {m['rss_mb']:.0f} MB |")
        path.unlink()


def json_costs() -> None:
    event = json.dumps(
        {"schema": "2.0", "header": {"event_id": "e" * 32, "token": "t" * 20},
         "event": {"message": {"content": json.dumps({"text": "写计划 " * 50}), "mentions": []}}}
    )  # fmt: skip
    big = json.dumps([{"date": "2026-11-23", "shop": "旗舰店", "gmv": 1234.5, "note": "x" * 20}] * 12_000)
    for label, text in (("a 1 KB platform event", event), (f"a {len(big) / 1e6:.1f} MB source answer", big)):
        n = 2000 if len(text) < 10_000 else 5
        started = time.perf_counter()
        for _ in range(n):
            json.loads(text)
        plain = (time.perf_counter() - started) / n
        started = time.perf_counter()
        for _ in range(n):
            jsonlimits.loads(text, max_bytes=10 * len(text))
        bounded = (time.perf_counter() - started) / n
        print(f"{label}: json.loads {plain * 1e6:.0f} µs, bounded {bounded * 1e6:.0f} µs")
    deep = "[" * 5000 + "]" * 5000
    started = time.perf_counter()
    try:
        jsonlimits.loads(deep)
    except jsonlimits.JsonLimitError:
        pass
    print(f"5000-deep body refused in {(time.perf_counter() - started) * 1e6:.0f} µs")


if __name__ == "__main__":
    print(f"{platform.node()} · Python {platform.python_version()} · {time.strftime('%Y-%m-%d')}")
    bombs()
    json_costs()
