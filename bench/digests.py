"""Benchmark: the three digest jobs for many 50-person teams.

    python bench/digests.py                        # SQLite (a temp file) and PostgreSQL, 20 teams
    python bench/digests.py --db sqlite --teams 40
    python bench/digests.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Data (not timed): ``--teams`` teams of 50 (a leader and 49 members) with simulator identities,
two KPIs and one template; for 2026-W47 every member has a two-item plan (two in three of
them filed) and a daily report per item; for 2026-W48, a third of them have filed by Monday.
Timed, each as the scheduler runs it (``bot.worker.jobs.run_job``): the appraisal of W47 (Friday
20:00: freeze every member, queue each card and each leader's table), the start-of-week
summary of W48 (Monday 09:00: two cards per team), the reminders (10:00) and the leaders'
lists (14:00); then the relay delivering everything through the simulator.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text  # noqa: E402

from appraisal.templates import spec_of  # noqa: E402
from bot.config import Secret, Settings  # noqa: E402
from bot.services import build_services  # noqa: E402
from bot.worker.delivery import drain  # noqa: E402
from bot.worker.jobs import run_job  # noqa: E402
from storage.db import make_engine, upgrade  # noqa: E402
from storage.models import (  # noqa: E402
    Identity,
    Kpi,
    MetricSample,
    Person,
    Plan,
    PlanItem,
    Team,
    Template,
)

SH = ZoneInfo("Asia/Shanghai")
KEY = "vExb5JuV_czKxZS0p-hDWNIgfPEeCPHkEzIkVmJknLA="
TEAM_SIZE = 50


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def load(url: str, teams: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    at = local("2026-11-16 09:00")
    with engine.begin() as conn:
        conn.execute(
            insert(Kpi),
            [
                {
                    "key": "conv",
                    "name": "支付转化率",
                    "unit": "%",
                    "direction": "up",
                    "metric": "conv",
                    "kind": "metric",
                    "scope": "shop",
                },
                {
                    "key": "cplt",
                    "name": "投诉率",
                    "unit": "%",
                    "direction": "down",
                    "metric": "cplt",
                    "kind": "metric",
                    "scope": "shop",
                },
            ],
        )
        entry = {
            "id": "ops",
            "name": "运营默认模板",
            "role": "operations",
            "weights": {"conv": 60, "cplt": 40},
        }
        conn.execute(
            insert(Template),
            [
                {
                    "id": "ops",
                    "name": "运营默认模板",
                    "role": "operations",
                    "spec": spec_of(entry),
                    "active": True,
                }
            ],
        )
        team_rows, people, identities, plans, items, samples = [], [], [], [], [], []
        plan_id = item_id = 0
        for t in range(teams):
            tid = f"t{t:03d}"
            team_rows.append(
                {
                    "id": tid,
                    "name": f"运营{t:03d}组",
                    "leader_id": f"{tid}-p00",
                    "chat_bot": "sim",
                    "chat_id": tid,
                    "timezone": "Asia/Shanghai",
                    "lag_margin": 20,
                    "plan_day_time": "10:00",
                    "plan_deadline_time": "14:00",
                    "active": True,
                }
            )
            for n in range(TEAM_SIZE):
                pid = f"{tid}-p{n:02d}"
                people.append(
                    {
                        "id": pid,
                        "name": f"成员{t:03d}-{n:02d}",
                        "team_id": tid,
                        "role": "operations",
                        "type": "veteran",
                        "active": True,
                        "reminders_paused": False,
                    }
                )
                identities.append({"bot_id": "sim", "external_id": pid, "person_id": pid})
                for week, filed in (("2026-W47", n % 3 != 0), ("2026-W48", n % 3 == 1)):
                    if n == 0 or not filed:
                        continue
                    plan_id += 1
                    plans.append(
                        {
                            "id": plan_id,
                            "person_id": pid,
                            "team_id": tid,
                            "week": week,
                            "version": 1,
                            "current": True,
                            "status": "submitted",
                            "submitted_at": at,
                            "submitted_via": "bench",
                            "unlocked": False,
                        }
                    )
                    for k, (kpi, base, target) in enumerate(
                        (("conv", "3.00", "5.00"), ("cplt", "1.20", "1.00"))
                    ):
                        item_id += 1
                        items.append(
                            {
                                "id": item_id,
                                "plan_id": plan_id,
                                "position": k + 1,
                                "section": "",
                                "text": f"事项{k + 1}",
                                "kpi_key": kpi,
                                "scope": pid,
                                "target_text": "+2pp",
                                "baseline": Decimal(base),
                                "target": Decimal(target),
                                "changes": "",
                                "causes": [],
                                "note": "",
                            }
                        )
                for day in range(7):
                    d = date(2026, 11, 16) + timedelta(days=day)
                    samples.append(
                        {
                            "metric": "conv",
                            "scope": pid,
                            "day": d,
                            "value": Decimal("3.00") + Decimal(n % 7) * Decimal("0.1") * day / 6,
                            "source": "bench",
                            "fetched_at": at,
                        }
                    )
                    samples.append(
                        {
                            "metric": "cplt",
                            "scope": pid,
                            "day": d,
                            "value": Decimal("1.20") - Decimal(n % 5) * Decimal("0.05") * day / 6,
                            "source": "bench",
                            "fetched_at": at,
                        }
                    )
        conn.execute(insert(Team), team_rows)
        conn.execute(insert(Person), people)
        conn.execute(insert(Identity), identities)
        conn.execute(insert(Plan), plans)
        conn.execute(insert(PlanItem), items)
        for start in range(0, len(samples), 5000):
            conn.execute(insert(MetricSample), samples[start : start + 5000])
    engine.dispose()


def run(url: str, teams: int) -> dict[str, float]:
    load(url, teams)
    settings = Settings(
        database_url=url, simulator=True, secret_keys=(Secret(KEY),), public_url="http://bench"
    )
    now = {"at": local("2026-11-20 20:00").astimezone(UTC)}
    services = build_services(settings, clock=lambda: now["at"])
    out: dict[str, float] = {}
    for label, job, when in (
        ("appraisal W47 (Fri 20:00)", "appraisal", "2026-11-20 20:00"),
        ("summary W48 (Mon 09:00)", "monday-summary", "2026-11-23 09:00"),
        ("reminders (Mon 10:00)", "reminders", "2026-11-23 10:00"),
        ("leaders' lists (Mon 14:00)", "reminders", "2026-11-23 14:00"),
    ):
        now["at"] = local(when).astimezone(UTC)
        start = time.perf_counter()
        result = run_job(services, job, now["at"])
        out[f"{label}: {result.enqueued} messages"] = time.perf_counter() - start
    start = time.perf_counter()
    stats = drain(services, sleep=lambda s: None)
    out[f"relay to the simulator: {stats.sent} messages"] = time.perf_counter() - start
    services.engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--teams", type=int, default=20)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    for kind in kinds:
        if kind == "sqlite":
            url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
            results = run(url, args.teams)
        else:
            name = f"planloop_bench_{uuid.uuid4().hex[:8]}"
            admin = make_engine(args.pg_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                results = run(args.pg_url.rsplit("/", 1)[0] + f"/{name}", args.teams)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        print(f"{kind}: {args.teams} teams × {TEAM_SIZE} people")
        for label, seconds in results.items():
            print(f"  {label:<48} {seconds:8.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
