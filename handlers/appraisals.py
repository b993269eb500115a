"""Weekly appraisal runs, template switching, appeals (申诉) and leader ratings, on top of storage.

The scoring is pure (``appraisal/``); this module gathers its inputs from the database
(the person's current plan, the week's metric samples, ratings, accepted appeals), freezes
the result as an ``Appraisal`` version and explains it with a card. A published result is
never edited: a recompute, an accepted appeal, a late correction each add a version with
its reason, and the previous one stops being ``current``.

Public functions (the CLI and the scheduler call these; handlers below are chat-facing):
``run_week``, ``publish``, ``export_appraisals``, ``switch_template``, ``cancel_switch``,
``select_for``, ``compute`` (a preview that writes nothing), ``current_appraisal``,
``appraisal_card_for``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from appraisal.rules import flag_codes, rules_of
from appraisal.scoring import ItemInput, KpiInfo, RatingInput, Result, score
from appraisal.selection import (
    Employee,
    NoTemplate,
    Period,
    Selection,
    Switch,
    parse_period,
    select_template,
    week_days,
    week_of,
    with_presets,
)
from appraisal.templates import Template, TemplateError, parse_template
from cards.builders import (
    AUTO_TEMPLATE,
    NO_END,
    AppealView,
    AppraisalView,
    KpiChoice,
    TemplateChoice,
    appeal_form,
    appeal_result,
    appeal_review,
    appraisal_card,
    rating_form,
    template_switch_card,
    template_switched,
)
from cards.model import Card, Markdown, Note, Option
from cards.template_why import why_text
from handlers.dates import DateError, parse_day
from handlers.events_out import emit
from handlers.inbound import Inbound
from handlers.router import Context, LinkMaker, PermissionDenied, error_card, router
from storage import outbox
from storage.models import (
    Appeal,
    Appraisal,
    AuditLog,
    Kpi,
    MetricSample,
    Person,
    Plan,
    Rating,
    Role,
    Scenario,
    Team,
    TemplateSwitch,
)
from storage.models import Period as PeriodRow
from storage.models import Template as TemplateRow
from storage.people import person_target

log = logging.getLogger(__name__)

MAX_NOTE = 500  # characters in an appeal note or a reply
MAX_VALUE = Decimal("1e12")  # a corrected value beyond this is a typo


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


# ---------------------------------------------------------------- freezing versions


def current_appraisal(session: Session, person_id: str, week: str) -> Appraisal | None:
    return session.scalar(
        select(Appraisal).where(
            Appraisal.person_id == person_id, Appraisal.week == week, Appraisal.current.is_(True)
        )
    )


def _stored_items(result: Result) -> list[dict[str, Any]]:
    rows = [r.to_dict() for r in result.rows]
    rows.extend({**a.to_dict(), "kind": "adjustment"} for a in result.adjustments)
    return rows


def _score_text(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.1'))}"


def freeze(
    session: Session,
    person: Person,
    week: str,
    now: datetime,
    *,
    reason: str = "",
    inputs: WeekInputs | None = None,
    previous: Appraisal | None | bool = True,
    last_version: int | None = None,
    hold: bool = False,
) -> Appraisal:
    """Compute and store a new version of ``person``'s ``week``; the previous version stops being
    current. A run passes what it preloaded: the current version (None: there is none) and the
    highest version number so far."""
    selection, result = compute(session, person, week, inputs)
    if previous is True:
        previous = current_appraisal(session, person.id, week)
    if last_version is None:
        last_version = session.scalar(
            select(func.max(Appraisal.version)).where(
                Appraisal.person_id == person.id, Appraisal.week == week
            )
        )
    version = (last_version or 0) + 1
    why = reason.strip()
    if isinstance(previous, Appraisal):
        previous.current = False
        changes = []
        if previous.template_id != result.template_id:
            changes.append(f"模板 {previous.template_id} → {result.template_id}")
        old_score = previous.score.quantize(Decimal("1e-8"))
        if old_score != result.score or previous.grade != result.grade:
            changes.append(
                f"总分 {_score_text(previous.score)}（{previous.grade}）→ {_score_text(result.score)}（{result.grade}）"
            )
        why = f"{why or '重新计算'}；{'，'.join(changes) if changes else '结果未变'}"
        used = _version_of(inputs, selection.template.id)
        if used is not None:
            when = (
                "当前版本（按管理员要求）"
                if inputs is not None and inputs.current_rules
                else "当周生效的版本"
            )
            why += f"；规则：{selection.template.id} 第 {used} 版，{when}"
    plan = inputs.plans.get(person.id) if inputs is not None else None
    rules = rules_of(selection.template, _version_of(inputs, selection.template.id))
    from handlers.held import missing_data

    missing = missing_data(inputs, result, week, now, person.team.timezone) if inputs is not None else []
    held = hold and bool(missing)
    if missing:
        rules["missing"] = [m.to_dict() for m in missing]
    if selection.why is not None:
        rules["why"] = selection.why.to_dict()  # which rule chose the template (cards/template_why.py)
    rules["flags"] = flag_codes(
        result,
        late=plan is not None and plan.status == "late",
        on_leave=_on_leave(session, person, week),
        no_plan=inputs is not None and plan is None,
        held=held,
    )
    row = Appraisal(
        person_id=person.id,
        team_id=person.team_id,
        week=week,
        version=version,
        current=True,
        template_id=result.template_id,
        template_reason=selection.reason,
        score=result.score,
        grade=result.grade,
        items=_stored_items(result),
        flags=list(result.flags),
        version_reason=why,
        created_at=now,
        status="held" if held else "published",
        rules=rules,
    )
    session.add(row)
    session.add(
        AuditLog(
            at=now,
            actor="system",
            action="appraisal.publish",
            subject=f"{person.id}/{week}",
            detail={
                "version": version,
                "template": result.template_id,
                "score": str(result.score),
                "grade": result.grade,
                "reason": why,
            },
        )
    )
    session.flush()
    from handlers.appraisal_export import appraisal_entry

    emit(
        session,
        "appraisal.held" if held else "appraisal.published",
        appraisal_entry(session, row),
        resource=f"appraisal:{person.id}/{week}",
        now=now,
    )
    return row


def _version_of(inputs: WeekInputs | None, template_id: str) -> int | None:
    return inputs.rules.versions.get(template_id) if inputs is not None else None


def away_whole_week(session: Session, person: Person, week: str) -> bool:
    from handlers.leave import away_whole_week as away

    return away(session, person, week)


def _on_leave(session: Session, person: Person, week: str) -> bool:
    """Did a leave of ``person`` overlap ``week``?"""
    from handlers.leave import leave_days

    return bool(leave_days(session, person.id, week))


def _appraised_people(session: Session, week: str, team: str | None, inputs: WeekInputs) -> list[Person]:
    query = (
        select(Person)
        .join(Team, Person.team_id == Team.id)
        .where(Person.active.is_(True), Team.active.is_(True))
        .order_by(Person.team_id, Person.id)
    )
    if team is not None:
        query = query.where(Person.team_id == team)
    people = []
    sunday = week_days(week)[-1]
    for person in session.scalars(query):
        has_plan = person.id in inputs.plans
        if not has_plan and person.team.leader_id == person.id:
            continue  # a leader who filed no plan is appraising, not appraised
        if not has_plan and away_whole_week(session, person, week):
            continue  # on leave the whole week (only leave that overlapped it counts: handlers/leave.py)
        if person.hire_date is not None and person.hire_date > sunday:
            continue  # not yet hired that week
        people.append(person)
    return people


def run_week(
    session: Session,
    week: str,
    now: datetime,
    *,
    reason: str = "",
    team: str | None = None,
    hold: bool = True,
    current_rules: bool = False,
) -> list[Appraisal]:
    """Freeze one appraisal version per appraised person of ``week`` (a team's, or everyone's).

    Run over a published week it makes new versions with ``reason``. People with no template
    are skipped and logged. The caller owns the transaction; pass the new rows to ``publish``.
    """
    week_days(week)  # a bad week label fails before anything is written
    if team is not None and session.get(Team, team) is None:
        raise AppraisalError(f"没有 id 为“{team}”的团队")
    try:
        from handlers.plan_items import fill_baselines

        fill_baselines(session, now)  # pending baselines that data has since fixed
    except ImportError:  # pragma: no cover - the plans room ships with the package
        pass
    # a team's run reads that team's plans, ratings and appeals only (runs go team by team)
    members = None if team is None else list(session.scalars(select(Person.id).where(Person.team_id == team)))
    inputs = WeekInputs.load(session, week, members, current_rules=current_rules)
    current_q = select(Appraisal).where(Appraisal.week == week, Appraisal.current.is_(True))
    if members is not None:
        current_q = current_q.where(Appraisal.person_id.in_(members))
    current = {a.person_id: a for a in session.scalars(current_q)}
    out = []
    for person in _appraised_people(session, week, team, inputs):
        try:
            out.append(
                freeze(
                    session,
                    person,
                    week,
                    now,
                    reason=reason,
                    inputs=inputs,
                    previous=current.get(person.id),
                    hold=hold,
                )
            )
        except NoTemplate as exc:
            log.warning("appraisal %s skipped: %s", week, exc)
    session.flush()
    return out


# ---------------------------------------------------------------- cards and delivery


def template_why(session: Session, row: Appraisal, locale: str = "zh-CN") -> str:
    """Why the row's template applied, in the locale's words (the stored reason for older rows)."""
    why = (row.rules or {}).get("why")
    role = session.get(Role, why.get("role", "")) if isinstance(why, dict) else None
    return why_text(why, row.template_reason, locale=locale, role=role.name if role else "")


def _view(session: Session, row: Appraisal, locale: str = "zh-CN") -> AppraisalView:
    person = session.get(Person, row.person_id)
    template = session.get(TemplateRow, row.template_id)
    items = list(row.items or [])
    return AppraisalView(
        appraisal_id=row.id,
        person_name=person.name if person else row.person_id,
        week=row.week,
        version=row.version,
        template=(template.name or template.id) if template else row.template_id,
        reason=template_why(session, row, locale),
        score=row.score,
        grade=row.grade,
        rows=[i for i in items if i.get("kind") != "adjustment"],
        adjustments=[i for i in items if i.get("kind") == "adjustment"],
        flags=list(row.flags or []),
        version_reason=row.version_reason,
    )


def appraisal_card_for(
    session: Session,
    row: Appraisal,
    *,
    links: LinkMaker | None = None,
    can_appeal: bool = True,
    locale: str = "zh-CN",
) -> Card:
    """The explanation card of one stored version (appeal buttons only on the current one)."""
    url = links(row.person_id, "appraisal", row.week) if links else ""
    return appraisal_card(
        _view(session, row, locale), can_appeal=can_appeal and row.current, detail_url=url, locale=locale
    )


def publish(
    session: Session,
    appraisals: Iterable[Appraisal],
    now: datetime,
    *,
    bots: Collection[str],
    links: LinkMaker | None = None,
    locale: str = "zh-CN",
) -> int:
    """Queue each person's explanation card to their direct chat; returns messages queued."""
    queued = 0
    for row in appraisals:
        if row.status == "held":
            continue  # data missing: not sent (handlers/held.py tells the leader and the admins)
        person = session.get(Person, row.person_id)
        target = person_target(session, person, bots) if person else None
        if target is None:
            log.warning("appraisal %s: no chat to deliver to for %s", row.id, row.person_id)
            continue
        card = appraisal_card_for(session, row, links=links, locale=locale)
        if outbox.enqueue(session, target, card, dedupe_key=f"appraisal:{row.id}", now=now):
            queued += 1
    return queued


# ---------------------------------------------------------------- export


def export_appraisals(session: Session, week: str, team: str | None = None) -> dict[str, Any]:
    """The newest version of every appraisal of ``week``: handlers/appraisal_export.py (issue 16)."""
    from handlers.appraisal_export import export_appraisals as export

    return export(session, week, team)


# ---------------------------------------------------------------- template switching


def _today(team: Team, now: datetime) -> date:
    return now.astimezone(ZoneInfo(team.timezone)).date()


def _team_templates(session: Session, team: Team, rules: Rules) -> list[Template]:
    roles = {
        p.role
        for p in session.scalars(select(Person).where(Person.team_id == team.id, Person.active.is_(True)))
    }
    return [t for t in rules.templates if t.role is None or t.role in roles]


def _team_selection(session: Session, team: Team, week: str, rules: Rules) -> list[str]:
    """The templates that apply to the team's members in ``week`` (ids, sorted, distinct)."""
    chosen = set()
    for person in session.scalars(select(Person).where(Person.team_id == team.id, Person.active.is_(True))):
        try:
            chosen.add(select_for(session, person, week, rules).template.id)
        except NoTemplate:
            continue
    return sorted(chosen)


def switch_template(
    session: Session,
    team_id: str,
    template_id: str,
    *,
    by: str,
    now: datetime,
    until: date | None = None,
    start: date | None = None,
) -> TemplateSwitch:
    """A leader's manual switch of ``team_id`` to ``template_id`` from ``start`` (default: today in the
    team's zone) to ``until`` inclusive (None: until cancelled). Earlier switches end the day before.
    Audited as ``template.switch`` with who, when, from and to."""
    team = session.get(Team, team_id)
    if team is None:
        raise AppraisalError(f"没有 id 为“{team_id}”的团队")
    rules = Rules.load(session)
    template = next((t for t in rules.templates if t.id == template_id), None)
    if template is None:
        known = "、".join(t.id for t in _team_templates(session, team, rules)) or "（无）"
        raise AppraisalError(f"没有 id 为“{template_id}”的可用模板（可选：{known}）")
    if template not in _team_templates(session, team, rules):
        raise AppraisalError(
            f"模板“{template.label}”适用于岗位 {template.role}，{team.name}没有这个岗位的成员"
        )
    first = start or _today(team, now)
    if until is not None and until < first:
        raise AppraisalError(f"截止日期 {until:%Y-%m-%d} 早于开始日期 {first:%Y-%m-%d}")
    week = week_of(first)
    before = _team_selection(session, team, week, rules)
    for old in session.scalars(
        select(TemplateSwitch).where(TemplateSwitch.team_id == team_id, TemplateSwitch.cancelled.is_(False))
    ):
        if old.start >= first:
            old.cancelled = True
        elif old.until is None or old.until >= first:
            old.until = first - timedelta(days=1)
    row = TemplateSwitch(team_id=team_id, template_id=template_id, start=first, until=until, by=by, at=now)
    session.add(row)
    session.flush()
    session.add(
        AuditLog(
            at=now,
            actor=by,
            action="template.switch",
            subject=f"team {team_id}",
            detail={
                "team": team_id,
                "from": before,
                "to": template_id,
                "start": first.isoformat(),
                "until": until.isoformat() if until else None,
            },
        )
    )
    emit(
        session,
        "template.switched",
        {
            "id": row.id,
            "team": team_id,
            "from": before,
            "to": template_id,
            "start": first.isoformat(),
            "until": until.isoformat() if until else None,
            "by": by,
        },
        resource=f"team:{team_id}",
        now=now,
    )
    return row


def cancel_switch(session: Session, team_id: str, *, by: str, now: datetime) -> int:
    """End the team's manual switches from today: back to the rule (a switch that already covered a day
    of this week still covers this week). Returns switches ended; audited as ``template.switch.cancel``."""
    team = session.get(Team, team_id)
    if team is None:
        raise AppraisalError(f"没有 id 为“{team_id}”的团队")
    today = _today(team, now)
    ended = []
    for old in session.scalars(
        select(TemplateSwitch).where(TemplateSwitch.team_id == team_id, TemplateSwitch.cancelled.is_(False))
    ):
        if old.until is not None and old.until < today:
            continue
        if old.start >= today:
            old.cancelled = True
        else:
            old.until = today - timedelta(days=1)
        ended.append(old.template_id)
    if ended:
        session.add(
            AuditLog(
                at=now,
                actor=by,
                action="template.switch.cancel",
                subject=f"team {team_id}",
                detail={"team": team_id, "from": sorted(set(ended)), "to": None, "day": today.isoformat()},
            )
        )
    return len(ended)


# ---------------------------------------------------------------- chat: helpers


def _me(ctx: Context) -> Person:
    if ctx.person is None:  # the router calls non-public handlers with a person only
        raise PermissionDenied("还不认识你")
    return ctx.person


def _led_team(ctx: Context, event: Inbound, named: str = "") -> Team:
    """The team the acting leader means: named, else the chat's team, else their only team."""
    me = _me(ctx)
    teams = list(ctx.session.scalars(select(Team).where(Team.leader_id == me.id, Team.active.is_(True))))
    if not teams:
        raise PermissionDenied("只有团队主管可以做这件事。")
    if named:
        team = next((t for t in teams if t.id == named or t.name == named), None)
        if team is None:
            raise PermissionDenied(f"你不是“{named}”的主管。")
        return team
    if event.chat_type == "group":
        in_chat = next((t for t in teams if t.chat_id == event.chat), None)
        if in_chat is not None:
            return in_chat
    if len(teams) == 1:
        return teams[0]
    raise AppraisalError("你是多个团队的主管，请写明团队：切换模板 模板id 至 12-01 团队 团队id")


def _leader_of(session: Session, team_id: str, person: Person) -> None:
    team = session.get(Team, team_id)
    if team is None or team.leader_id != person.id:
        raise PermissionDenied("只有该员工所在团队的主管可以处理。")


def _notify(ctx: Context, person: Person | None, card: Card, key: str) -> None:
    target = person_target(ctx.session, person, ctx.bots) if person else None
    if target is not None:
        outbox.enqueue(ctx.session, target, card, dedupe_key=key, now=ctx.now)


def _done(title: str, text: str, toast: str = "") -> Card:
    return Card(title=title, theme="green", blocks=(Markdown(text),), toast=toast)


# ---------------------------------------------------------------- chat: viewing


_WEEK_WORD = re.compile(r"(\d{4})-?W(\d{1,2})", re.IGNORECASE)


@router.command("考核", "appraisal")
def show_appraisal(event: Inbound, ctx: Context) -> Card:
    """ "考核" shows my latest appraisal; "考核 2026-W47" a given week."""
    me = _me(ctx)
    m = _WEEK_WORD.search(event.text)
    query = select(Appraisal).where(Appraisal.person_id == me.id, Appraisal.current.is_(True))
    if m:
        query = query.where(Appraisal.week == f"{m.group(1)}-W{int(m.group(2)):02d}")
    row = ctx.session.scalar(query.order_by(Appraisal.week.desc()).limit(1))
    if row is None:
        return Card(
            title="考核结果",
            theme="grey",
            blocks=(Markdown("还没有你的考核结果。每周考核发布后会私信给你。"),),
        )
    if row.status == "held":
        return Card(
            title=f"{row.week} 考核结果 · 数据缺失",
            theme="grey",
            blocks=(Markdown("本周部分数据还没有到齐，考核暂缓发布；数据到齐或主管确认后会私信给你。"),),
        )
    return appraisal_card_for(ctx.session, row, links=ctx.links, locale=ctx.locale)


# ---------------------------------------------------------------- chat: switching templates


_SWITCH = re.compile(
    r"^(?:切换模板|switch-template)\s*(?P<template>\S+)?(?:\s*(?:至|到|until)\s*(?P<until>\S+))?"
    r"(?:\s*(?:团队|team)\s*(?P<team>\S+))?\s*$",
    re.IGNORECASE,
)


def _switch_card(ctx: Context, team: Team, error: str = "") -> Card:
    rules = Rules.load(ctx.session)
    week = week_of(_today(team, ctx.now))
    choices = []
    for t in _team_templates(ctx.session, team, rules):
        notes = []
        if t.period and t.period in rules.periods:
            notes.append(f"{rules.periods[t.period].name} {rules.periods[t.period].window}")
        if t.scenario:
            notes.append(f"场景：{t.scenario}")
        if t.employee_type:
            notes.append("新员工" if t.employee_type == "new" else "老员工")
        choices.append(TemplateChoice(t.id, t.label, "，".join(notes)))
    current = "、".join(_team_selection(ctx.session, team, week, rules))
    return template_switch_card(
        team_name=team.name,
        current=current,
        choices=choices,
        until=_end_choices(_today(team, ctx.now)),
        error=error,
    )


def _end_choices(today: date) -> list[Option]:
    """End dates a leader usually means: this Sunday, next Sunday, the month's last day, none."""
    sunday = today + timedelta(days=6 - today.weekday())
    next_month = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    month_end = next_month - timedelta(days=1)
    out = [
        Option(sunday.isoformat(), f"本周日 {sunday:%m-%d}"),
        Option((sunday + timedelta(days=7)).isoformat(), f"下周日 {sunday + timedelta(days=7):%m-%d}"),
    ]
    if month_end > sunday + timedelta(days=7):
        out.append(Option(month_end.isoformat(), f"月底 {month_end:%m-%d}"))
    out.append(Option(NO_END, "不设截止"))
    return out


def _do_switch(ctx: Context, event: Inbound, template_id: str, until_text: str, team_word: str = "") -> Card:
    me = _me(ctx)
    team = _led_team(ctx, event, team_word)
    today = _today(team, ctx.now)
    try:
        until = parse_day(until_text, today) if until_text else None
        rules = Rules.load(ctx.session)
        before = _team_selection(ctx.session, team, week_of(today), rules)
        row = switch_template(ctx.session, team.id, template_id, by=me.id, now=ctx.now, until=until)
    except (AppraisalError, DateError) as exc:
        return _switch_card(ctx, team, error=str(exc))
    template = ctx.session.get(TemplateRow, row.template_id)
    label = (template.name or template.id) if template else row.template_id
    window = Switch(row.template_id, row.start, row.until, me.name, row.at).window
    return template_switched(
        team_name=team.name, template=label, window=window, replaced="、".join(before), by=me.name
    )


@router.command("切换模板", "switch-template")
def switch_command(event: Inbound, ctx: Context) -> Card:
    """ "切换模板 ops-promo 至 12-01 [团队 ops]"; without a template, the one-click card."""
    m = _SWITCH.match(event.text.strip().splitlines()[0].strip())
    if m is None:
        return error_card("格式：切换模板 模板id [至 12-01] [团队 团队id]")
    try:
        if not m.group("template"):
            return _switch_card(ctx, _led_team(ctx, event, m.group("team") or ""))
        return _do_switch(ctx, event, m.group("template"), m.group("until") or "", m.group("team") or "")
    except AppraisalError as exc:
        return error_card(str(exc))


@router.action("template.switch")
def switch_action(event: Inbound, ctx: Context) -> Card:
    template_id = str(event.values.get("template", "")).strip()
    if template_id == AUTO_TEMPLATE:
        return _cancel(event, ctx)
    try:
        if not template_id:
            return _switch_card(
                ctx, _led_team(ctx, event, str(event.values.get("team", ""))), error="请选择模板"
            )
        until = str(event.values.get("until", "")).strip()
        return _do_switch(
            ctx, event, template_id, "" if until == NO_END else until, str(event.values.get("team", ""))
        )
    except AppraisalError as exc:
        return error_card(str(exc))


@router.command("恢复模板", "取消切换")
@router.action("template.switch.cancel")
def cancel_action(event: Inbound, ctx: Context) -> Card:
    return _cancel(event, ctx)


def _cancel(event: Inbound, ctx: Context) -> Card:
    me = _me(ctx)
    try:
        team = _led_team(ctx, event, str(event.values.get("team", "")))
    except AppraisalError as exc:
        return error_card(str(exc))
    ended = cancel_switch(ctx.session, team.id, by=me.id, now=ctx.now)
    if not ended:
        return _done("考核模板", f"{team.name}当前没有手动切换，已是按规则自动选择。")
    return _done("考核模板已恢复", f"{team.name}从今天起恢复按规则自动选择模板。", toast="已恢复")


# ---------------------------------------------------------------- chat: appeals


def _appraisal(ctx: Context, raw: object) -> Appraisal:
    try:
        row = ctx.session.get(Appraisal, int(str(raw)))
    except ValueError:
        row = None
    if row is None:
        raise AppraisalError("找不到这份考核结果。")
    return row


def _choices(row: Appraisal) -> list[KpiChoice]:
    seen: dict[str, KpiChoice] = {}
    for item in row.items or []:
        if item.get("kind") == "adjustment" or item.get("status") in ("outside", "excluded"):
            continue
        seen.setdefault(
            item["kpi"],
            KpiChoice(item["kpi"], str(item.get("name") or item["kpi"]), str(item.get("unit", ""))),
        )
    return list(seen.values())


def _own_current(ctx: Context, row: Appraisal) -> None:
    if row.person_id != _me(ctx).id:
        raise PermissionDenied("只能对自己的考核结果申诉。")
    if not row.current:
        raise AppraisalError("这份结果已有新版本，请在最新的考核卡片上申诉（发送“考核”查看）。")


@router.action("appraisal.appeal")
def appeal_open(event: Inbound, ctx: Context) -> Card:
    try:
        row = _appraisal(ctx, event.values.get("appraisal"))
        _own_current(ctx, row)
    except AppraisalError as exc:
        return error_card(str(exc))
    kpi = str(event.values.get("kpi", ""))
    return appeal_form(
        appraisal_id=row.id, week=row.week, items=_choices(row), kpi=kpi, link=_appeal_link(ctx, row, kpi)
    )


# Forms with text inputs also open as signed web pages (WeCom cards cannot hold text inputs).
def _appeal_link(ctx: Context, row: Appraisal, kpi: str) -> str:
    extra = {"appraisal": str(row.id), **({"kpi": kpi} if kpi else {})}
    return ctx.links(row.person_id, "appeal-form", row.week, **extra)


def _review_link(ctx: Context, leader: Person | None, appeal: Appeal, week: str) -> str:
    return ctx.links(leader.id, "appeal-review", week, appeal=str(appeal.id)) if leader else ""


def appeal_event(appeal: Appeal, row: Appraisal) -> dict[str, Any]:
    """An appeal as an outgoing webhook's ``data``."""
    return {
        "id": appeal.id,
        "employee": row.person_id,
        "team": row.team_id,
        "week": row.week,
        "appraisal_version": row.version,
        "kpi": appeal.kpi_key,
        "note": appeal.note,
        "status": appeal.status,
        "excluded": bool(appeal.excluded),
        "corrected_value": float(appeal.corrected_value) if appeal.corrected_value is not None else None,
        "reply": appeal.reply or "",
        "created_at": appeal.created_at.isoformat(),
        "decided_at": appeal.decided_at.isoformat() if appeal.decided_at else None,
    }


def _appeal_view(session: Session, appeal: Appeal, row: Appraisal) -> AppealView:
    person = session.get(Person, row.person_id)
    item = next((i for i in row.items or [] if i.get("kpi") == appeal.kpi_key), {"kpi": appeal.kpi_key})
    return AppealView(
        appeal_id=appeal.id,
        person_name=person.name if person else row.person_id,
        week=row.week,
        kpi_name=str(item.get("name") or appeal.kpi_key),
        unit=str(item.get("unit", "")),
        kind=str(item.get("kind", "metric")),
        note=appeal.note,
        row=item,
        status=appeal.status,
        reply=appeal.reply,
    )


@router.action("appraisal.appeal.submit")
def appeal_submit(event: Inbound, ctx: Context) -> Card:
    me = _me(ctx)
    try:
        row = _appraisal(ctx, event.values.get("appraisal"))
        _own_current(ctx, row)
    except AppraisalError as exc:
        return error_card(str(exc))
    kpi = str(event.values.get("kpi", "")).strip()
    note = str(event.values.get("note", "")).strip()
    choices = _choices(row)
    fixed = kpi if "kpi" in event.values and any(c.key == kpi for c in choices) else ""

    def again(error: str) -> Card:
        return appeal_form(
            appraisal_id=row.id,
            week=row.week,
            items=choices,
            kpi=fixed,
            error=error,
            link=_appeal_link(ctx, row, fixed),
        )

    if not any(c.key == kpi for c in choices):
        return again("请选择要申诉的一项")
    if not note:
        return again("请写申诉理由（例如：数据晚到、范围写错）")
    if len(note) > MAX_NOTE:
        return again(f"申诉理由太长（{len(note)} 字，最多 {MAX_NOTE} 字）")
    open_one = ctx.session.scalar(
        select(Appeal).where(Appeal.appraisal_id == row.id, Appeal.kpi_key == kpi, Appeal.status == "open")
    )
    if open_one is not None:
        return error_card("这一项已有一条待处理的申诉，请等主管处理。", title="申诉已存在")
    appeal = Appeal(appraisal_id=row.id, kpi_key=kpi, note=note, status="open", created_at=ctx.now)
    ctx.session.add(appeal)
    ctx.session.flush()
    ctx.session.add(
        AuditLog(
            at=ctx.now,
            actor=me.id,
            action="appraisal.appeal",
            subject=f"{row.person_id}/{row.week}",
            detail={
                "appeal": appeal.id,
                "appraisal": row.id,
                "version": row.version,
                "kpi": kpi,
                "note": note,
            },
        )
    )
    emit(
        ctx.session, "appeal.created", appeal_event(appeal, row), resource=f"appeal:{appeal.id}", now=ctx.now
    )
    team = ctx.session.get(Team, row.team_id)
    leader = ctx.session.get(Person, team.leader_id) if team and team.leader_id else None
    view = _appeal_view(ctx.session, appeal, row)
    review = appeal_review(view, link=_review_link(ctx, leader, appeal, row.week))
    _notify(ctx, leader, review, f"appeal:{appeal.id}:review")
    return _done(
        f"申诉已提交 · {row.week}",
        f"你对“{view.kpi_name}”的申诉已提交给主管{f' {leader.name}' if leader else ''}，处理后会通知你。",
        toast="已提交",
    )


def _corrected(view: AppealView, raw: str) -> Decimal:
    try:
        value = Decimal(raw.strip().replace(",", "").rstrip("%").strip())
    except InvalidOperation:
        raise AppraisalError(f"更正值“{raw}”不是数字") from None
    if not value.is_finite() or abs(value) > MAX_VALUE:
        raise AppraisalError(f"更正值“{raw}”大得不合理")
    if view.kind == "rating" and value not in {Decimal(n) for n in range(1, 6)}:
        raise AppraisalError("评分类指标的更正值应为 1–5 的整数星级")
    if view.kind == "checklist" and (value < 0 or value != value.to_integral_value()):
        raise AppraisalError("清单类指标的更正值应为完成的任务数（非负整数）")
    return value


@router.action("appraisal.appeal.decide")
def appeal_decide(event: Inbound, ctx: Context) -> Card:
    me = _me(ctx)
    try:
        appeal = ctx.session.get(Appeal, int(str(event.values.get("appeal", ""))))
    except ValueError:
        appeal = None
    if appeal is None:
        return error_card("找不到这条申诉。")
    row = ctx.session.get(Appraisal, appeal.appraisal_id)
    assert row is not None  # the foreign key
    _leader_of(ctx.session, row.team_id, me)
    view = _appeal_view(ctx.session, appeal, row)
    link = _review_link(ctx, me, appeal, row.week)
    if appeal.status != "open":
        state = "接受" if appeal.status == "accepted" else "驳回"
        return error_card(
            f"这条申诉已于 {appeal.decided_at:%m-%d %H:%M} 处理（{state}）。", title="申诉已处理"
        )
    decision = str(event.values.get("decision", "")).strip()
    reply = str(event.values.get("reply", "")).strip()
    if len(reply) > MAX_NOTE:
        return appeal_review(view, error=f"回复太长（最多 {MAX_NOTE} 字）", link=link)
    if decision not in ("correct", "exclude", "reject"):
        return appeal_review(view, error="请选择处理方式", link=link)
    if decision == "reject" and not reply:
        return appeal_review(view, error="驳回时请写明理由", link=link)
    if decision == "correct":
        try:
            appeal.corrected_value = _corrected(view, str(event.values.get("value", "")))
        except AppraisalError as exc:
            return appeal_review(view, error=str(exc), link=link)
    appeal.excluded = decision == "exclude"
    appeal.status = "rejected" if decision == "reject" else "accepted"
    appeal.reply = reply
    appeal.decided_at = ctx.now
    ctx.session.flush()
    detail: dict[str, Any] = {
        "appeal": appeal.id,
        "kpi": appeal.kpi_key,
        "decision": decision,
        "reply": reply,
    }
    employee = ctx.session.get(Person, row.person_id)
    new_row = None
    if appeal.status == "accepted":
        what = (
            "剔除此项"
            if appeal.excluded
            else f"更正为 {appeal.corrected_value:f}{(' ' + view.unit) if view.unit and view.kind == 'metric' else ''}"
        )
        reason = f"申诉（{view.kpi_name}）已接受：{what}" + (f"（{reply}）" if reply else "")
        assert employee is not None
        new_row = freeze(ctx.session, employee, row.week, ctx.now, reason=reason)
        detail.update(new_version=new_row.version, score=str(new_row.score), grade=new_row.grade)
        if appeal.corrected_value is not None:
            detail["value"] = str(appeal.corrected_value)
    ctx.session.add(
        AuditLog(
            at=ctx.now,
            actor=me.id,
            action=f"appraisal.appeal.{'accept' if appeal.status == 'accepted' else 'reject'}",
            subject=f"{row.person_id}/{row.week}",
            detail=detail,
        )
    )
    emit(
        ctx.session, "appeal.decided", appeal_event(appeal, row), resource=f"appeal:{appeal.id}", now=ctx.now
    )
    decided = _appeal_view(ctx.session, appeal, row)
    result = appeal_result(
        decided, new_score=new_row.score if new_row else None, new_grade=new_row.grade if new_row else ""
    )
    _notify(ctx, employee, result, f"appeal:{appeal.id}:result")
    if new_row is not None:
        _notify(
            ctx,
            employee,
            appraisal_card_for(ctx.session, new_row, links=ctx.links, locale=ctx.locale),
            f"appraisal:{new_row.id}",
        )
    verdict = "已接受，已生成新版本" if new_row else "已驳回"
    body = f"{decided.person_name} 对“{decided.kpi_name}”的申诉{verdict}。"
    if new_row is not None:
        body += f"\n第 {new_row.version} 版：{new_row.score.quantize(Decimal('0.1'))} 分 {new_row.grade}"
    return _done("申诉已处理", body, toast="已处理")


# ---------------------------------------------------------------- chat: ratings


def _rating_kpis(session: Session) -> list[Kpi]:
    return list(session.scalars(select(Kpi).where(Kpi.kind.in_(("rating", "checklist"))).order_by(Kpi.key)))


def _rating_card(ctx: Context, team: Team, error: str = "") -> Card:
    today = _today(team, ctx.now)
    this_week, last_week = week_of(today), week_of(today - timedelta(days=7))
    members = [
        KpiChoice(p.id, p.name)
        for p in ctx.session.scalars(
            select(Person).where(Person.team_id == team.id, Person.active.is_(True)).order_by(Person.id)
        )
    ]
    kpis = [KpiChoice(k.key, k.name, k.unit) for k in _rating_kpis(ctx.session)]
    return rating_form(
        week=this_week,
        weeks=[this_week, last_week],
        people=members,
        kpis=kpis,
        error=error,
        link=ctx.links(_me(ctx).id, "rating-form", this_week),
    )


@router.command("评分", "rate")
def rate_command(event: Inbound, ctx: Context) -> Card:
    try:
        return _rating_card(ctx, _led_team(ctx, event))
    except AppraisalError as exc:
        return error_card(str(exc))


def _small_int(raw: object, what: str, low: int, high: int) -> int | None:
    text = str(raw or "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise AppraisalError(f"{what}应为整数，不是“{text}”") from None
    if not low <= value <= high:
        raise AppraisalError(f"{what}应在 {low}–{high} 之间")
    return value


@router.action("appraisal.rate")
def rate_action(event: Inbound, ctx: Context) -> Card:
    me = _me(ctx)
    try:
        team = _led_team(ctx, event)
    except AppraisalError as exc:
        return error_card(str(exc))
    values = event.values
    person = ctx.session.get(Person, str(values.get("person", "")))
    if person is None or person.team_id != team.id:
        return _rating_card(ctx, team, error="请选择本团队的员工")
    kpi = ctx.session.get(Kpi, str(values.get("kpi", "")))
    if kpi is None or kpi not in _rating_kpis(ctx.session):
        return _rating_card(ctx, team, error="请选择评分类或清单类指标")
    week = str(values.get("week", "")).strip()
    try:
        week_days(week)
        stars = _small_int(values.get("stars"), "星级", 1, 5)
        done = _small_int(values.get("done"), "完成任务数", 0, 10000)
        planned = _small_int(values.get("planned"), "计划任务数", 1, 10000)
    except (AppraisalError, ValueError) as exc:
        return _rating_card(ctx, team, error=str(exc))
    if kpi.kind == "rating" and stars is None:
        return _rating_card(ctx, team, error=f"{kpi.name}是评分类指标，请选择 1–5 星")
    if kpi.kind == "checklist" and done is None:
        return _rating_card(ctx, team, error=f"{kpi.name}是清单类指标，请填写完成任务数")
    row = ctx.session.get(Rating, (person.id, week, kpi.key))
    before = {"stars": row.stars, "done": row.done, "planned": row.planned} if row else None
    if row is None:
        row = Rating(person_id=person.id, week=week, kpi_key=kpi.key, by=me.id, at=ctx.now)
        ctx.session.add(row)
    row.stars = stars if kpi.kind == "rating" else None
    row.done = done if kpi.kind == "checklist" else None
    row.planned = planned if kpi.kind == "checklist" else None
    row.by, row.at = me.id, ctx.now
    after = {"stars": row.stars, "done": row.done, "planned": row.planned}
    ctx.session.add(
        AuditLog(
            at=ctx.now,
            actor=me.id,
            action="appraisal.rate",
            subject=f"{person.id}/{week}",
            detail={"kpi": kpi.key, "from": before, "to": after},
        )
    )
    shown = (
        f"{stars} 星" if kpi.kind == "rating" else f"完成 {done}" + (f" / 计划 {planned}" if planned else "")
    )
    return Card(
        title="已保存",
        theme="green",
        blocks=(Markdown(f"{person.name} · {week} · {kpi.name}：{shown}"), Note("考核运行时按此计分。")),
        toast="已保存",
    )
