"""The open API under load (run by hand), on SQLite and PostgreSQL:

    python bench/api_bench.py                     # both databases, both cases
    python bench/api_bench.py --samples 20000     # a quicker metrics case

- ``metrics``: POST /api/v1/metrics, 100,000 samples in 10 calls of 10,000: time per call and
  in all, and the server process's peak RSS.
- ``appraisals``: GET /api/v1/appraisals for a 50-person team at a steady 50 requests a second
  for 20 s (open loop: each request leaves at its planned time, whatever the others do):
  p50 / p99 / max latency.

The server is ``create_app`` on werkzeug's threaded server in a child process (its own GIL and
its own peak RSS); the client is this process, on loopback. PostgreSQL: PLANLOOP_BENCH_PG
(default postgresql+psycopg://postgres@127.0.0.1:5432/test, used as the admin database).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.import_bench import rows  # noqa: E402  the import bench's 100,000 distinct samples

WEEK = "2026-W48"
PEOPLE = 50


def make_database(db: str) -> tuple[str, object | None]:
    from storage.db import make_engine, upgrade

    if db == "sqlite":
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='planloop-apibench-')) / 'bench.db'}"
        admin = None
    else:
        from sqlalchemy import text

        admin_url = os.environ.get("PLANLOOP_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
        admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
        name = f"planloop_apibench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url, admin


def drop_database(url: str, admin: object | None) -> None:
    if admin is None:
        return
    from sqlalchemy import text

    with admin.connect() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))


def seed(url: str) -> str:
    """A 50-person team with a published appraisal each for WEEK, and an admin token."""
    from bot.api.tokens import create_token
    from storage.db import make_engine, make_sessionmaker
    from storage.models import Appraisal, Kpi, Person, Team

    engine = make_engine(url)
    now = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    with make_sessionmaker(engine)() as session, session.begin():
        session.add(Team(id="ops", name="运营组", timezone="Asia/Shanghai"))
        session.add(Kpi(key="conversion_rate", name="支付转化率", unit="%", metric="pay_conversion_rate"))
        session.add(Kpi(key="ctr", name="点击率", unit="%", metric="ctr"))
        for n in range(PEOPLE):
            pid = f"p{n:02d}"
            session.add(Person(id=pid, name=f"员工{n}", team_id="ops", role="operations"))
            session.flush()
            items = [
                {"kpi": "conversion_rate", "weight": 60, "baseline": "3.0", "target": "5.0", "actual": "5.5",
                 "raw": "1.25", "completion": "1.25", "contribution": "75", "kind": "metric",
                 "text": "优化详情页首屏", "item_id": n * 2 + 1},
                {"kpi": "ctr", "weight": 40, "baseline": "4.0", "target": "4.4", "actual": "4.3",
                 "raw": "0.75", "completion": "0.75", "contribution": "30", "kind": "metric",
                 "text": "主图测试", "item_id": n * 2 + 2},
            ]  # fmt: skip
            session.add(
                Appraisal(
                    person_id=pid, team_id="ops", week=WEEK, version=1, current=True,
                    template_id="ops-default", template_reason="运营默认模板", score=Decimal("105"),
                    grade="A", items=items, flags=[], created_at=now, status="published",
                    rules={"weights": {"conversion_rate": 60, "ctr": 40}, "cap": 150,
                           "grades": {"S": 120, "A": 100, "B": 80, "C": 60}, "template_version": 1},
                )
            )  # fmt: skip
        secret = create_token(
            session, name="bench", scopes=["admin"], now=now, rate_per_minute=1_000_000
        ).secret
    engine.dispose()
    return secret


def serve(url: str, port: int) -> None:
    """The child: the web app on werkzeug's threaded server until killed; prints its peak RSS on stdin EOF."""
    import logging

    from werkzeug.serving import make_server

    from bot.config import Settings
    from bot.web.app import create_app

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on the terminal
    app = create_app(Settings(database_url=url))
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()  # the parent closes stdin when done
    print(json.dumps({"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
    server.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", url, "--port", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child, f"http://127.0.0.1:{port}/api/v1"


def stop_server(child: subprocess.Popen[str]) -> dict:
    out, _ = child.communicate(timeout=30)
    return json.loads(out.strip().splitlines()[-1])


def metrics_case(http: object, base: str, samples: int) -> dict:
    calls = 10
    per = samples // calls
    data = [{"date": d, "metric": m, "value": v, "scope": s} for d, m, v, s in rows(samples)]
    seconds = []
    totals = {"inserted": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    for n in range(calls):
        t0 = time.perf_counter()
        r = http.post(f"{base}/metrics", json={"samples": data[n * per : (n + 1) * per]}, timeout=600)  # type: ignore[attr-defined]
        seconds.append(time.perf_counter() - t0)
        r.raise_for_status()
        body = r.json()
        for k in ("inserted", "updated", "unchanged"):
            totals[k] += body[k]
        totals["rejected"] += len(body["rejected"])
    return {"samples": samples, "calls": calls, "seconds": round(sum(seconds), 2),
            "slowest_call": round(max(seconds), 2), **totals}  # fmt: skip


def appraisals_case(headers: dict, base: str, rate: int, seconds: int) -> dict:
    import requests

    url = f"{base}/appraisals?week={WEEK}&limit=500"
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    local = threading.local()

    def one() -> None:
        if not hasattr(local, "http"):
            local.http = requests.Session()
            local.http.headers.update(headers)
        t0 = time.perf_counter()
        r = local.http.get(url, timeout=30)
        took = time.perf_counter() - t0
        with lock:
            latencies.append(took)
            if r.status_code != 200 or len(r.json()["appraisals"]) != PEOPLE:
                errors.append(r.status_code)

    from concurrent.futures import ThreadPoolExecutor

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for n in range(rate * seconds):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one)
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)

    return {"requests": len(latencies), "rate": rate, "errors": len(errors), "p50_ms": pct(0.50),
            "p99_ms": pct(0.99), "max_ms": round(latencies[-1] * 1000, 1)}  # fmt: skip


def one_db(db: str, samples: int, rate: int, seconds: int) -> dict:
    import requests

    url, admin = make_database(db)
    try:
        secret = seed(url)
        headers = {"Authorization": f"Bearer {secret}"}
        child, base = start_server(url)
        http = requests.Session()
        http.headers.update(headers)
        out = {"db": db, "metrics": metrics_case(http, base, samples)}
        out["appraisals"] = appraisals_case(headers, base, rate, seconds)
        out["server_peak_rss_mb"] = stop_server(child)["peak_rss_mb"]
        return out
    finally:
        drop_database(url, admin)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        print(json.dumps(one_db(db, args.samples, args.rate, args.seconds)))


if __name__ == "__main__":
    main()
