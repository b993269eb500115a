"""100,000 after-sales cases imported and their metrics recomputed: time and peak memory, on SQLite
and PostgreSQL (run by hand).

    python bench/aftersales_bench.py                 # both databases, one subprocess each
    python bench/aftersales_bench.py --cases 20000   # a quicker run

Steps per database: the first import (100,000 new cases over 100 days, 4 shops; every touched
day recomputed), the same file again (nothing changes), a file where 10 % of the cases — those
still open — are now finished (late closes: their opened and closed days recomputed), and a
changed ``[aftersales] causes`` rule (every case remapped, every day recomputed).
PostgreSQL: PLANLOOP_BENCH_PG (default postgresql+psycopg://postgres@127.0.0.1:5432/test, used
as the admin database).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REASONS = [
    "快递/物流一直未送到",
    "物流信息长时间未更新",
    "质量问题",
    "包装/商品破损/污渍",
    "商家发错货",
    "服务态度差",
    "七天无理由退换货",
    "缺货",
]
SHOPS = ["tb-shop", "jd-shop", "pdd-shop", "dy-shop"]


def write_cases(path: Path, n: int, *, close_all: bool = False) -> None:
    """n cases, 1,000 a day from 2026-01-01; every tenth is open (finished in the second file)."""
    start = datetime(2026, 1, 1, 8, 0)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("case_id,opened,closed,reason,status,shop\n")
        for i in range(n):
            opened = start + timedelta(days=i // 1000, seconds=(i % 1000) * 43)
            is_open = i % 10 == 0 and not close_all
            hours = 60 if i % 10 == 0 else (i % 7) * 9 + 1
            closed = "" if is_open else (opened + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")
            f.write(
                f"C{i:07d},{opened:%Y-%m-%d %H:%M:%S},{closed},{REASONS[i % len(REASONS)]},"
                f"{'处理中' if is_open else '已完结'},{SHOPS[i % len(SHOPS)]}\n"
            )


def one_case(db: str, n: int) -> dict:
    from bot.config import Settings, SourceConfig
    from bot.services import build_services
    from bot.worker.polling import import_file_report
    from sources.causes import AftersalesOptions
    from storage.db import make_engine, upgrade

    tmp = Path(tempfile.mkdtemp(prefix="planloop-bench-"))
    admin = None
    if db == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
    else:
        from sqlalchemy import text

        admin_url = os.environ.get("PLANLOOP_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
        admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
        name = f"planloop_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    source = SourceConfig("after", "file", {"path": str(tmp), "preset": "aftersales"}, {})
    services = build_services(Settings(database_url=url, sources=(source,)), engine=engine)
    first, closed = tmp / "a.csv", tmp / "b.csv"
    write_cases(first, n)
    write_cases(closed, n, close_all=True)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out: dict = {"db": db, "cases": n, "file_mb": round(first.stat().st_size / 1e6, 1)}
    steps = [("first", first, None), ("same_again", first, None), ("late_closes", closed, None)]
    steps.append(("rules_changed", closed, AftersalesOptions(48, {"缺货": "物流"})))
    for step, path, options in steps:
        if options is not None:
            services.settings = dataclasses.replace(services.settings, aftersales=options)
        t0 = time.perf_counter()
        report = import_file_report(services, path, "after")
        seconds = round(time.perf_counter() - t0, 2)
        with services.sessions() as session:
            from storage.models import SourceRun

            detail = session.get(SourceRun, report.run_id).detail
        out[step] = {
            "seconds": seconds,
            **{
                k: detail.get(k)
                for k in ("cases_inserted", "cases_updated", "cases_unchanged", "cases_remapped")
            },
            "days_recomputed": detail.get("case_days_recomputed"),
        }
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["rss_growth_mb"] = round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, 1)
    engine.dispose()
    if admin is not None:
        from sqlalchemy import text

        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--db", help="sqlite or postgresql, run in this process")
    args = parser.parse_args()
    if args.db:
        print(json.dumps(one_case(args.db, args.cases)))
        return
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for db in ("sqlite", "postgresql"):
        res = subprocess.run(
            [sys.executable, __file__, "--cases", str(args.cases), "--db", db],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            print(db, "failed:", res.stderr[-2000:])
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(
            f"{r['db']:<10} {r['cases']} cases ({r['file_mb']} MB): "
            + ", ".join(
                f"{s} {r[s]['seconds']} s" for s in ("first", "same_again", "late_closes", "rules_changed")
            )
            + f"; peak RSS {r['peak_rss_mb']} MB (+{r['rss_growth_mb']} MB)"
        )
        print("   ", json.dumps({k: r[k] for k in ("first", "same_again", "late_closes", "rules_changed")}))


if __name__ == "__main__":
    main()
