"""100,000-row report import: time and peak memory, on SQLite and PostgreSQL (run by hand).

    python bench/import_bench.py                  # every database × format, one subprocess each
    python bench/import_bench.py --rows 20000     # a quicker run

Each case runs in its own process so its peak RSS is its own. Steps per case: the first import
(100,000 new samples), the same file again (nothing changes), and a file where every value
changed (100,000 updates, each with an audit row). PostgreSQL: PLANLOOP_BENCH_PG (default
postgresql+psycopg://postgres@127.0.0.1:5432/test, used as the admin database).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METRICS = [
    "visitors",
    "page_views",
    "pay_amount",
    "pay_buyers",
    "pay_conversion_rate",
    "avg_order_value",
    "refund_amount",
    "refund_rate",
    "bounce_rate",
    "ctr",
]


def rows(n: int, bump: int = 0):
    """n distinct (day, metric, scope) rows: 10 metrics × 100 scopes × as many days as needed."""
    start = date(2026, 1, 1)
    for i in range(n):
        metric = METRICS[i % 10]
        scope = f"sku-{(i // 10) % 100:03d}"
        day = start + timedelta(days=i // 1000)
        value = (
            f"{(i % 997) * 1.25 + bump:,.2f}"
            if metric != "pay_conversion_rate"
            else f"{(i % 50) / 10 + bump:.2f}%"
        )
        yield day.isoformat(), metric, value, scope


def write_csv(path: Path, n: int, bump: int = 0) -> None:
    with path.open("w", encoding="gbk", newline="") as f:
        f.write("date,metric,value,scope\n")
        for d, m, v, s in rows(n, bump):
            f.write(f'{d},{m},"{v}",{s}\n')


def write_xlsx(path: Path, n: int, bump: int = 0) -> None:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("data")
    ws.append(["报表标题"])
    ws.append(["date", "metric", "value", "scope"])
    for r in rows(n, bump):
        ws.append(list(r))
    wb.save(path)


def one_case(db: str, fmt: str, n: int) -> dict:
    from bot.config import Settings
    from bot.services import build_services
    from bot.worker.polling import import_file_report
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
    services = build_services(Settings(database_url=url), engine=engine)
    write = write_csv if fmt == "csv" else write_xlsx
    first, changed = tmp / f"a.{fmt}", tmp / f"b.{fmt}"
    write(first, n)
    write(changed, n, bump=1)
    size = first.stat().st_size
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out: dict = {"db": db, "format": fmt, "rows": n, "file_mb": round(size / 1e6, 1)}
    for step, path in (("first", first), ("same_again", first), ("all_changed", changed)):
        t0 = time.perf_counter()
        report = import_file_report(services, path)
        out[step] = {
            "seconds": round(time.perf_counter() - t0, 2),
            "inserted": report.inserted,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "refused": report.refused,
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
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--case", help="db:format, run in this process")
    args = parser.parse_args()
    if args.case:
        db, fmt = args.case.split(":")
        print(json.dumps(one_case(db, fmt, args.rows)))
        return
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for case in ("sqlite:csv", "postgresql:csv", "sqlite:xlsx", "postgresql:xlsx"):
        res = subprocess.run(
            [sys.executable, __file__, "--rows", str(args.rows), "--case", case],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            print(case, "failed:", res.stderr[-2000:])
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(
            f"{r['db']:<10} {r['format']:<4} {r['rows']} rows ({r['file_mb']} MB): "
            f"first {r['first']['seconds']} s, same again {r['same_again']['seconds']} s, "
            f"all changed {r['all_changed']['seconds']} s; peak RSS {r['peak_rss_mb']} MB "
            f"(+{r['rss_growth_mb']} MB during the imports)"
        )
        print("   ", json.dumps({k: r[k] for k in ("first", "same_again", "all_changed")}))


if __name__ == "__main__":
    main()
