"""Benchmark: the /p/ pages through the Flask app (run by hand, numbers go in the README).

    python bench/pages.py [--n 300] [--db sqlite:////tmp/bench.db]

On the demo team (12 people, four weeks of metrics): GET the plan form, POST it (the whole
transaction: nonce dedupe, the plan.submit handler, a plan version, the receipt in the outbox),
GET the plan detail (7 days × 3 items, pace and lag, 3 SVG charts), GET an appraisal with 8 weeks
of history and a leader's team table; and the two charts alone. Single-threaded through Flask's
test client, so the numbers are per worker process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])

from sqlalchemy import func, select  # noqa: E402

from bot.config import Secret, Settings  # noqa: E402
from bot.demo.run import seed_metrics  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.web.app import create_app  # noqa: E402
from cards import charts  # noqa: E402
from handlers.setup import apply, parse  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from storage.models import Appraisal, Plan  # noqa: E402

KEY = "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA="
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # Monday 11:00 Asia/Shanghai (2026-W48), before the deadline


def timed(n: int, call: Callable[[int], None]) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return times


def report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"{name:<34} {len(times) / sum(times):8.0f} /s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    db_url = args.db or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    engine = make_engine(db_url)
    upgrade(engine)
    settings = Settings(
        database_url=db_url, simulator=True, secret_keys=(Secret(KEY),), public_url="http://b"
    )
    services = build_services(settings, engine=engine, clock=lambda: NOW)
    spec = parse(tomllib.loads((Path(__file__).parents[1] / "examples" / "team.toml").read_text("utf-8")))
    with services.sessions() as s, s.begin():
        apply(s, spec, now=NOW)
        seed_metrics(s, date(2026, 11, 26), NOW)  # four weeks up to Wednesday: this week has 3 days
        for k in range(8):
            for person in ("zhangwei", "lilei", "hanmeimei", "zhaoqiang", "chenjing", "liuyang"):
                s.add(
                    Appraisal(
                        person_id=person,
                        team_id="ops",
                        week=f"2026-W{40 + k}",
                        template_id="ops-default",
                        template_reason="运营默认模板",
                        score=Decimal(80 + 3 * k),
                        grade="B",
                        items=[
                            {
                                "kpi": "conversion_rate",
                                "weight": 60,
                                "baseline": 3,
                                "target": 5,
                                "actual": 4,
                                "completion": 0.5,
                                "contribution": 30,
                            }
                        ],
                        created_at=NOW,
                    )
                )
    client = create_app(settings, services).test_client()
    links = services.links
    assert links is not None
    form = f"/p/{links.token('lilei', 'plan-form', '2026-W48', NOW)}"
    plan = f"/p/{links.token('lilei', 'plan', '2026-W48', NOW)}"
    leader = f"/p/{links.token('zhangwei', 'appraisal', '2026-W47', NOW)}"
    items = [
        ("优化详情页首屏", "conversion_rate", "+2pp"),
        ("主图测试", "ctr", "+0.5pp"),
        ("差评回访", "complaint_rate", "-10%"),
    ]

    def values(i: int) -> dict[str, str]:
        out = {"week": "2026-W48", "_nonce": uuid.uuid4().hex}
        for n, (text, kpi, target) in enumerate(items, start=1):
            # alternate the text so every POST stores a new version (the worst case)
            out |= {f"item{n}_text": f"{text} {i % 2}", f"item{n}_kpi": kpi, f"item{n}_target": target}
        return out

    def ok(response) -> None:  # noqa: ANN001
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.get_data(as_text=True)[:300]}")

    ok(client.post(form, data=values(0)))  # warm-up, and a plan for the detail page
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.n} requests each, database {engine.dialect.name}")
    report("GET plan form", timed(args.n, lambda i: ok(client.get(form))))
    report("POST plan form (+DB, outbox)", timed(args.n, lambda i: ok(client.post(form, data=values(i + 1)))))
    with services.sessions() as s:
        versions = s.scalar(select(func.count()).select_from(Plan).where(Plan.person_id == "lilei"))
        if versions != args.n + 1:
            raise SystemExit(
                f"expected {args.n + 1} plan versions, found {versions}: the POSTs did not store"
            )
    report("GET plan detail (3 charts)", timed(args.n, lambda i: ok(client.get(plan))))
    report("GET appraisal + team table", timed(args.n, lambda i: ok(client.get(leader + "?sort=name"))))
    days = [f"{d}\n11-{23 + d}" for d in range(7)]
    report(
        "pace_chart alone",
        timed(
            args.n * 10,
            lambda i: charts.pace_chart(
                ident="b",
                title="t",
                desc="d",
                labels=days,
                actual=[3.1, 3.2, None, 3.4, 3.5, None, None],
                expected=[3.4, 3.8, 4.2, 4.6, 5, 5, 5],
                target=5,
                baseline=3,
                unit="%",
                off_days=[False] * 5 + [True] * 2,
            ),
        ),
    )
    report(
        "history_chart alone",
        timed(
            args.n * 10,
            lambda i: charts.history_chart(
                ident="h",
                title="t",
                desc="d",
                labels=[f"W{w}" for w in range(40, 48)],
                values=[92, 101.5, None, 110, 64, 99, 107, 120],
                notes=["B", "A", "", "A", "C", "B", "A", "S"],
            ),
        ),
    )


if __name__ == "__main__":
    main()
