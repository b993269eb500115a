"""Benchmark: live progress for 10,000 people × 5 items over 1,000,000 metric samples.

    python bench/progress_bench.py                       # SQLite (a temp file) and PostgreSQL
    python bench/progress_bench.py --db sqlite --people 2000 --samples 200000
    python bench/progress_bench.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Data: 200 teams of 50; each person has 5 plan items on 5 KPIs, each item on its own
scope (a shop/SKU), so 50,000 metric series of 20 daily samples each, 7 of them inside the
week. The clock stands on Thursday 10:00, so every item's latest sample is Wednesday's.
Setup is not timed. The measured run is a fresh process (so its peak RSS is the query's,
not the loader's): ``handlers.progress.week_progress`` for the whole week, one SQL statement.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, insert, text  # noqa: E402

from storage.db import make_engine, make_sessionmaker, upgrade  # noqa: E402
from storage.models import Kpi, MetricSample, Person, Plan, PlanItem, Team  # noqa: E402

WEEK = "2026-W48"
MONDAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TEAM_SIZE = 50
KPIS = 5


def load(url: str, people: int, samples: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    days_per_series = max(1, samples // (people * KPIS))
    first_day = MONDAY + timedelta(days=7 - days_per_series)  # the series end on Sunday
    at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(Kpi),
            [
                {
                    "key": f"k{k}",
                    "name": f"指标{k}",
                    "unit": "%",
                    "direction": "up" if k % 2 == 0 else "down",
                    "metric": f"m{k}",
                    "kind": "metric",
                    "scope": "shop",
                }
                for k in range(KPIS)
            ],
        )
        teams = (people + TEAM_SIZE - 1) // TEAM_SIZE
        conn.execute(
            insert(Team),
            [
                {
                    "id": f"t{t}",
                    "name": f"团队{t}",
                    "leader_id": f"p{t * TEAM_SIZE}",
                    "timezone": "Asia/Shanghai",
                    "lag_margin": 20,
                    "plan_day_time": "10:00",
                    "plan_deadline_time": "14:00",
                    "active": True,
                }
                for t in range(teams)
            ],
        )
        conn.execute(
            insert(Person),
            [
                {
                    "id": f"p{i}",
                    "name": f"员工{i}",
                    "team_id": f"t{i // TEAM_SIZE}",
                    "role": "operations",
                    "type": "veteran",
                    "active": True,
                    "reminders_paused": False,
                }
                for i in range(people)
            ],
        )
        conn.execute(
            insert(Plan),
            [
                {
                    "id": i + 1,
                    "person_id": f"p{i}",
                    "team_id": f"t{i // TEAM_SIZE}",
                    "week": WEEK,
                    "version": 1,
                    "current": True,
                    "status": "submitted",
                    "submitted_at": at,
                    "submitted_via": "bench",
                    "unlocked": False,
                }
                for i in range(people)
            ],
        )
        conn.execute(
            insert(PlanItem),
            [
                {
                    "plan_id": i + 1,
                    "position": k + 1,
                    "section": "",
                    "text": f"事项{k}",
                    "kpi_key": f"k{k}",
                    "scope": f"s{i}",
                    "target_text": "+1",
                    "baseline": 3 if k % 2 == 0 else 5,
                    "target": 5 if k % 2 == 0 else 3,
                    "changes": "",
                    "causes": [],
                    "note": "",
                }
                for i in range(people)
                for k in range(KPIS)
            ],
        )
    rows = (
        (f"m{k}", f"s{i}", first_day + timedelta(days=d), f"{3 + (i % 17) * 0.1 + d * 0.01:.4f}")
        for i in range(people)
        for k in range(KPIS)
        for d in range(days_per_series)
    )
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with (
                raw.cursor() as cur,
                cur.copy(  # type: ignore[attr-defined]
                    "COPY metric_samples (metric, scope, day, value, source, fetched_at) FROM STDIN"
                ) as copy,
            ):
                for metric, scope, day, value in rows:
                    copy.write_row((metric, scope, day, value, "bench", at))
            raw.commit()
        finally:
            raw.close()
        # the steady state autovacuum keeps a real database in (visibility map set, statistics current)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        batch: list[dict] = []
        with engine.begin() as conn:
            for metric, scope, day, value in rows:
                batch.append(
                    {
                        "metric": metric,
                        "scope": scope,
                        "day": day,
                        "value": value,
                        "source": "bench",
                        "fetched_at": at,
                    }
                )
                if len(batch) == 50_000:
                    conn.execute(insert(MetricSample), batch)
                    batch.clear()
            if batch:
                conn.execute(insert(MetricSample), batch)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    from the parent across fork+exec, which would report the loader's peak, not ours."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def measure(url: str, trace: bool) -> dict:
    """Run in a fresh process: time (and optionally trace) one week_progress over everything."""
    from handlers.progress import week_progress

    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with sessions() as session:  # warm the connection and the planner's statistics
        session.execute(text("SELECT 1"))
    if trace:
        tracemalloc.start()
    rss_before = peak_rss_mb()
    statements.clear()
    started = time.perf_counter()
    with sessions() as session:
        items = week_progress(session, WEEK, NOW.astimezone(UTC), overrides={})
    elapsed = time.perf_counter() - started
    out = {
        "items": len(items),
        "lagging": sum(1 for i in items if i.lagging),
        "no_data": sum(1 for i in items if i.completion is None),
        "seconds": round(elapsed, 3),
        "statements": len(statements),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before,
    }
    if trace:
        out["python_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    engine.dispose()
    return out


def run(kind: str, url: str, people: int, samples: int) -> None:
    started = time.perf_counter()
    load(url, people, samples)
    print(
        f"{kind}: loaded {people} people × {KPIS} items, {samples:,} samples in {time.perf_counter() - started:.1f} s"
    )
    for trace in (False, True):
        proc = subprocess.run(
            [sys.executable, __file__, "--measure", url] + (["--trace"] if trace else []),
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        label = "traced (tracemalloc) " if trace else ""
        print(f"{kind}: {label}{json.dumps(result, ensure_ascii=False)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("PLANLOOP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--measure")
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.trace)))
        return
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            run("sqlite", f"sqlite:///{tmp}/bench.db", args.people, args.samples)
    if args.db in ("postgresql", "both"):
        admin = make_engine(args.pg_url, isolation_level="AUTOCOMMIT")
        name = f"planloop_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            run("postgresql", args.pg_url.rsplit("/", 1)[0] + f"/{name}", args.people, args.samples)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
