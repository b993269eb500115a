"""What each console page shows, read through the handlers the chat, the pages and the CLI use.

Pure assembly: handlers/pages.plan_view (plans, pace, lag), handlers/appraisals (selection, why,
current appraisal), handlers/held (what is missing), bot/worker/delivery.outbox_rows (the outbox),
cards/charts (the SVG charts). Functions take a ``Session`` and never write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from appraisal.selection import NoTemplate
from bot.console.roles import Viewer
from cards import charts
from cards import format as fmt
from cards.render.page import PlanItemView, PlanView
from handlers.appraisal_runs import current_appraisal, template_why
from handlers.appraisals import Rules, select_for, team_switches
from handlers.pages import plan_view, previous_weeks, template_label
from handlers.plans import current_plan
from handlers.workdays import iso_week
from storage.models import Appeal, Appraisal, Kpi, Person, Team
from storage.people import active_members


@dataclass
class ItemRow:
    n: int
    text: str
    kpi: str
    done: str
    pace: str
    lagging: bool
    chart: str
    note: str = ""


@dataclass
class PersonWeek:
    person: Person
    view: PlanView | None
    items: list[ItemRow] = field(default_factory=list)
    lagging: list[str] = field(default_factory=list)
    last_score: str = "—"


@dataclass
class TeamBlock:
    team: Team
    week: str
    last_week: str
    rows: list[Any]
    choices: list[dict[str, str]] = field(default_factory=list)
    can_switch: bool = False
    switched: bool = False


def visible_teams(session: Session, viewer: Viewer) -> list[Team]:
    ids = viewer.team_ids(session)
    return [t for t in (session.get(Team, i) for i in ids) if t is not None and t.active]


def people_of(session: Session, viewer: Viewer, team: Team) -> list[Person]:
    return [p for p in active_members(session, team.id) if viewer.sees_person(p)]


def week_in(team: Team, now: datetime) -> str:
    return iso_week(now.astimezone(ZoneInfo(team.timezone)).date())


def _item(item: PlanItemView, person: str, note: str = "") -> ItemRow:
    chart = ""
    if item.day_labels:
        chart = charts.pace_chart(
            ident=f"{person}-item-{item.n}",
            title=f"{item.n}. {item.text} · {item.kpi_name}",
            desc=f"{item.kpi_name}：每日数值与应有进度",
            labels=item.day_labels,
            actual=item.values,
            expected=item.expected,
            target=item.target,
            baseline=item.baseline,
            unit=item.unit,
            off_days=item.off_days,
        )
    return ItemRow(
        n=item.n,
        text=item.text,
        kpi=item.kpi_name,
        done=fmt.percent(item.completion) if item.completion is not None else "—",
        pace=fmt.percent(item.pace) if item.pace is not None else "—",
        lagging=item.lagging,
        chart=chart,
        note=note,
    )


def team_page(session: Session, viewer: Viewer, teams: list[Team], now: datetime) -> list[TeamBlock]:
    """This week per person: plan filed or not, each item against pace (with its chart) and the
    person's progress note, lagging items; and last week's score."""
    blocks = []
    for team in teams:
        week = week_in(team, now)
        last = previous_weeks(week, 2)[0]
        rows = []
        for person in people_of(session, viewer, team):
            view = plan_view(session, person, week, now)
            row = PersonWeek(person, view)
            if view is not None:
                plan = current_plan(session, person.id, week)
                notes = {i.position: i.note for i in plan.items} if plan is not None else {}
                row.items = [_item(i, person.id, notes.get(i.n, "")) for i in view.items]
                row.lagging = [f"{i.n}. {i.text}" for i in view.items if i.lagging]
            appraisal = current_appraisal(session, person.id, last)
            if appraisal is not None:
                row.last_score = (
                    "数据缺失"
                    if appraisal.status == "held"
                    else f"{fmt.value(appraisal.score)} {appraisal.grade}"
                )
            rows.append(row)
        blocks.append(TeamBlock(team, week, last, rows))
    return blocks


@dataclass
class AppraisalRow:
    person: Person
    appraisal: Appraisal | None
    score: str = ""
    grade: str = ""
    template: str = ""
    why: str = ""
    missing: list[str] = field(default_factory=list)


def _missing_lines(session: Session, row: Appraisal) -> list[str]:
    kpis = {k.key: k.name for k in session.scalars(select(Kpi))}
    out = []
    for m in (row.rules or {}).get("missing", []):
        scope = "" if m.get("scope") in ("", "shop", None) else f" @{m['scope']}"
        days = "、".join(str(d)[5:] for d in m.get("days", []))
        out.append(f"{kpis.get(m.get('kpi'), m.get('kpi'))}（{m.get('metric')}{scope}）：{days}")
    return out


def appraisal_page(
    session: Session, viewer: Viewer, teams: list[Team], week: str, locale: str
) -> list[TeamBlock]:
    """The week's table with versions, held rows with what is missing, and each person's why."""
    blocks = []
    for team in teams:
        rows = []
        for person in people_of(session, viewer, team):
            a = current_appraisal(session, person.id, week)
            row = AppraisalRow(person, a)
            if a is not None:
                held = a.status == "held"
                row.score = "—" if held else fmt.value(a.score)
                row.grade = "" if held else a.grade
                row.template = template_label(session, a.template_id)
                row.why = template_why(session, a, locale)
                row.missing = _missing_lines(session, a) if held else []
            rows.append(row)
        blocks.append(TeamBlock(team, week, week, rows))
    return blocks


def open_appeals(session: Session, viewer: Viewer, teams: list[Team]) -> list[dict[str, Any]]:
    team_ids = [t.id for t in teams]
    kpis = {k.key: k.name for k in session.scalars(select(Kpi))}
    out = []
    query = (
        select(Appeal, Appraisal)
        .join(Appraisal, Appraisal.id == Appeal.appraisal_id)
        .where(Appeal.status == "open", Appraisal.team_id.in_(team_ids))
        .order_by(Appeal.created_at)
    )
    for appeal, row in session.execute(query).all():
        person = session.get(Person, row.person_id)
        if person is None or not viewer.sees_person(person):
            continue
        out.append(
            {
                "id": appeal.id,
                "person": person.name,
                "week": row.week,
                "kpi": kpis.get(appeal.kpi_key, appeal.kpi_key),
                "note": appeal.note,
                "can_decide": viewer.may("decide", row.team_id),
            }
        )
    return out


def templates_page(session: Session, viewer: Viewer, teams: list[Team], now: datetime) -> list[TeamBlock]:
    """Which template applies to whom this week and why; the templates a switch may choose."""
    rules = Rules.load(session)
    blocks = []
    for team in teams:
        week = week_in(team, now)
        members = active_members(session, team.id)
        rows = []
        for person in members:
            if not viewer.sees_person(person):
                continue
            try:
                chosen = select_for(session, person, week, rules)
                rows.append({"name": person.name, "template": chosen.template.label, "reason": chosen.reason})
            except NoTemplate as exc:
                rows.append({"name": person.name, "template": "—", "reason": str(exc)})
        roles = {p.role for p in members}
        choices = [
            {"id": t.id, "label": t.label} for t in rules.templates if t.role is None or t.role in roles
        ]
        block = TeamBlock(team, week, week, rows, choices, viewer.may("switch", team.id))
        today = now.astimezone(ZoneInfo(team.timezone)).date()
        block.switched = any(s.until is None or s.until >= today for s in team_switches(session, team.id))
        blocks.append(block)
    return blocks


def outbox_lists(session: Session, zone: ZoneInfo, limit: int = 50) -> list[tuple[str, list[dict[str, Any]]]]:
    from bot.worker.delivery import (  # the relay module; loaded only when the page is opened
        RESENDABLE,
        outbox_rows,
    )

    out = []
    for status in ("dead", "unknown", "pending", "sent"):
        rows = outbox_rows(session, (status,), limit, newest_first=status == "sent")
        out.append(
            (
                status,
                [
                    {
                        "id": r.id,
                        "title": str((r.card or {}).get("title", "")),
                        "bot": r.bot_id,
                        "target": f"{r.channel}:{r.target}",
                        "created": r.created_at.astimezone(zone).strftime("%m-%d %H:%M"),
                        "error": r.last_error[:200],
                        "resendable": r.status in RESENDABLE,
                    }
                    for r in rows
                ],
            )
        )
    return out


def stream_states(session: Session, bots: list[Any], t: dict[str, str]) -> list[dict[str, str]]:
    """Each stream bot and whether a worker holds its connection lease (bot/worker/streams.py): on
    PostgreSQL, the lease is an advisory lock another session holds; on SQLite the one worker's
    own health port says more."""
    from bot.worker.leader import lock_key

    out = []
    for bot in bots:
        state = t["stream_unknown"]
        if session.get_bind().dialect.name == "postgresql":
            key = lock_key(f"stream:{bot.id}") & 0xFFFFFFFFFFFFFFFF
            held = session.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND objsubid = 1 AND classid::text::bigint = :hi AND objid::text::bigint = :lo"
                ),
                {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
            ).scalar()
            state = t["stream_held"] if held else t["stream_free"]
        out.append({"bot": bot.id, "platform": bot.platform, "state": state})
    return out
