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
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

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
    """Share of the planned change achieved: up (a−b)/(t−b), down (b−a)/(b−t); None without data.

    TODO: switch to ``appraisal.completion`` once the appraisal helper's module lands on
    main, so progress and the weekly score can never disagree.
    """
    if baseline is None or target is None or actual is None:
        return None
    planned = (target - baseline) if direction != "down" else (baseline - target)
    achieved = (actual - baseline) if direction != "down" else (baseline - actual)
    if planned == 0:
        # "hold the level": done while the level holds, nothing once it slips
        return Decimal(1) if achieved >= 0 else Decimal(0)
    return achieved / planned


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


@dataclass(frozen=True)
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
):  # noqa: ANN202 - a SQLAlchemy Select
    days = workdays.week_dates(week)
    items = (
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
        )
        .join(Plan, Plan.id == PlanItem.plan_id)
        .join(Kpi, Kpi.key == PlanItem.kpi_key)
        .join(Team, Team.id == Plan.team_id)
        .where(Plan.week == week, Plan.current.is_(True), Plan.status.not_in(INACTIVE_PLAN_STATUSES))
    )
    if team_ids is not None:
        items = items.where(Plan.team_id.in_(list(team_ids)))
    if person_ids is not None:
        items = items.where(Plan.person_id.in_(list(person_ids)))
    items_cte = items.cte("week_items")
    pairs = select(items_cte.c.metric, items_cte.c.scope).distinct().subquery("pairs")
    sample = MetricSample.__table__
    latest = (
        select(sample.c.metric, sample.c.scope, func.max(sample.c.day).label("day"))
        .join(pairs, and_(pairs.c.metric == sample.c.metric, pairs.c.scope == sample.c.scope))
        .where(sample.c.day >= days[0], sample.c.day <= min(days[-1], until))
        .group_by(sample.c.metric, sample.c.scope)
        .subquery("latest")
    )
    return (
        select(items_cte, sample.c.value.label("actual"), sample.c.day.label("actual_day"))
        .select_from(items_cte)
        .outerjoin(latest, and_(latest.c.metric == items_cte.c.metric, latest.c.scope == items_cte.c.scope))
        .outerjoin(
            sample,
            and_(
                sample.c.metric == latest.c.metric,
                sample.c.scope == latest.c.scope,
                sample.c.day == latest.c.day,
            ),
        )
        .order_by(items_cte.c.team_id, items_cte.c.person_id, items_cte.c.position, items_cte.c.item_id)
    )


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
    """Progress of every current plan item of ``week`` (optionally of some teams or people).

    One query: items, their KPI and team, and the latest sample of the KPI's metric for
    the item's scope dated inside the week and not after today. Samples are daily, so
    "today" is taken in ``tz`` (default: the first team's zone, usually Asia/Shanghai).
    """
    if overrides is None:
        overrides = load_overrides(session)
    zone = tz or ZoneInfo("Asia/Shanghai")
    until = now.astimezone(zone).date()
    rows = session.execute(_progress_query(week, until, team_ids=team_ids, person_ids=person_ids)).all()
    total = len(workdays.workdays_in_week(week, overrides))
    elapsed_by_zone: dict[str, int] = {}
    out: list[ItemProgress] = []
    for row in rows:
        zone_name = row.timezone or "Asia/Shanghai"
        if zone_name not in elapsed_by_zone:
            elapsed_by_zone[zone_name] = workdays.workdays_elapsed(week, now, ZoneInfo(zone_name), overrides)
        elapsed = elapsed_by_zone[zone_name]
        pace = expected_pace(elapsed, total)
        actual = row.actual if row.metric else None
        done = completion(row.baseline, row.target, actual, row.direction)
        margin = DEFAULT_LAG_MARGIN if row.lag_margin is None else int(row.lag_margin)
        lagging = is_lagging(done, pace, elapsed, margin)
        out.append(
            ItemProgress(
                item_id=row.item_id,
                plan_id=row.plan_id,
                person_id=row.person_id,
                team_id=row.team_id,
                week=week,
                position=row.position,
                text=row.text,
                kpi_key=row.kpi_key,
                kpi_name=row.kpi_name,
                unit=row.unit or "",
                direction=row.direction,
                scope=row.scope,
                baseline=row.baseline,
                target=row.target,
                actual=actual,
                actual_day=row.actual_day if actual is not None else None,
                completion=done,
                pace=pace,
                elapsed=elapsed,
                workdays=total,
                status=status_of(done, lagging),
                note=row.note or "",
            )
        )
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
            team.name if team else person.team_id, week, rows, _pace_of(items, week, ctx, tz)
        )
    subject = who or person
    items = week_progress(ctx.session, week, ctx.now, person_ids=[subject.id], overrides=overrides, tz=tz)
    return cards.progress_card(subject.name, week, items, _pace_of(items, week, ctx, tz))


def _pace_of(items: list[ItemProgress], week: str, ctx: Context, tz: ZoneInfo) -> cards.Pace:
    if items:
        first = items[0]
        return cards.Pace(first.elapsed, first.workdays, first.pace)
    overrides = load_overrides(ctx.session)
    total = len(workdays.workdays_in_week(week, overrides))
    elapsed = workdays.workdays_elapsed(week, ctx.now, tz, overrides)
    return cards.Pace(elapsed, total, expected_pace(elapsed, total))
