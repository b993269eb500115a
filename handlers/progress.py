"""Progress of plan items from metric samples, and lag detection; the 进度 / progress command.

Set-based: ``week_progress`` reads every item of a week with its latest sample in ONE
query (the database picks the latest sample per metric and scope), then the pure
functions below turn each row into completion, expected pace and a status.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select, type_coerce
from sqlalchemy.orm import Session

from appraisal.completion import CompletionUndefined
from appraisal.completion import completion as raw_completion
from cards import builders_progress as cards
from cards.model import Card
from handlers import workdays
from handlers.inbound import Inbound
from handlers.router import Context, PermissionDenied, router
from storage.calendar import load_overrides
from storage.models import Kpi, MetricSample, Person, Plan, PlanItem, Team

NO_DATA = "no data"
ON_TRACK = "on track"
LAGGING = "lagging"
DONE = "done"

DEFAULT_LAG_MARGIN = 20  # percentage points
GRACE_WORKDAYS = 2  # no lag verdict before this many workdays of the week are over
INACTIVE_PLAN_STATUSES = ("draft", "withdrawn", "cancelled")

_HUNDRED = Decimal(100)


def completion(
    baseline: Decimal | None, target: Decimal | None, actual: Decimal | None, direction: str
) -> Decimal | None:
    """The appraisal's raw completion (up (a−b)/(t−b), down (b−a)/(b−t)), so progress and the
    weekly score never disagree; None without data or when it is undefined (target = baseline)."""
    if baseline is None or target is None or actual is None:
        return None
    try:
        return raw_completion(baseline, target, actual, direction)
    except (CompletionUndefined, ValueError):
        return None


def expected_pace(elapsed: int, total: int) -> Decimal | None:
    """Workdays behind us / workdays in the plan's week; None for a week without workdays."""
    if total <= 0:
        return None
    return Decimal(min(elapsed, total)) / Decimal(total)


def is_lagging(
    done: Decimal | None, pace: Decimal | None, elapsed: int, margin_points: int = DEFAULT_LAG_MARGIN
) -> bool:
    """Completion trails the pace by more than ``margin_points`` after the first two workdays."""
    if done is None or pace is None or elapsed < GRACE_WORKDAYS:
        return False
    return (pace - done) * _HUNDRED > Decimal(margin_points)


def status_of(done: Decimal | None, lagging: bool) -> str:
    if done is None:
        return NO_DATA
    if done >= 1:
        return DONE
    return LAGGING if lagging else ON_TRACK


@dataclass(slots=True)  # not frozen: built 50,000 at a time, and frozen init costs 5×
class ItemProgress:
    item_id: int
    plan_id: int
    person_id: str
    team_id: str
    week: str
    position: int
    text: str
    kpi_key: str
    kpi_name: str
    unit: str
    direction: str
    scope: str
    baseline: Decimal | None
    target: Decimal | None
    actual: Decimal | None
    actual_day: date | None
    completion: Decimal | None
    pace: Decimal | None
    elapsed: int
    workdays: int
    status: str
    note: str = ""

    @property
    def lagging(self) -> bool:
        return self.status == LAGGING

    @property
    def ratio(self) -> float | None:
        return None if self.completion is None else float(self.completion)


def _progress_query(
    week: str,
    until: date,
    *,
    team_ids: Iterable[str] | None,
    person_ids: Iterable[str] | None,
) -> Select[*tuple[Any, ...]]:
    """Items of the week with their latest in-week sample. For each item the database seeks
    backwards on the (metric, scope, day) primary key (two correlated lookups, day and value),
    so the cost grows with the number of items, not with the length of the history."""
    days = workdays.week_dates(week)
    sample = MetricSample.__table__
    in_week = (
        sample.c.metric == Kpi.metric,
        sample.c.scope == PlanItem.scope,
        sample.c.day >= days[0],
        sample.c.day <= min(days[-1], until),
    )
    latest_day = select(sample.c.day).where(*in_week).order_by(sample.c.day.desc()).limit(1).scalar_subquery()
    latest_value = (
        select(sample.c.value).where(*in_week).order_by(sample.c.day.desc()).limit(1).scalar_subquery()
    )
    query = (
        select(
            PlanItem.id.label("item_id"),
            PlanItem.plan_id,
            Plan.person_id,
            Plan.team_id,
            PlanItem.position,
            PlanItem.text,
            PlanItem.kpi_key,
            PlanItem.scope,
            PlanItem.baseline,
            PlanItem.target,
            PlanItem.note,
            Kpi.name.label("kpi_name"),
            Kpi.unit,
            Kpi.direction,
            Kpi.metric,
            Team.lag_margin,
            Team.timezone,
            latest_day.label("actual_day"),
            type_coerce(latest_value, MetricSample.value.type).label("actual"),
        )
        .join(Plan, Plan.id == PlanItem.plan_id)
        .join(Kpi, Kpi.key == PlanItem.kpi_key)
        .join(Team, Team.id == Plan.team_id)
        .where(Plan.week == week, Plan.current.is_(True), Plan.status.not_in(INACTIVE_PLAN_STATUSES))
    )
    if team_ids is not None:
        query = query.where(Plan.team_id.in_(list(team_ids)))
    if person_ids is not None:
        query = query.where(Plan.person_id.in_(list(person_ids)))
    return query


def week_progress(
    session: Session,
    week: str,
    now: datetime,
    *,
    team_ids: Iterable[str] | None = None,
    person_ids: Iterable[str] | None = None,
    overrides: Mapping[date, bool] | None = None,
    tz: ZoneInfo | None = None,
) -> list[ItemProgress]:
    """Progress of every current plan item of ``week`` (optionally of some teams or people),
    ordered by team, person and position.

    One query: items, their KPI and team, and the latest sample of the KPI's metric for
    the item's scope dated inside the week and not after today. Samples are daily, so
    "today" is taken in ``tz`` (default Asia/Shanghai).
    """
    if overrides is None:
        overrides = load_overrides(session)
    zone = tz or ZoneInfo("Asia/Shanghai")
    until = now.astimezone(zone).date()
    query = _progress_query(week, until, team_ids=team_ids, person_ids=person_ids)
    total = len(workdays.workdays_in_week(week, overrides))
    by_zone: dict[str, tuple[int, Decimal | None]] = {}
    out: list[ItemProgress] = []
    for (
        item_id,
        plan_id,
        person_id,
        team_id,
        position,
        text,
        kpi_key,
        scope,
        baseline,
        target,
        note,
        kpi_name,
        unit,
        direction,
        metric,
        lag_margin,
        zone_name,
        actual_day,
        actual,
    ) in session.connection().execute(query):  # Core rows: no ORM bookkeeping for 50,000 of them
        zone_name = zone_name or "Asia/Shanghai"
        if zone_name not in by_zone:
            elapsed = workdays.workdays_elapsed(week, now, ZoneInfo(zone_name), overrides)
            by_zone[zone_name] = (elapsed, expected_pace(elapsed, total))
        elapsed, pace = by_zone[zone_name]
        if not metric:
            actual = None
        done = completion(baseline, target, actual, direction)
        lagging = is_lagging(done, pace, elapsed, DEFAULT_LAG_MARGIN if lag_margin is None else lag_margin)
        out.append(
            ItemProgress(
                item_id,
                plan_id,
                person_id,
                team_id,
                week,
                position,
                text,
                kpi_key,
                kpi_name,
                unit or "",
                direction,
                scope,
                baseline,
                target,
                actual,
                actual_day if actual is not None else None,
                done,
                pace,
                elapsed,
                total,
                status_of(done, lagging),
                note or "",
            )
        )
    out.sort(key=lambda i: (i.team_id, i.person_id, i.position, i.item_id))
    return out


# --- the 进度 / progress command -------------------------------------------------------------

_WEEK_TOKEN = re.compile(r"^\d{4}-W\d{2}$", re.IGNORECASE)
_SELF_WORDS = {"我", "me", "self", "自己"}


def _is_leader(person: Person) -> bool:
    return person.team is not None and person.team.leader_id == person.id


def _find_member(session: Session, team_id: str, word: str) -> Person | None:
    query = select(Person).where(
        Person.team_id == team_id, Person.active.is_(True), (Person.id == word) | (Person.name == word)
    )
    return session.scalars(query).first()


@router.command("进度", "progress")
def progress_command(event: Inbound, ctx: Context) -> Card:
    """``进度`` (own card; a leader's shows the team), ``进度 我``, ``进度 李雷``, ``进度 2026-W47``."""
    person = ctx.person
    assert person is not None  # the router answers unknown people itself
    team = person.team
    tz = ZoneInfo(team.timezone) if team and team.timezone else ctx.tz
    words = event.text.strip().split()[1:]
    week = workdays.week_of(ctx.now, tz)
    who: Person | None = None
    show_team = _is_leader(person)
    for word in words:
        if _WEEK_TOKEN.match(word):
            week = word.upper()
            try:
                workdays.parse_week(week)
            except ValueError as exc:
                return cards.progress_error(str(exc))
        elif word.lower() in _SELF_WORDS:
            who, show_team = person, False
        else:
            if not _is_leader(person):
                raise PermissionDenied("只有组长可以查看其他成员的进度。发送“进度”查看你自己的。")
            who = _find_member(ctx.session, person.team_id, word)
            if who is None:
                return cards.progress_error(f"团队里没有叫“{word}”的成员。")
            show_team = False
    overrides = load_overrides(ctx.session)
    if show_team:
        items = week_progress(
            ctx.session, week, ctx.now, team_ids=[person.team_id], overrides=overrides, tz=tz
        )
        members = list(
            ctx.session.scalars(
                select(Person)
                .where(Person.team_id == person.team_id, Person.active.is_(True))
                .order_by(Person.id)
            )
        )
        by_person: dict[str, list[ItemProgress]] = {}
        for item in items:
            by_person.setdefault(item.person_id, []).append(item)
        rows = [cards.MemberRow(m.name, by_person.get(m.id)) for m in members]
        return cards.team_progress_card(
            team.name if team else person.team_id,
            week,
            rows,
            _pace_of(items, week, ctx, tz),
            uncounted=_uncounted(ctx, members, by_person, week),
        )
    subject = who or person
    items = week_progress(ctx.session, week, ctx.now, person_ids=[subject.id], overrides=overrides, tz=tz)
    this_week = week == workdays.week_of(ctx.now, tz)
    card = cards.progress_card(subject.name, week, items, _pace_of(items, week, ctx, tz), this_week=this_week)
    if subject.role == "customer_service":
        from handlers.aftersales_views import with_week_cases

        card = with_week_cases(ctx.session, card, week, tz, ctx.now)
    return card


def _uncounted(
    ctx: Context, members: list[Person], by_person: dict[str, list[ItemProgress]], week: str
) -> list[str]:
    """ "李雷 第2项 投诉率：本周模板不计此指标（不计分）" for items the member's template does not score."""
    from handlers.appraisals import Rules
    from handlers.plan_template import uncounted_lines, week_template

    rules = Rules.load(ctx.session)
    lines: list[str] = []
    for member in members:
        items = by_person.get(member.id)
        if not items:
            continue
        template = week_template(ctx.session, member, week, rules)
        flagged = uncounted_lines(template, ((i.position, i.kpi_key, i.kpi_name) for i in items))
        lines.extend(f"{member.name} {line}" for line in flagged)
    return lines


def _pace_of(items: list[ItemProgress], week: str, ctx: Context, tz: ZoneInfo) -> cards.Pace:
    if items:
        first = items[0]
        return cards.Pace(first.elapsed, first.workdays, first.pace)
    overrides = load_overrides(ctx.session)
    total = len(workdays.workdays_in_week(week, overrides))
    elapsed = workdays.workdays_elapsed(week, ctx.now, tz, overrides)
    return cards.Pace(elapsed, total, expected_pace(elapsed, total))
