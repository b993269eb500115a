"""The shop the appraisal tests share: teams, people, KPIs, templates and helpers to add plans
and samples (tests/test_appraisals.py, test_appraisal_runs.py, test_template_switches.py,
test_appeals.py, test_ratings.py). Test data is inserted as model rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D
from typing import Any

from appraisal.targets import parse_target, resolve
from appraisal.templates import spec_of
from storage.models import (
    Appraisal,
    Identity,
    Kpi,
    MetricSample,
    Period,
    Person,
    Plan,
    PlanItem,
    Scenario,
    Team,
    Template,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # the clock fixture: Monday 10:00 +08:00, 2026-W48

KPIS = [
    ("conversion_rate", "支付转化率", "%", "up", "pay_conversion_rate", "metric"),
    ("ctr", "详情页点击率", "%", "up", "ctr", "metric"),
    ("activity_sales", "活动销量", "件", "up", "activity_sales", "metric"),
    ("complaint_rate", "投诉率", "%", "down", "complaint_rate", "metric"),
    ("logistics_resolution", "物流问题处理率", "%", "up", "logistics_issue_resolution_rate", "metric"),
    ("bad_reviews", "差评数", "条", "down", "bad_reviews", "metric"),
    ("learning", "学习进度", "", "up", None, "checklist"),
    ("leader_rating", "主管评分", "", "up", None, "rating"),
]
TEMPLATES: list[dict[str, Any]] = [
    {
        "id": "ops-default",
        "name": "运营默认模板",
        "role": "operations",
        "weights": {"conversion_rate": 60, "ctr": 40},
    },
    {
        "id": "ops-promo",
        "name": "大促模板",
        "role": "operations",
        "period": "double11",
        "weights": {"activity_sales": 70, "conversion_rate": 30},
    },
    {
        "id": "design-default",
        "name": "设计默认模板",
        "role": "design",
        "weights": {"ctr": 50, "conversion_rate": 30, "leader_rating": 20},
    },
    {
        "id": "newcomer",
        "name": "新人模板",
        "employee_type": "new",
        "weights": {"learning": 60, "leader_rating": 40},
    },
    {
        "id": "cs-default",
        "name": "客服默认模板",
        "role": "customer_service",
        "weights": {"complaint_rate": 100},
        "adjustments": [{"kpi": "bad_reviews", "name": "差评事件", "points": -5, "min": -20}],
    },
    {
        "id": "cs-logistics",
        "name": "物流高峰客服模板",
        "role": "customer_service",
        "scenario": "logistics_peak",
        "weights": {"logistics_resolution": 60, "complaint_rate": 40},
    },
]
PEOPLE = [
    # id, name, team, role, type, hire date
    ("zhangwei", "张伟", "ops", "operations", "veteran", None),
    ("lilei", "李雷", "ops", "operations", "veteran", None),
    ("zhaoqiang", "赵强", "ops", "operations", "veteran", date(2026, 10, 12)),  # new by hire date
    ("chenjing", "陈静", "ops", "design", "veteran", None),
    ("wangfang", "王芳", "service", "customer_service", "veteran", None),
    ("sunli", "孙丽", "service", "customer_service", "veteran", None),
]


def seed_shop(db) -> None:  # noqa: ANN001
    """Two teams (ops with a leader, service), their people and chats, the KPIs, the templates, a
    period and a scenario: the ``shop`` fixture of the appraisal tests."""
    with db() as s, s.begin():
        s.add(Team(id="ops", name="运营设计组", leader_id=None, chat_bot="sim", chat_id="ops"))
        s.add(Team(id="service", name="客服组", leader_id=None, chat_bot="sim", chat_id="service"))
        s.flush()
        for pid, name, team, role, ptype, hired in PEOPLE:
            s.add(Person(id=pid, name=name, team_id=team, role=role, type=ptype, hire_date=hired))
            s.add(Identity(bot_id="sim", external_id=pid, person_id=pid))
        s.flush()
        s.get(Team, "ops").leader_id = "zhangwei"
        s.get(Team, "service").leader_id = "wangfang"
        for key, name, unit, direction, metric, kind in KPIS:
            s.add(
                Kpi(
                    key=key, name=name, unit=unit, direction=direction, metric=metric, kind=kind, scope="shop"
                )
            )
        for entry in TEMPLATES:
            s.add(
                Template(
                    id=entry["id"],
                    name=entry["name"],
                    role=entry.get("role"),
                    period=entry.get("period"),
                    scenario=entry.get("scenario"),
                    employee_type=entry.get("employee_type"),
                    spec=spec_of(entry),
                )
            )
        s.add(Period(id="double11", name="双11", start_md="10-20", end_md="11-11"))
        s.add(Scenario(id="logistics_peak", name="物流高峰", active=False))


def add_plan(s, person_id: str, week: str, items: list[tuple[str, str, str | None, str]]) -> Plan:
    """items: (kpi, target text, baseline, scope); targets resolve the way filing does."""
    person = s.get(Person, person_id)
    plan = Plan(
        person_id=person_id, team_id=person.team_id, week=week, version=1, current=True, submitted_at=NOW
    )
    for n, (kpi_key, text, baseline, scope) in enumerate(items, 1):
        kpi = s.get(Kpi, kpi_key)
        base = D(baseline) if baseline is not None else None
        if kpi.kind == "checklist":
            level, base = parse_target(text).amount, D(0)
        else:
            level = resolve(parse_target(text), base, unit=kpi.unit, direction=kpi.direction)
        plan.items.append(
            PlanItem(
                position=n,
                text=f"事项{n}",
                kpi_key=kpi_key,
                scope=scope,
                target_text=text,
                baseline=base,
                target=level,
            )
        )
    s.add(plan)
    s.flush()
    return plan


def sample(s, metric: str, day: str, value: str, scope: str = "shop") -> None:
    s.merge(
        MetricSample(metric=metric, scope=scope, day=date.fromisoformat(day), value=D(value), fetched_at=NOW)
    )


def lilei_week48(s) -> None:
    add_plan(
        s, "lilei", "2026-W48", [("conversion_rate", "+2pp", "3.00", "shop"), ("ctr", "+10%", "2.0", "shop")]
    )
    sample(s, "pay_conversion_rate", "2026-11-22", "3.00")  # the week before
    sample(s, "pay_conversion_rate", "2026-11-24", "4.20")
    sample(s, "pay_conversion_rate", "2026-11-27", "5.50")  # the latest in the week
    sample(s, "pay_conversion_rate", "2026-11-30", "9.99")  # next week: never used
    sample(s, "ctr", "2026-11-26", "2.16")


def by_person(rows: list[Appraisal]) -> dict[str, Appraisal]:
    return {r.person_id: r for r in rows}
