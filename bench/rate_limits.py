"""Benchmark: what the deployment-wide rate limits cost per send, and whether they hold under contention.

    python bench/rate_limits.py [--db sqlite|postgresql] [--n 2000] [--threads 3]

1. one process: ``SharedBuckets.acquire`` of a Feishu robot's two windows (5/s, 100/min)
   plus the app's two (50/s, 1000/min), the call a relay makes before every send; the
   in-memory ``TokenBuckets`` for comparison;
2. ``--threads`` processes (one engine each) taking tokens of one 20-a-minute robot at one
   instant: exactly 20 granted (no lost update), and how long the contended calls take.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.platforms.base import RateLimit  # noqa: E402
from bot.worker.delivery import TokenBuckets  # noqa: E402
from bot.worker.rate_limits import SharedBuckets  # noqa: E402
from storage.db import make_engine, make_sessionmaker, upgrade  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"
FEISHU = [
    RateLimit("feishu-robot:x", 5, 1.0),
    RateLimit("feishu-robot:x", 100, 60.0),
    RateLimit("feishu:app:y", 50, 1.0),
    RateLimit("feishu:app:y", 1000, 60.0),
]


def database(db: str) -> str:
    if db == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    from sqlalchemy import text

    admin = make_engine(PG + "postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS planloop_bench_rates WITH (FORCE)"))
        conn.execute(text("CREATE DATABASE planloop_bench_rates"))
    admin.dispose()
    return PG + "planloop_bench_rates"


def buckets(url: str) -> SharedBuckets:
    engine = make_engine(url)
    return SharedBuckets(make_sessionmaker(engine), engine, lambda: datetime.now(UTC))


def per_acquire(take, n: int) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for i in range(n):
        take(FEISHU, i * 0.25)  # 4 a second: always within every window, never waits
    return (time.perf_counter() - start) / n * 1000


def contended(url: str, threads: int, tries: int) -> tuple[int, float]:
    robot = [RateLimit("contended-robot", 20, 60.0)]
    each = [buckets(url) for _ in range(threads)]
    granted: list[int] = []
    lock = threading.Lock()
    gate = threading.Barrier(threads)

    def run(b: SharedBuckets) -> None:
        gate.wait()
        got = sum(1 for _ in range(tries) if b.acquire(robot, 1_000_000.0) == 0.0)
        with lock:
            granted.append(got)

    start = time.perf_counter()
    workers = [threading.Thread(target=run, args=(b,)) for b in each]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    took = time.perf_counter() - start
    return sum(granted), took / (threads * tries) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=3)
    args = parser.parse_args()
    url = database(args.db)
    upgrade(make_engine(url))
    memory = TokenBuckets()
    print(f"in-memory TokenBuckets.acquire (4 windows): {per_acquire(memory.acquire, args.n):.3f} ms")
    shared = buckets(url)
    print(f"SharedBuckets.acquire on {args.db} (4 windows): {per_acquire(shared.acquire, args.n):.3f} ms")
    granted, ms = contended(url, args.threads, 200)
    print(
        f"{args.threads} processes x 200 tries at one instant on a 20-a-minute robot: "
        f"{granted} granted (must be 20), {ms:.3f} ms a call"
    )


if __name__ == "__main__":
    main()
