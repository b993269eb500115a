"""Benchmark: appraisal scoring, template selection, and a weekly run on a database.

    python bench/appraisal.py [--people 200] [--db sqlite|postgresql] [--profile DIR]

1. pure: ``score()`` of a four-KPI week (one curve, a penalty item) and ``select_template()``
   among 12 templates with periods, a scenario and a manual switch, per call;
2. storage: ``run_week`` for ``--people`` people (each with a three-item plan, a chat identity
   and a week of daily samples per KPI), the first run and a recompute (new versions), then
   ``export_appraisals`` and ``publish`` (outbox rows) of the week;
3. the whole weekly job as the scheduler runs it for one team: ``appraise_team`` (run, publish
   every card, the held card, the leader's table) of the next week, first run and an explicit
   re-run (new versions, sent again).

``--profile DIR`` writes one cProfile file per step into DIR and prints its top functions.

Each step prints its wall time and its CPU time: the bench process's, and on PostgreSQL also the
database backends' (read from /proc, the server being local), so a step's own work shows even
when other jobs share the cores and stretch the wall time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select, text  # noqa: E402

from appraisal.scoring import ItemInput, KpiInfo, RatingInput, score  # noqa: E402
from appraisal.selection import Employee, Switch, select_template  # noqa: E402
from appraisal.templates import parse_template, spec_of  # noqa: E402
from storage.db import make_engine, make_sessionmaker, upgrade  # noqa: E402

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def per_call(fn, n: int) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def bench_pure() -> None:
    kpis = {
        "conversion_rate": KpiInfo("conversion_rate", "支付转化率", "%", "up"),
        "ctr": KpiInfo("ctr", "点击率", "%", "up"),
        "complaint_rate": KpiInfo("complaint_rate", "投诉率", "%", "down"),
        "leader_rating": KpiInfo("leader_rating", "主管评分", kind="rating"),
    }
    template = parse_template(
        {
            "id": "t",
            "weights": {"conversion_rate": 40, "ctr": 20, "complaint_rate": 20, "leader_rating": 20},
            "curves": {"ctr": [{"below": 60, "score": 0}, {"below": 80, "score": 60}]},
            "adjustments": [{"kpi": "bad_reviews", "points": -5, "min": -20}],
        }
    )
    items = [
        ItemInput("conversion_rate", "a", "shop", D("3.00"), D("3.06"), D("3.05")),
        ItemInput("ctr", "b", "shop", D("2.0"), D("2.2"), D("2.15")),
        ItemInput("complaint_rate", "c", "shop", D("1.20"), D("1.08"), D("1.104")),
    ]
    ratings = {"leader_rating": RatingInput(stars=4)}
    us = per_call(lambda: score(template, kpis, items, ratings, counts={"bad_reviews": D(1)}), 20000)
    print(f"score(): 4 KPIs, curve, penalty          {us:8.1f} µs/call")

    templates = [
        parse_template({"id": f"r{r}-{kind}", "role": f"role{r}", "weights": {"k": 100}, **cond})
        for r in range(3)
        for kind, cond in (
            ("default", {}),
            ("promo", {"period": "double11"}),
            ("new", {"employee_type": "new"}),
            ("peak", {"scenario": "peak"}),
        )
    ]
    switch = Switch("r0-default", date(2026, 11, 1), date(2026, 11, 30), "张伟", NOW)
    person = Employee("p", "role0", hire_date=date(2026, 10, 1))
    us = per_call(
        lambda: select_template(
            templates, person=person, week="2026-W46", scenarios={"peak": "高峰"}, switches=[switch]
        ),
        20000,
    )
    print(f"select_template(): 12 templates, switch   {us:8.1f} µs/call")


class Steps:
    """Times each step (and profiles it with ``--profile DIR``)."""

    def __init__(self, profile: str | None) -> None:
        self.cpu = 0.0
        self.db_cpu = 0.0
        self.backends: Callable[[], list[int]] | None = None  # the bench database's backend pids
        self.profile = Path(profile) if profile else None
        if self.profile:
            self.profile.mkdir(parents=True, exist_ok=True)

    def run(self, name: str, fn):  # noqa: ANN001, ANN201
        profiler = cProfile.Profile() if self.profile else None
        start, cpu, db = time.perf_counter(), time.process_time(), self._db_cpu()
        if profiler:
            profiler.enable()
        out = fn()
        if profiler:
            profiler.disable()
        took = time.perf_counter() - start
        self.cpu = time.process_time() - cpu
        self.db_cpu = sum(t - db.get(pid, 0.0) for pid, t in self._db_cpu().items())
        if profiler and self.profile:
            path = self.profile / f"{name}.prof"
            profiler.dump_stats(str(path))
            print(f"--- {name}: {path}")
            pstats.Stats(str(path)).sort_stats("tottime").print_stats(12)
        return out, took

    def _db_cpu(self) -> dict[int, float]:
        """CPU seconds so far of each backend serving the bench database (PostgreSQL on this host)."""
        out: dict[int, float] = {}
        for pid in self.backends() if self.backends else []:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return out

    def cpu_text(self) -> str:
        db = f" + db {self.db_cpu:6.2f} s" if self.backends else ""
        return f"cpu {self.cpu:6.2f} s{db}"


WEEKS = ("2026-W48", "2026-W49")


def setup(db: str, people: int):  # noqa: ANN201
    from sqlalchemy import insert

    from storage.models import Identity, Kpi, MetricSample, Person, Plan, PlanItem, Team, Template

    if db == "postgresql":
        admin = make_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS planloop_bench_appraisal WITH (FORCE)"))
            conn.execute(text("CREATE DATABASE planloop_bench_appraisal"))
        engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/planloop_bench_appraisal")
    else:
        engine = make_engine(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as s, s.begin():
        s.add(Team(id="ops", name="运营组", chat_bot="sim", chat_id="ops"))
        s.add(Person(id="leader", name="张伟", team_id="ops", role="operations"))
        for key, metric, direction in (
            ("conversion_rate", "pay_conversion_rate", "up"),
            ("ctr", "ctr", "up"),
            ("complaint_rate", "complaint_rate", "down"),
        ):
            s.add(Kpi(key=key, name=key, unit="%", direction=direction, metric=metric, scope="shop"))
        entry = {
            "id": "ops-default",
            "role": "operations",
            "weights": {"conversion_rate": 50, "ctr": 30, "complaint_rate": 20},
        }
        s.add(Template(id="ops-default", name="运营默认模板", role="operations", spec=spec_of(entry)))
        s.flush()
        s.get(Team, "ops").leader_id = "leader"  # type: ignore[union-attr]
        ids = [f"p{n:04d}" for n in range(people)]
        s.execute(
            insert(Person),
            [{"id": pid, "name": pid, "team_id": "ops", "role": "operations", "active": True} for pid in ids],
        )
        s.execute(
            insert(Identity),
            [{"bot_id": "sim", "external_id": pid, "person_id": pid} for pid in ["leader", *ids]],
        )
        items = (
            ("a", "conversion_rate", "+2%", D("3.00"), D("3.06")),
            ("b", "ctr", "+0.2", D("2.0"), D("2.2")),
            ("c", "complaint_rate", "-10%", D("1.20"), D("1.08")),
        )
        for week in WEEKS:
            plan_ids = s.scalars(
                insert(Plan).returning(Plan.id, sort_by_parameter_order=True),
                [
                    {"person_id": pid, "team_id": "ops", "week": week, "submitted_at": NOW, "current": True}
                    for pid in ids
                ],
            ).all()
            s.execute(
                insert(PlanItem),
                [
                    {
                        "plan_id": plan_id,
                        "position": pos,
                        "text": text,
                        "kpi_key": kpi,
                        "scope": f"shop{n % 20}",
                        "target_text": target_text,
                        "baseline": baseline,
                        "target": target,
                    }
                    for n, plan_id in enumerate(plan_ids)
                    for pos, (text, kpi, target_text, baseline, target) in enumerate(items, start=1)
                ],
            )
        monday = date(2026, 11, 23)
        s.execute(
            insert(MetricSample),
            [
                {
                    "metric": metric,
                    "scope": f"shop{shop}",
                    "day": monday + timedelta(days=d),
                    "value": D(value),
                    "fetched_at": NOW,
                }
                for shop in range(20)
                for d in range(14)
                for metric, value in (
                    ("pay_conversion_rate", "3.04"),
                    ("ctr", "2.1"),
                    ("complaint_rate", "1.1"),
                )
            ],
        )
    return engine, sessions


def bench_storage(db: str, people: int, steps: Steps) -> None:
    from handlers.appraisal_export import export_appraisals
    from handlers.appraisal_runs import publish, run_week
    from handlers.digests import appraise_team
    from storage.models import Appraisal, OutboxMessage

    engine, sessions = setup(db, people)
    if db == "postgresql":
        watcher = make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
        query = text(
            "SELECT pid FROM pg_stat_activity WHERE datname = 'planloop_bench_appraisal'"
            " AND pid <> pg_backend_pid()"
        )

        def backends() -> list[int]:
            with watcher.connect() as conn:
                return list(conn.scalars(query))

        steps.backends = backends
    week = WEEKS[0]
    for label, reason in (("first run", ""), ("recompute (v2)", "重算")):

        def run(reason: str = reason) -> list:  # noqa: ANN001
            with sessions() as s, s.begin():
                return run_week(s, week, NOW, reason=reason)

        rows, took = steps.run(f"run_week-{label.split()[0]}", run)
        print(
            f"run_week {label:16s} {len(rows):5d} people  {took:7.2f} s  {took / len(rows) * 1000:6.1f} ms/person"
            f"  ({steps.cpu_text()})"
        )

    def export() -> dict:
        with sessions() as s:
            return export_appraisals(s, week)

    data, took = steps.run("export", export)
    print(
        f"export_appraisals            {len(data['appraisals']):5d} people  {took:7.2f} s  ({steps.cpu_text()})"
    )

    def publish_all() -> int:
        with sessions() as s, s.begin():
            current = list(s.scalars(select(Appraisal).where(Appraisal.current.is_(True))))
            return publish(s, current, NOW, bots={"sim"})

    queued, took = steps.run("publish", publish_all)
    print(f"publish (outbox rows)        {queued:5d} cards   {took:7.2f} s  ({steps.cpu_text()})")

    # the scheduler's weekly job for one team of ``people``: run, every card, the leader's table
    at = NOW + timedelta(days=7)
    total = 0.0
    for label, explicit in (("first run", False), ("re-run (v2)", True)):

        def job(explicit: bool = explicit):  # noqa: ANN001, ANN202
            with sessions() as s, s.begin():
                return appraise_team(
                    s,
                    "ops",
                    WEEKS[1],
                    at,
                    bots={"sim"},
                    explicit=explicit,
                    dedupe_suffix=":again" if explicit else "",
                )

        result, took = steps.run(f"weekly-{label.split()[0]}", job)
        total += took
        print(
            f"weekly job {label:14s} {result.appraised:5d} people  {took:7.2f} s  "
            f"({steps.cpu_text()}; {result.cards} cards, {int(result.table)} table)"
        )
    with sessions() as s:
        rows = s.scalar(select(func.count()).select_from(OutboxMessage))
        keys = s.scalar(select(func.count(func.distinct(OutboxMessage.dedupe_key))))
    print(f"outbox rows {rows}, distinct keys {keys}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--profile", metavar="DIR", help="write a cProfile file per step into DIR")
    args = parser.parse_args()
    bench_pure()
    bench_storage(args.db, args.people, Steps(args.profile))


if __name__ == "__main__":
    main()
