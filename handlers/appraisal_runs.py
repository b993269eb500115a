"""Appraisal runs: each person's week frozen as a version, explained by a card, sent once.

A published result is never edited: a recompute, an accepted appeal, a late correction each add a
version with its reason, and the previous one stops being ``current``. ``run_week`` freezes a whole
week (a team's or everyone's) in a fixed number of statements; ``publish`` queues each person's
card to their direct chat (the outbox, once per card); "考核" shows a person their latest result.

Public: ``run_week``, ``freeze``, ``publish``, ``current_appraisal``, ``appraisal_card_for``,
``template_why``. The inputs and the score: ``handlers/appraisals.py``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from appraisal.rules import flag_codes, rules_of
from appraisal.scoring import Result
from appraisal.selection import NoTemplate, week_days
from cards.builders import AppraisalView, appraisal_card
from cards.model import Card, Markdown
from cards.template_why import why_text
from handlers.appraisal_chat import acting_person
from handlers.appraisals import AppraisalError, WeekInputs, compute, missing_data
from handlers.events_out import emit, subscribers
from handlers.inbound import Inbound
from handlers.leave import WeekLeave, leave_days
from handlers.plan_items import fill_baselines
from handlers.router import Context, LinkMaker, router
from storage import outbox
from storage.models import Appraisal, AuditLog, Person, Role, Team
from storage.models import Template as TemplateRow
from storage.people import person_targets

log = logging.getLogger(__name__)


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
    if previous is True:
        previous = current_appraisal(session, person.id, week)
    values, audit = _new_version(
        session,
        person,
        week,
        now,
        reason=reason,
        inputs=inputs,
        previous=Replaced.of(previous) if isinstance(previous, Appraisal) else None,
        last_version=last_version,
        hold=hold,
    )
    if isinstance(previous, Appraisal):
        previous.current = False
    row = Appraisal(**values)
    session.add(row)
    session.add(AuditLog(**audit))
    session.flush()
    announce(session, [row], now)
    return row


def announce(session: Session, rows: Iterable[Appraisal], now: datetime) -> None:
    """Each new version as an outgoing webhook event (appraisal.published or .held), its data the
    export's entry; nothing is built when no webhook takes either event (the weekly bulk path)."""
    wanted = {kind for kind in ("appraisal.published", "appraisal.held") if subscribers(session, kind)}
    if not wanted:
        return
    from handlers.appraisal_export import appraisal_entry

    for row in rows:
        kind = "appraisal.held" if row.status == "held" else "appraisal.published"
        if kind in wanted:
            resource = f"appraisal:{row.person_id}/{row.week}"
            emit(session, kind, appraisal_entry(session, row), resource=resource, now=now)


@dataclass(frozen=True)
class Replaced:
    """What a new version reads of the current one it replaces (the reason names what changed)."""

    id: int
    template_id: str
    score: Decimal
    grade: str

    @classmethod
    def of(cls, row: Appraisal) -> Replaced:
        return cls(row.id, row.template_id, row.score, row.grade)


def _new_version(
    session: Session,
    person: Person,
    week: str,
    now: datetime,
    *,
    reason: str,
    inputs: WeekInputs | None,
    previous: Replaced | None,
    last_version: int | None,
    hold: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The column values of ``person``'s next version of ``week`` and of its audit entry; writes
    nothing (``freeze`` stores one, ``run_week`` a whole week in a few statements)."""
    selection, result = compute(session, person, week, inputs)
    if last_version is None:
        last_version = session.scalar(
            select(func.max(Appraisal.version)).where(
                Appraisal.person_id == person.id, Appraisal.week == week
            )
        )
    version = (last_version or 0) + 1
    why = reason.strip()
    if previous is not None:
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
    missing = missing_data(inputs, result, week, now, person.team.timezone) if inputs is not None else []
    held = hold and bool(missing)
    if missing:
        rules["missing"] = [m.to_dict() for m in missing]
    if selection.why is not None:
        rules["why"] = selection.why.to_dict()  # which rule chose the template (cards/template_why.py)
    rules["flags"] = flag_codes(
        result,
        late=plan is not None and plan.status == "late",
        on_leave=_on_leave(session, person, week, inputs),
        no_plan=inputs is not None and plan is None,
        held=held,
    )
    values = {
        "person_id": person.id,
        "team_id": person.team_id,
        "week": week,
        "version": version,
        "current": True,
        "template_id": result.template_id,
        "template_reason": selection.reason,
        "score": result.score,
        "grade": result.grade,
        "items": _stored_items(result),
        "flags": list(result.flags),
        "version_reason": why,
        "created_at": now,
        "status": "held" if held else "published",
        "rules": rules,
    }
    audit = {
        "at": now,
        "actor": "system",
        "action": "appraisal.publish",
        "subject": f"{person.id}/{week}",
        "detail": {
            "version": version,
            "template": result.template_id,
            "score": str(result.score),
            "grade": result.grade,
            "reason": why,
        },
    }
    return values, audit


def _version_of(inputs: WeekInputs | None, template_id: str) -> int | None:
    return inputs.rules.versions.get(template_id) if inputs is not None else None


def _on_leave(session: Session, person: Person, week: str, inputs: WeekInputs | None) -> bool:
    """Did a leave of ``person`` overlap ``week``?"""
    if inputs is not None and inputs.leave is not None and inputs.leave.week == week:
        return bool(inputs.leave.leave_days(person.id))
    return bool(leave_days(session, person.id, week))


def appraised_people(session: Session, week: str, team: str | None, inputs: WeekInputs) -> list[Person]:
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
    leave = inputs.leave or WeekLeave.load(session, week)
    for person in session.scalars(query):
        has_plan = person.id in inputs.plans
        if not has_plan and person.team.leader_id == person.id:
            continue  # a leader who filed no plan is appraising, not appraised
        if not has_plan and leave.away_whole_week(person):
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
    The inputs are read in a fixed number of queries, and the versions, the previous ones'
    ``current`` and the audit entries written in a few multi-row statements, however many people.
    """
    week_days(week)  # a bad week label fails before anything is written
    if team is not None and session.get(Team, team) is None:
        raise AppraisalError(f"没有 id 为“{team}”的团队")
    fill_baselines(session, now)  # pending baselines that data has since fixed
    # a team's run reads that team's plans, ratings and appeals only (runs go team by team)
    members = None if team is None else list(session.scalars(select(Person.id).where(Person.team_id == team)))
    inputs = WeekInputs.load(session, week, members, current_rules=current_rules)
    # what a new version reads of the one it replaces, as plain values (no objects to build)
    current_q = select(
        Appraisal.person_id, Appraisal.id, Appraisal.template_id, Appraisal.score, Appraisal.grade
    ).where(Appraisal.week == week, Appraisal.current.is_(True))
    versions_q = (
        select(Appraisal.person_id, func.max(Appraisal.version))
        .where(Appraisal.week == week)
        .group_by(Appraisal.person_id)
    )
    if members is not None:
        current_q = current_q.where(Appraisal.person_id.in_(members))
        versions_q = versions_q.where(Appraisal.person_id.in_(members))
    current = {
        pid: Replaced(ident, template_id, score, grade)
        for pid, ident, template_id, score, grade in session.execute(current_q)
    }
    last_versions: dict[str, int] = {pid: number for pid, number in session.execute(versions_q)}
    new_rows: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    replaced: list[int] = []
    for person in appraised_people(session, week, team, inputs):
        previous = current.get(person.id)
        try:
            values, audit = _new_version(
                session,
                person,
                week,
                now,
                reason=reason,
                inputs=inputs,
                previous=previous,
                last_version=last_versions.get(person.id, 0),
                hold=hold,
            )
        except NoTemplate as exc:
            log.warning("appraisal %s skipped: %s", week, exc)
            continue
        new_rows.append(values)
        audits.append(audit)
        if previous is not None:
            replaced.append(previous.id)
    return _store_versions(session, new_rows, audits, replaced)


BATCH = 1000  # rows per multi-row statement (and ids per IN list)


def _store_versions(
    session: Session, rows: list[dict[str, Any]], audits: list[dict[str, Any]], replaced: list[int]
) -> list[Appraisal]:
    """Write a run: the versions replaced (ids) stop being current, the new ones (returned as
    loaded objects, in order) and their audit entries are inserted, each in multi-row statements."""
    session.flush()
    for n in range(0, len(replaced), BATCH):
        chunk = replaced[n : n + BATCH]
        session.execute(
            update(Appraisal).where(Appraisal.id.in_(chunk)).values(current=False),
            execution_options={"synchronize_session": False},
        )
    for ident in replaced:  # a replaced version this session already holds says so too
        held = session.identity_map.get(identity_key(Appraisal, ident))
        if held is not None:
            set_committed_value(held, "current", False)
    # RETURNING in input order costs a statement per row on SQLite; a run's rows are one per person
    inserted: dict[str, Appraisal] = {}
    for n in range(0, len(rows), BATCH):
        inserted.update(
            (a.person_id, a)
            for a in session.scalars(insert(Appraisal).returning(Appraisal), rows[n : n + BATCH])
        )
    out = [inserted[r["person_id"]] for r in rows]
    for n in range(0, len(audits), BATCH):
        session.execute(insert(AuditLog), audits[n : n + BATCH])
    if out:
        announce(session, out, out[0].created_at)
    return out


# ---------------------------------------------------------------- cards and delivery


def template_why(session: Session, row: Appraisal, locale: str = "zh-CN") -> str:
    """Why the row's template applied, in the locale's words (the stored reason for older rows)."""
    why = (row.rules or {}).get("why")
    role = session.get(Role, why.get("role", "")) if isinstance(why, dict) else None
    return why_text(why, row.template_reason, locale=locale, role=role.name if role else "")


@dataclass
class CardNames:
    """The names an appraisal card shows, read once for a whole run's cards (``publish``);
    without them each card looks its person, template and role up."""

    people: dict[str, str]  # person id → name
    templates: dict[str, str]  # template id → label
    roles: dict[str, str]  # role id → name

    @classmethod
    def load(cls, session: Session, people: Iterable[Person]) -> CardNames:
        templates = {t.id: t.name or t.id for t in session.scalars(select(TemplateRow))}
        roles = {r.id: r.name for r in session.scalars(select(Role))}
        return cls({p.id: p.name for p in people}, templates, roles)


def _view(
    session: Session, row: Appraisal, locale: str = "zh-CN", names: CardNames | None = None
) -> AppraisalView:
    if names is not None:
        person_name = names.people.get(row.person_id, row.person_id)
        template_label = names.templates.get(row.template_id, row.template_id)
        why = (row.rules or {}).get("why")
        role = names.roles.get(why.get("role", ""), "") if isinstance(why, dict) else ""
        reason = why_text(why, row.template_reason, locale=locale, role=role)
    else:
        person = session.get(Person, row.person_id)
        template = session.get(TemplateRow, row.template_id)
        person_name = person.name if person else row.person_id
        template_label = (template.name or template.id) if template else row.template_id
        reason = template_why(session, row, locale)
    items = list(row.items or [])
    return AppraisalView(
        appraisal_id=row.id,
        person_name=person_name,
        week=row.week,
        version=row.version,
        template=template_label,
        reason=reason,
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
    names: CardNames | None = None,
) -> Card:
    """The explanation card of one stored version (appeal buttons only on the current one)."""
    url = links(row.person_id, "appraisal", row.week) if links else ""
    return appraisal_card(
        _view(session, row, locale, names),
        can_appeal=can_appeal and row.current,
        detail_url=url,
        locale=locale,
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
    """Queue each person's explanation card to their direct chat; returns messages queued.

    The people, their chats and the names the cards show are read once for all the rows, and the
    cards go into the outbox in multi-row inserts (``outbox.enqueue_many``: once per card)."""
    rows = [r for r in appraisals if r.status != "held"]  # held: handlers/held.py tells the leader
    if not rows:
        return 0
    wanted = sorted({r.person_id for r in rows})
    people: dict[str, Person] = {}
    for n in range(0, len(wanted), BATCH):
        query = select(Person).where(Person.id.in_(wanted[n : n + BATCH]))
        people.update((p.id, p) for p in session.scalars(query))
    targets = person_targets(session, people.values(), bots)
    names = CardNames.load(session, people.values())
    messages = []
    for row in rows:
        target = targets.get(row.person_id)
        if target is None:
            log.warning("appraisal %s: no chat to deliver to for %s", row.id, row.person_id)
            continue
        card = appraisal_card_for(session, row, links=links, locale=locale, names=names)
        messages.append(outbox.Message(target, card, f"appraisal:{row.id}"))
    return len(outbox.enqueue_many(session, messages, now=now))


# ---------------------------------------------------------------- chat: viewing


_WEEK_WORD = re.compile(r"(\d{4})-?W(\d{1,2})", re.IGNORECASE)


@router.command("考核", "appraisal")
def show_appraisal(event: Inbound, ctx: Context) -> Card:
    """ "考核" shows my latest appraisal; "考核 2026-W47" a given week."""
    me = acting_person(ctx)
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
