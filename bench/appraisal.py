"""Benchmark: appraisal scoring, template selection, and a weekly run on a database.

    python bench/appraisal.py [--people 200] [--db sqlite|postgresql]

1. pure: ``score()`` of a four-KPI week (one curve, a penalty item) and ``select_template()``
   among 12 templates with periods, a scenario and a manual switch, per call;
2. storage: ``run_week`` for ``--people`` people (each with a three-item plan and a week of
   daily samples per KPI), the first run and a recompute (new versions), then
   ``export_appraisals`` and ``publish`` (outbox rows) of the week.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def setup(db: str, people: int):  # noqa: ANN201
    from storage.models import Kpi, MetricSample, Person, Plan, PlanItem, Team, Template

    if db == "postgresql":
        from sqlalchemy import text

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
        monday = date(2026, 11, 23)
        for n in range(people):
            pid = f"p{n:04d}"
            scope = f"shop{n % 20}"
            s.add(Person(id=pid, name=pid, team_id="ops", role="operations"))
            plan = Plan(person_id=pid, team_id="ops", week="2026-W48", submitted_at=NOW)
            plan.items = [
                PlanItem(position=1, text="a", kpi_key="conversion_rate", scope=scope, target_text="+2%",
                         baseline=D("3.00"), target=D("3.06")),
                PlanItem(position=2, text="b", kpi_key="ctr", scope=scope, target_text="+0.2",
                         baseline=D("2.0"), target=D("2.2")),
                PlanItem(position=3, text="c", kpi_key="complaint_rate", scope=scope, target_text="-10%",
                         baseline=D("1.20"), target=D("1.08")),
            ]  # fmt: skip
            s.add(plan)
        for shop in range(20):
            for d in range(7):
                for metric, value in (
                    ("pay_conversion_rate", "3.04"),
                    ("ctr", "2.1"),
                    ("complaint_rate", "1.1"),
                ):
                    s.add(
                        MetricSample(
                            metric=metric,
                            scope=f"shop{shop}",
                            day=monday + timedelta(days=d),
                            value=D(value),
                            fetched_at=NOW,
                        )
                    )
    return engine, sessions


def bench_storage(db: str, people: int) -> None:
    from handlers.appraisals import export_appraisals, publish, run_week

    engine, sessions = setup(db, people)
    for label, reason in (("first run", ""), ("recompute (v2)", "重算")):
        start = time.perf_counter()
        with sessions() as s, s.begin():
            rows = run_week(s, "2026-W48", NOW, reason=reason)
        took = time.perf_counter() - start
        print(
            f"run_week {label:16s} {len(rows):5d} people  {took:7.2f} s  {took / len(rows) * 1000:6.1f} ms/person"
        )
    start = time.perf_counter()
    with sessions() as s:
        data = export_appraisals(s, "2026-W48")
    took = time.perf_counter() - start
    print(f"export_appraisals            {len(data['appraisals']):5d} people  {took:7.2f} s")
    start = time.perf_counter()
    with sessions() as s, s.begin():
        from storage.models import Appraisal, Identity

        for n in range(people):
            s.merge(Identity(bot_id="sim", external_id=f"p{n:04d}", person_id=f"p{n:04d}"))
        s.flush()
        current = list(s.query(Appraisal).filter(Appraisal.current.is_(True)))
        queued = publish(s, current, NOW, bots={"sim"})
    took = time.perf_counter() - start
    print(f"publish (outbox rows)        {queued:5d} cards   {took:7.2f} s")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    bench_pure()
    bench_storage(args.db, args.people)


if __name__ == "__main__":
    main()
