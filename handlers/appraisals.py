"""The appraisal core: the rules a week is scored by, everything a run reads, and the score.

The scoring is pure (``appraisal/``); this module gathers its inputs from the database (the
person's current plan, the week's metric samples, ratings, accepted appeals, leave), selects each
person's template (``select_for``), scores a week without writing anything (``compute``) and says
which counted items have no data (``missing_data``, issue 16). The rooms above it:

- ``handlers/appraisal_runs.py``: freezing versions (``run_week``, ``freeze``), the cards, ``publish``;
- ``handlers/template_switches.py``: a leader's manual template switch;
- ``handlers/appeals.py`` (申诉) and ``handlers/ratings.py`` (leader ratings): the chat flows;
- ``handlers/appraisal_export.py``: ``planloop export appraisals``.

Also here, shared with the rooms above: ``AppraisalError``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from appraisal.scoring import ItemInput, KpiInfo, RatingInput, Result, score
from appraisal.selection import (
    Employee,
    Period,
    Selection,
    Switch,
    parse_period,
    select_template,
    week_days,
    with_presets,
)
from appraisal.templates import Template, TemplateError, parse_template
from handlers.leave import WeekLeave
from storage.models import (
    Appeal,
    Appraisal,
    Kpi,
    MetricSample,
    Person,
    Plan,
    Rating,
    Scenario,
    TemplateSwitch,
)
from storage.models import Period as PeriodRow
from storage.models import Template as TemplateRow

log = logging.getLogger(__name__)


class AppraisalError(Exception):
    """A request that cannot be done; the message is shown to the person as is."""


# ---------------------------------------------------------------- loading the rules


def load_templates(
    session: Session, at: datetime | None = None, versions: dict[str, int] | None = None
) -> list[Template]:
    """Every active template as a value object, as its version in force at ``at`` (None: the newest;
    handlers/template_versions.py) — the version used goes into ``versions``; a stored template
    that no longer parses is skipped (and logged) rather than failing a whole run."""
    from handlers.template_versions import in_force

    out = []
    rows = list(
        session.scalars(select(TemplateRow).where(TemplateRow.active.is_(True)).order_by(TemplateRow.id))
    )
    recorded = in_force(session, [r.id for r in rows], at)
    for row in rows:
        if row.id in recorded:
            number, versioned = recorded[row.id]
            if versions is not None:
                versions[row.id] = number
            try:
                out.append(parse_template(versioned))
            except TemplateError as exc:
                log.error("template %s v%s is unusable: %s", row.id, number, exc)
            continue
        entry = {
            "id": row.id,
            "name": row.name,
            "role": row.role,
            "period": row.period,
            "scenario": row.scenario,
            "employee_type": row.employee_type,
            **{k: v for k, v in (row.spec or {}).items() if k not in ("id", "name")},
        }
        try:
            out.append(parse_template({k: v for k, v in entry.items() if v is not None}))
        except TemplateError as exc:
            log.error("template %s is unusable: %s", row.id, exc)
    return out


def load_periods(session: Session) -> dict[str, Period]:
    """The preset periods (618, double11) overridden by the team file's ``[[periods]]``."""
    rows = session.scalars(select(PeriodRow))
    return with_presets(
        parse_period({"id": r.id, "name": r.name, "from": r.start_md, "to": r.end_md}) for r in rows
    )


def active_scenarios(session: Session) -> dict[str, str]:
    return {s.id: s.name for s in session.scalars(select(Scenario).where(Scenario.active.is_(True)))}


def _switch(session: Session, row: TemplateSwitch, names: Mapping[str, str] | None = None) -> Switch:
    if names is not None:
        name = names.get(row.by)
    else:
        who = session.get(Person, row.by)
        name = who.name if who else None
    return Switch(
        row.template_id,
        row.start,
        row.until,
        name or ("管理员" if row.by in ("admin", "cli") else row.by),
        row.at,
    )


def team_switches(session: Session, team_id: str) -> list[Switch]:
    """The team's manual switches (cancelled ones left out), with who switched as people read it."""
    rows = session.scalars(
        select(TemplateSwitch).where(TemplateSwitch.team_id == team_id, TemplateSwitch.cancelled.is_(False))
    )
    return [_switch(session, r) for r in rows]


@dataclass
class Rules:
    """Everything selection needs, loaded once per run."""

    templates: list[Template]
    periods: dict[str, Period]
    scenarios: dict[str, str]
    versions: dict[str, int] = field(default_factory=dict)  # template id → version used

    @classmethod
    def load(cls, session: Session, at: datetime | None = None) -> Rules:
        """The rules now, or (``at``) with each template's version in force at that moment."""
        versions: dict[str, int] = {}
        templates = load_templates(session, at, versions)
        return cls(templates, load_periods(session), active_scenarios(session), versions)


def _employee(person: Person) -> Employee:
    return Employee(person.id, person.role, person.type or "veteran", person.hire_date)


def select_for(session: Session, person: Person, week: str, rules: Rules | None = None) -> Selection:
    """The template for ``person`` in ``week`` and why; raises ``NoTemplate``."""
    rules = rules or Rules.load(session)
    return _select(rules, person, week, team_switches(session, person.team_id))


def _select(rules: Rules, person: Person, week: str, switches: Sequence[Switch]) -> Selection:
    return select_template(
        rules.templates,
        person=_employee(person),
        week=week,
        periods=rules.periods,
        scenarios=rules.scenarios,
        switches=switches,
    )


# ---------------------------------------------------------------- inputs of a week


def _info(kpi: Kpi) -> KpiInfo:
    return KpiInfo(kpi.key, kpi.name, kpi.unit, kpi.direction, kpi.kind)


@dataclass
class WeekInputs:
    """Everything a run reads, loaded in a fixed number of queries however many people it scores."""

    week: str
    rules: Rules
    kpis: dict[str, Kpi]
    plans: dict[str, Plan]  # the current plan per person, items loaded
    latest: dict[tuple[str, str], Decimal]  # (metric, scope) → the latest sample of the week
    sums: dict[tuple[str, str], Decimal]  # (metric, scope) → the week's total (counts)
    days: dict[tuple[str, str], set[date]]  # (metric, scope) → the days of the week with a sample
    ratings: dict[str, dict[str, Rating]]  # person → KPI → rating
    appeals: dict[str, list[Appeal]]  # person → accepted appeals, oldest decision first
    switches: dict[str, list[Switch]]  # team → manual switches
    current_rules: bool = False  # the templates as they are now, not as in force that week
    leave: WeekLeave | None = None  # the week's leave of these people

    @classmethod
    def load(
        cls,
        session: Session,
        week: str,
        people: Collection[str] | None = None,
        *,
        current_rules: bool = False,
    ) -> WeekInputs:
        """``current_rules``: the templates as they are now, not the versions in force that week."""
        from handlers.template_versions import week_end

        days = week_days(week)
        plan_q = (
            select(Plan).options(selectinload(Plan.items)).where(Plan.week == week, Plan.current.is_(True))
        )
        rating_q = select(Rating).where(Rating.week == week)
        appeal_q = (
            select(Appeal, Appraisal.person_id)
            .join(Appraisal, Appeal.appraisal_id == Appraisal.id)
            .where(Appraisal.week == week, Appeal.status == "accepted")
            .order_by(Appeal.decided_at, Appeal.id)
        )
        if people is not None:
            plan_q = plan_q.where(Plan.person_id.in_(people))
            rating_q = rating_q.where(Rating.person_id.in_(people))
            appeal_q = appeal_q.where(Appraisal.person_id.in_(people))
        kpis = {k.key: k for k in session.scalars(select(Kpi))}
        plans = {p.person_id: p for p in session.scalars(plan_q)}
        latest: dict[tuple[str, str], Decimal] = {}
        sums: dict[tuple[str, str], Decimal] = {}
        metrics = {k.metric for k in kpis.values() if k.metric}
        sample_q = (
            select(MetricSample.metric, MetricSample.scope, MetricSample.value, MetricSample.day)
            .where(
                MetricSample.day >= days[0], MetricSample.day <= days[-1], MetricSample.metric.in_(metrics)
            )
            .order_by(MetricSample.day)
        )
        if people is not None:
            # the scopes these people's items name, and their own ids (per-person counts)
            scopes = {i.scope for p in plans.values() for i in p.items} | set(people)
            sample_q = sample_q.where(MetricSample.scope.in_(scopes))
        samples = session.execute(sample_q)
        seen: dict[tuple[str, str], set[date]] = {}
        for metric, scope, value, day in samples:
            latest[(metric, scope)] = value  # ordered by day: the last one wins
            sums[(metric, scope)] = sums.get((metric, scope), Decimal(0)) + value
            seen.setdefault((metric, scope), set()).add(day)
        ratings: dict[str, dict[str, Rating]] = {}
        for r in session.scalars(rating_q):
            ratings.setdefault(r.person_id, {})[r.kpi_key] = r
        appeals: dict[str, list[Appeal]] = {}
        for appeal, person_id in session.execute(appeal_q):
            appeals.setdefault(person_id, []).append(appeal)
        switch_rows = list(session.scalars(select(TemplateSwitch).where(TemplateSwitch.cancelled.is_(False))))
        authors = {sw.by for sw in switch_rows}
        names: dict[str, str] = {
            pid: name
            for pid, name in session.execute(select(Person.id, Person.name).where(Person.id.in_(authors)))
        }
        switches: dict[str, list[Switch]] = {}
        for sw in switch_rows:
            switches.setdefault(sw.team_id, []).append(_switch(session, sw, names))
        return cls(
            week=week,
            rules=Rules.load(session, None if current_rules else week_end(week)),
            kpis=kpis,
            plans=plans,
            latest=latest,
            sums=sums,
            days=seen,
            ratings=ratings,
            appeals=appeals,
            switches=switches,
            current_rules=current_rules,
            leave=WeekLeave.load(session, week, people),
        )

    def corrections(self, person_id: str) -> tuple[set[str], dict[str, Decimal]]:
        """KPIs excluded and values corrected by accepted appeals on any version of the week; they
        carry over into every later recompute (the newest decision per KPI wins)."""
        excluded: set[str] = set()
        corrected: dict[str, Decimal] = {}
        for appeal in self.appeals.get(person_id, []):
            if appeal.excluded:
                excluded.add(appeal.kpi_key)
                corrected.pop(appeal.kpi_key, None)
            elif appeal.corrected_value is not None:
                corrected[appeal.kpi_key] = appeal.corrected_value
                excluded.discard(appeal.kpi_key)
        return excluded, corrected


def compute(
    session: Session, person: Person, week: str, inputs: WeekInputs | None = None
) -> tuple[Selection, Result]:
    """Score ``person``'s ``week`` from what the database says now; writes nothing."""
    inputs = inputs or WeekInputs.load(session, week, [person.id])
    selection = _select(inputs.rules, person, week, inputs.switches.get(person.team_id, []))
    template = selection.template
    kpis = inputs.kpis
    plan = inputs.plans.get(person.id)
    plan_items = list(plan.items) if plan else []

    items = []
    for item in plan_items:
        kpi = kpis.get(item.kpi_key)
        if kpi is None:
            continue
        # rating / checklist items are scored from the ratings below; each keeps its own row
        metric = kpi.metric if kpi.kind == "metric" else None
        actual = inputs.latest.get((metric, item.scope)) if metric else None
        items.append(ItemInput(kpi.key, item.text, item.scope, item.baseline, item.target, actual, item.id))

    ratings_rows = inputs.ratings.get(person.id, {})
    ratings: dict[str, RatingInput] = {}
    for key in template.weights:
        kpi = kpis.get(key)
        if kpi is None or kpi.kind == "metric":
            continue
        rating = ratings_rows.get(key)
        # A checklist's planned tasks: what the leader recorded, else the plan's targets (=5 → 5 tasks).
        planned_in_plan = sum((i.target or Decimal(0) for i in plan_items if i.kpi_key == key), Decimal(0))
        planned = rating.planned if rating and rating.planned is not None else None
        if planned is None and planned_in_plan:
            planned = int(planned_in_plan)
        ratings[key] = RatingInput(
            stars=rating.stars if rating else None, done=rating.done if rating else None, planned=planned
        )

    counts: dict[str, Decimal] = {}
    for adj in template.adjustments:
        rating = ratings_rows.get(adj.kpi)
        kpi = kpis.get(adj.kpi)
        if rating is not None and rating.done is not None:
            counts[adj.kpi] = Decimal(rating.done)
        elif kpi is not None and kpi.metric and (kpi.metric, person.id) in inputs.sums:
            # per-person counts come as samples scoped to the person's id (e.g. a CS account)
            counts[adj.kpi] = inputs.sums[(kpi.metric, person.id)]

    excluded, corrections = inputs.corrections(person.id)
    info = {key: _info(k) for key, k in kpis.items()}
    result = score(
        template,
        info,
        items,
        ratings,
        counts=counts,
        excluded=excluded,
        corrections=corrections,
    )
    if plan is None:
        result = Result(
            result.template_id,
            result.score,
            result.grade,
            result.rows,
            result.adjustments,
            ("本周没有提交计划", *result.flags),
        )
    return selection, result


# ---------------------------------------------------------------- data missing (issue 16)


@dataclass(frozen=True)
class Missing:
    kpi: str
    metric: str
    scope: str
    days: tuple[date, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kpi": self.kpi,
            "metric": self.metric,
            "scope": self.scope,
            "days": [d.isoformat() for d in self.days],
        }


def missing_data(inputs: WeekInputs, result: Result, week: str, now: datetime, tz: str) -> list[Missing]:
    """The items that count but have no sample of their metric and scope inside the week (the
    window the completion is taken from); the days named are the week's days up to ``now``."""
    today = now.astimezone(ZoneInfo(tz)).date()
    window = week_days(week)
    named = tuple(d for d in window if d <= today) or tuple(window)
    out: dict[tuple[str, str], Missing] = {}
    for row in result.rows:
        if row.kind != "metric" or row.status in ("outside", "excluded", "unplanned") or not row.weight:
            continue
        kpi = inputs.kpis.get(row.kpi)
        if kpi is None or not kpi.metric:
            continue
        seen = inputs.days.get((kpi.metric, row.scope), set())
        if any(d in seen for d in window):
            continue
        out[(row.kpi, row.scope)] = Missing(row.kpi, kpi.metric, row.scope, named)
    return list(out.values())
