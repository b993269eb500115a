"""The start-of-week summary and the weekly appraisal run, per team, on the workday calendar.

- Weekly appraisal: on the team's last workday of the ISO week (a 调休 Sunday or a Wednesday
  before 国庆 included), ``appraise_team`` freezes the week (``handlers.appraisal_runs.run_week``),
  queues each person's explanation card to their direct chat (``publish``) and the leader's
  table, in the caller's one transaction. A scheduled run never publishes a week twice; an
  admin's explicit run makes new versions with the reason and sends them again.
- Start-of-week summary: on the team's first workday, ``send_monday_summary`` queues two
  cards: the leader's (per person: last week's completion, score, grade and change; the
  biggest movers; items still lagging; who has not planned; the templates in force) and the
  group chat's (team figures, lag flags and templates only: no personal score).

The jobs (``bot/worker/jobs.py``) ask ``summary_due`` / ``appraisal_due`` which teams are due at a slot.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from appraisal.selection import Employee, NoTemplate, Selection, select_template
from cards.builders import (
    LagFlag,
    MemberWeek,
    Mover,
    ScoreRow,
    TemplateLine,
    WeekDigest,
    appraisal_table_card,
    monday_summary_chat_card,
    monday_summary_leader_card,
)
from cards.i18n import Texts, texts
from handlers.appraisal_runs import publish, run_week
from handlers.appraisals import Rules, team_switches
from handlers.held import notify_held
from handlers.progress import ItemProgress, week_progress
from handlers.reminders import days_label, expected_planners, moment, on_leave, planned_ids, zone
from handlers.router import LinkMaker
from handlers.workdays import Calendar, shift_week, week_dates, week_of
from storage import outbox
from storage.models import Appraisal, OutboxMessage, Person, Team
from storage.models import Template as TemplateRow
from storage.people import leader_of, person_target, team_chat_target

log = logging.getLogger(__name__)

MOVERS = 3
LOOK_BACK = 4  # weeks searched for "last week" when the weeks before had no workday (春节)
REPUBLISH_REASON = "管理员重新运行（planloop run）"


# ---------------------------------------------------------------- which team is due


def _active_teams(session: Session) -> list[Team]:
    return list(session.scalars(select(Team).where(Team.active.is_(True)).order_by(Team.id)))


def _due(session: Session, at: datetime, first: bool) -> tuple[list[tuple[str, str]], dict[str, str]]:
    calendar = Calendar.load(session)
    due: list[tuple[str, str]] = []
    skipped: dict[str, str] = {}
    for team in _active_teams(session):
        local = at.astimezone(zone(team)).date()
        week = week_of(at, zone(team))
        day = calendar.first_workday(week) if first else calendar.last_workday(week)
        if day == local:
            due.append((team.id, week))
        else:
            word = "first" if first else "last"
            if day is None or day < local:  # this week's is past: when it comes next
                week = shift_week(week, 1)
                day = calendar.first_workday(week) if first else calendar.last_workday(week)
            when = f"{day:%Y-%m-%d}" if day else "?"
            skipped[team.id] = f"due {when}, the {word} workday of {week}"
    return due, skipped


def summary_due(session: Session, at: datetime) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(team, this week) for teams whose first workday of the week is ``at``'s day, and the others (why)."""
    return _due(session, at, first=True)


def appraisal_due(session: Session, at: datetime) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(team, this week) for teams whose last workday of the week is ``at``'s day, and the others (why)."""
    return _due(session, at, first=False)


# ---------------------------------------------------------------- the weekly appraisal


@dataclass
class TeamAppraisal:
    appraised: int = 0
    cards: int = 0
    table: int = 0
    skipped: str = ""

    @property
    def enqueued(self) -> int:
        return self.cards + self.table


def appraise_team(
    session: Session,
    team_id: str,
    week: str,
    at: datetime,
    *,
    bots: Collection[str],
    links: LinkMaker | None = None,
    locale: str = "zh-CN",
    dedupe_suffix: str = "",
    explicit: bool = False,
    admins: Collection[str] = (),
    current_rules: bool = False,
    sent_at: datetime | None = None,
) -> TeamAppraisal:
    """Freeze ``week`` for one team, queue everyone's explanation card (direct) and the leader's table.

    A scheduled run (``explicit`` False) leaves a week that already has results alone, so a
    retried or recovered run never publishes twice; an explicit run adds versions with a reason.
    """
    team = session.get(Team, team_id)
    if team is None:
        return TeamAppraisal(skipped="no such team")
    published = (
        session.scalar(
            select(Appraisal.id).where(Appraisal.team_id == team_id, Appraisal.week == week).limit(1)
        )
        is not None
    )
    if published and not explicit:
        return TeamAppraisal(skipped="already published")
    rows = run_week(
        session,
        week,
        at,
        reason=REPUBLISH_REASON if published else "",
        team=team_id,
        current_rules=current_rules,
    )
    result = TeamAppraisal(appraised=len(rows))
    result.cards = publish(session, rows, at, bots=bots, links=links, locale=locale)
    held = [r for r in rows if r.status == "held"]
    result.cards += notify_held(
        session, team, week, held, at, bots=bots, admins=admins, dedupe_suffix=dedupe_suffix
    )
    rows = [r for r in rows if r.status != "held"]  # the held card names them; the table does not
    if not rows:
        return result
    leader = leader_of(session, team)
    target = person_target(session, leader, bots) if leader is not None else None
    if target is None:
        log.warning("appraisal %s: team %s has no reachable leader; table not sent", week, team_id)
        return result
    names = {p.id: p.name for p in session.scalars(select(Person).where(Person.team_id == team_id))}
    labels = {t.id: t.name or t.id for t in session.scalars(select(TemplateRow))}
    card = appraisal_table_card(
        texts(locale),
        team_name=team.name,
        week=week,
        rows=[
            ScoreRow(
                names.get(r.person_id, r.person_id),
                r.score,
                r.grade,
                labels.get(r.template_id, r.template_id),
                r.version,
            )
            for r in rows
        ],
        published_at=moment(sent_at or at, zone(team)),  # when it really went out, not the slot
    )
    key = f"appraisal-table:{team_id}:{week}{dedupe_suffix}"
    result.table = outbox.enqueue(session, target, card, dedupe_key=key, now=at) is not None
    return result


# ---------------------------------------------------------------- the start-of-week summary


def previous_workweek(week: str, calendar: Calendar) -> str:
    """The latest week before ``week`` that had a workday (春节 can empty a whole ISO week)."""
    for back in range(1, LOOK_BACK + 1):
        candidate = shift_week(week, -back)
        if calendar.workdays_in_week(candidate):
            return candidate
    return shift_week(week, -1)


HELD_GRADE = "数据缺失"


def _current(session: Session, team_id: str, week: str, held: bool = True) -> dict[str, Appraisal]:
    """The current appraisals of ``week`` by person (without the held ones when ``held`` is False)."""
    rows = session.scalars(
        select(Appraisal).where(
            Appraisal.team_id == team_id, Appraisal.week == week, Appraisal.current.is_(True)
        )
    )
    return {r.person_id: r for r in rows if held or r.status != "held"}


def _mean(values: list[Decimal]) -> Decimal | None:
    return sum(values, Decimal(0)) / len(values) if values else None


def _template_lines(session: Session, team: Team, week: str, last_week: str, tr: Texts) -> list[TemplateLine]:
    """The templates the team's members are appraised with in ``week``, why, and which are new."""
    rules = Rules.load(session)
    switches = team_switches(session, team.id)
    sunday = week_dates(week)[-1]

    def choose(person: Person, when: str) -> Selection | None:
        employee = Employee(person.id, person.role, person.type or "veteran", person.hire_date)
        try:
            return select_template(
                rules.templates,
                person=employee,
                week=when,
                periods=rules.periods,
                scenarios=rules.scenarios,
                switches=switches,
            )
        except NoTemplate:
            return None

    groups: dict[tuple[str, str], list[bool]] = {}
    no_template = 0
    for person in expected_planners(session, team, sunday):
        now, before = choose(person, week), choose(person, last_week)
        if now is None:
            no_template += 1
            continue
        changed = before is None or before.template.id != now.template.id
        groups.setdefault((now.template.label, now.reason), []).append(changed)
    lines = [
        TemplateLine(label, reason, len(changes), any(changes))
        for (label, reason), changes in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    if no_template:
        lines.append(TemplateLine("—", tr("summary.no_template"), no_template))
    return lines


def week_digest(
    session: Session, team: Team, week: str, at: datetime, *, locale: str = "zh-CN"
) -> WeekDigest:
    """What the start-of-week summary of ``week`` says for ``team``, as of ``at``."""
    calendar = Calendar.load(session)
    tz = zone(team)
    today = at.astimezone(tz).date()
    last = previous_workweek(week, calendar)
    before = previous_workweek(last, calendar)
    last_sunday = week_dates(last)[-1]

    items = week_progress(session, last, at, team_ids=[team.id], overrides=calendar.overrides, tz=tz)
    by_person: dict[str, list[ItemProgress]] = {}
    for item in items:
        by_person.setdefault(item.person_id, []).append(item)
    scores, earlier = _current(session, team.id, last), _current(session, team.id, before)
    members = list(
        session.scalars(
            select(Person).where(Person.team_id == team.id, Person.active.is_(True)).order_by(Person.id)
        )
    )
    names = {p.id: p.name for p in members}
    planned_last = planned_ids(session, last, names)
    rows: list[MemberWeek] = []
    completions: list[Decimal] = []
    for person in members:
        has_data = person.id in planned_last or person.id in scores
        hired = person.hire_date is None or person.hire_date <= last_sunday
        if not has_data and (person.id == team.leader_id or not hired):
            continue
        known = [i.completion for i in by_person.get(person.id, []) if i.completion is not None]
        completion = _mean(known)
        if completion is not None:
            completions.append(completion)
        row = scores.get(person.id)
        prior = earlier.get(person.id)
        if row is not None and row.status == "held":
            rows.append(
                MemberWeek(
                    name=person.name,
                    planned=person.id in planned_last,
                    completion=completion,
                    lagging=sum(1 for i in by_person.get(person.id, []) if i.lagging),
                    score=None,
                    grade=HELD_GRADE,  # never a D for data that did not arrive
                    delta=None,
                )
            )
            continue
        rows.append(
            MemberWeek(
                name=person.name,
                planned=person.id in planned_last,
                completion=completion,
                lagging=sum(1 for i in by_person.get(person.id, []) if i.lagging),
                score=row.score if row else None,
                grade=row.grade if row else "",
                delta=row.score - prior.score if row and prior else None,
            )
        )
    scores = {pid: r for pid, r in scores.items() if r.status != "held"}  # averages, grades, movers
    earlier = {pid: r for pid, r in earlier.items() if r.status != "held"}
    movers = sorted(
        (
            Mover(names.get(pid, pid), earlier[pid].score, r.score)
            for pid, r in scores.items()
            if pid in earlier and r.score != earlier[pid].score
        ),
        key=lambda m: (-abs(m.after - m.before), m.name),
    )[:MOVERS]
    grades: dict[str, int] = {}
    for r in scores.values():
        grades[r.grade] = grades.get(r.grade, 0) + 1
    lagging = [
        LagFlag(names.get(i.person_id, i.person_id), i.text, i.kpi_name, i.completion)
        for i in items
        if i.lagging and i.person_id in names
    ]

    expected = expected_planners(session, team, today)
    away = [p for p in expected if on_leave(p, today)]
    eligible = [p for p in expected if not on_leave(p, today)]
    planned_now = planned_ids(session, week, (p.id for p in eligible))
    return WeekDigest(
        team_name=team.name,
        week=week,
        last_week=last,
        last_days=days_label(last),
        members=rows,
        average_completion=_mean(completions),
        average_score=_mean([r.score for r in scores.values()]),
        grades=grades,
        movers=movers,
        lagging=lagging,
        not_planned=[p.name for p in eligible if p.id not in planned_now],
        on_leave=[p.name for p in away],
        templates=_template_lines(session, team, week, last, texts(locale)),
        planned=sum(1 for p in eligible if p.id in planned_now),
        eligible=len(eligible),
    )


def send_monday_summary(
    session: Session,
    team_id: str,
    week: str,
    at: datetime,
    *,
    bots: Collection[str],
    locale: str = "zh-CN",
    dedupe_suffix: str = "",
) -> int:
    """Queue the leader's card (direct) and the group chat's card for ``week``; returns messages queued."""
    team = session.get(Team, team_id)
    if team is None:
        return 0
    keys = {
        "leader": f"monday:{team_id}:{week}:leader{dedupe_suffix}",
        "chat": f"monday:{team_id}:{week}:chat{dedupe_suffix}",
    }
    done = set(
        session.scalars(select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys.values())))
    )
    if done == set(keys.values()):
        return 0
    tr = texts(locale)
    digest = week_digest(session, team, week, at, locale=locale)
    leader = leader_of(session, team)
    targets = {
        "leader": person_target(session, leader, bots) if leader is not None else None,
        "chat": team_chat_target(team, bots),
    }
    cards = {"leader": monday_summary_leader_card(tr, digest), "chat": monday_summary_chat_card(tr, digest)}
    from handlers.aftersales_views import with_cause_changes

    cards["leader"] = with_cause_changes(session, cards["leader"], digest.last_week, zone(team), at)
    sent = 0
    for which, target in targets.items():
        if target is None:
            log.warning("monday summary %s: team %s has no reachable %s", week, team_id, which)
            continue
        sent += outbox.enqueue(session, target, cards[which], dedupe_key=keys[which], now=at) is not None
    return sent
