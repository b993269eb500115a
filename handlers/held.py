"""No score without data (issue 16): appraisals held while their data is missing.

Before an appraisal is published, each item that counts (a metric KPI with weight, not excluded)
must have at least one sample of its metric and scope inside the week up to the run — the window
its completion is taken from. If one has none, the appraisal is stored with ``status = "held"``:
it is not sent to the person, and the team's leader and the admins get one card naming each
missing metric, scope and days, with each source's last run and error, and two buttons:

- **重新拉取**: asks the worker to poll every source now (the ``appraisal-held`` tick does it);
- **按现有数据发布**: publishes with what is there: items without data count 0 and carry the
  ``missing_data`` flag; the reason (who, what was missing) is the version reason.

The ``appraisal-held`` tick publishes a held appraisal as soon as its data is complete.
The check itself is ``missing_data`` in ``handlers/appraisals.py`` (a run calls it for each person).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cards.held import MissingLine, SourceLine, held_card
from cards.model import Card, Markdown
from handlers.appraisal_runs import freeze, publish
from handlers.appraisals import WeekInputs, compute, missing_data
from handlers.inbound import Inbound
from handlers.ops import notify_admins
from handlers.router import Context, LinkMaker, PermissionDenied, error_card, router
from storage import outbox
from storage.models import Appraisal, AuditLog, Kpi, MetricSample, Person, SourceRun, SourceState, Team
from storage.people import person_target

REPOLL = ("planloop", "repoll")  # SourceState (source_id, key): a 重新拉取 the worker has not done yet
HELD_ACTION = "appraisal.held"


def _days(days: Sequence[str]) -> str:
    shown = [d[5:] for d in days]
    return shown[0] if len(shown) == 1 else f"{shown[0]} – {shown[-1]}"


def _sources(session: Session, missing: Iterable[dict[str, Any]], zone: ZoneInfo) -> list[SourceLine]:
    """The sources that delivered these metrics before (from the samples' ``source``), else every
    source that ever ran; each with its last run and error."""
    pairs = {(m["metric"], m["scope"]) for m in missing}
    ids: set[str] = set()
    for metric, scope in pairs:
        source = session.scalar(
            select(MetricSample.source)
            .where(MetricSample.metric == metric, MetricSample.scope == scope, MetricSample.source != "")
            .order_by(MetricSample.day.desc())
            .limit(1)
        )
        if source:
            ids.add(source)
    if not ids:
        ids = set(session.scalars(select(SourceRun.source_id).distinct()))
    lines = []
    for source_id in sorted(ids):
        run = session.scalar(
            select(SourceRun)
            .where(SourceRun.source_id == source_id)
            .order_by(SourceRun.started_at.desc(), SourceRun.id.desc())
            .limit(1)
        )
        if run is None:
            lines.append(SourceLine(source_id, "从未运行", ""))
        else:
            when = run.started_at.astimezone(zone).strftime("%m-%d %H:%M")
            lines.append(SourceLine(source_id, when, run.error[:200]))
    return lines


def held_rows(session: Session, team_id: str | None = None, week: str | None = None) -> list[Appraisal]:
    q = select(Appraisal).where(Appraisal.current.is_(True), Appraisal.status == "held")
    if team_id is not None:
        q = q.where(Appraisal.team_id == team_id)
    if week is not None:
        q = q.where(Appraisal.week == week)
    return list(session.scalars(q.order_by(Appraisal.team_id, Appraisal.week, Appraisal.person_id)))


def card_for(session: Session, team: Team, week: str, rows: Sequence[Appraisal]) -> Card:
    names = {p.id: p.name for p in session.scalars(select(Person).where(Person.team_id == team.id))}
    kpis = {k.key: k.name for k in session.scalars(select(Kpi))}
    missing = [(r, m) for r in rows for m in (r.rules or {}).get("missing", [])]
    lines = [
        MissingLine(
            names.get(r.person_id, r.person_id),
            kpis.get(m["kpi"], m["kpi"]),
            m["metric"],
            m["scope"],
            _days(m["days"]),
        )
        for r, m in missing
    ]
    zone = ZoneInfo(team.timezone)
    return held_card(
        team_name=team.name,
        week=week,
        lines=lines,
        sources=_sources(session, (m for _, m in missing), zone),
        team_id=team.id,
    )


def notify_held(
    session: Session,
    team: Team,
    week: str,
    rows: Sequence[Appraisal],
    now: datetime,
    *,
    bots: Collection[str],
    admins: Iterable[str] = (),
    dedupe_suffix: str = "",
) -> int:
    """One card to the leader and one to each admin naming what is missing; returns messages queued."""
    if not rows:
        return 0
    card = card_for(session, team, week, rows)
    key = f"appraisal-held:{team.id}:{week}{dedupe_suffix}"
    sent = 0
    leader = session.get(Person, team.leader_id) if team.leader_id else None
    target = person_target(session, leader, bots) if leader is not None else None
    if target is not None:
        sent += outbox.enqueue(session, target, card, dedupe_key=key, now=now) is not None
    admin_list = [a for a in admins if a != team.leader_id]
    if admin_list:
        sent += notify_admins(session, admin_list, card, bots=bots, dedupe_key=key, now=now)
    session.add(
        AuditLog(
            at=now,
            actor="system",
            action=HELD_ACTION,
            subject=f"team {team.id}/{week}",
            detail={
                "team": team.id,
                "week": week,
                "people": [r.person_id for r in rows],
                "notified": [p for p in [team.leader_id, *admin_list] if p],
            },
        )
    )
    return sent


# ---------------------------------------------------------------- releasing held appraisals


def release(
    session: Session,
    rows: Sequence[Appraisal],
    now: datetime,
    *,
    reason: str,
    bots: Collection[str],
    links: LinkMaker | None = None,
) -> list[Appraisal]:
    """Publish ``rows`` (held) as new versions with ``reason``, and send each person's card."""
    out = []
    for row in rows:
        person = session.get(Person, row.person_id)
        if person is None:
            continue
        out.append(freeze(session, person, row.week, now, reason=reason, previous=row, hold=False))
    session.flush()
    publish(session, out, now, bots=bots, links=links)
    return out


def release_ready(
    session: Session, now: datetime, *, bots: Collection[str], links: LinkMaker | None = None
) -> int:
    """The tick: publish every held appraisal whose data is now complete; returns how many."""
    ready = []
    for row in held_rows(session):
        person = session.get(Person, row.person_id)
        if person is None:
            continue
        inputs = WeekInputs.load(session, row.week, [person.id])
        _, result = compute(session, person, row.week, inputs)
        if not missing_data(inputs, result, row.week, now, person.team.timezone):
            ready.append(row)
    release(session, ready, now, reason="数据已到齐，自动发布", bots=bots, links=links)
    return len(ready)


def repoll_requested(session: Session) -> bool:
    return session.get(SourceState, REPOLL) is not None


def clear_repoll(session: Session) -> None:
    row = session.get(SourceState, REPOLL)
    if row is not None:
        session.delete(row)


# ---------------------------------------------------------------- the card's buttons


def _allowed(ctx: Context, team: Team, week: str) -> Person:
    me = ctx.person
    if me is None:
        raise PermissionDenied("还不认识你")
    if team.leader_id == me.id:
        return me
    notices = ctx.session.scalars(
        select(AuditLog).where(AuditLog.action == HELD_ACTION, AuditLog.subject == f"team {team.id}/{week}")
    )
    if any(me.id in (n.detail or {}).get("notified", []) for n in notices):
        return me
    raise PermissionDenied("只有该团队的主管和管理员可以处理暂缓发布的考核。")


def _team_week(ctx: Context, event: Inbound) -> tuple[Team, str]:
    team = ctx.session.get(Team, str(event.values.get("team", "")))
    week = str(event.values.get("week", ""))
    if team is None:
        raise LookupError("找不到这个团队。")
    return team, week


@router.action("appraisal.held.repoll")
def repoll_action(event: Inbound, ctx: Context) -> Card:
    try:
        team, week = _team_week(ctx, event)
    except LookupError as exc:
        return error_card(str(exc))
    me = _allowed(ctx, team, week)
    if not repoll_requested(ctx.session):
        ctx.session.add(
            SourceState(
                source_id=REPOLL[0],
                key=REPOLL[1],
                value=json.dumps({"by": me.id, "team": team.id, "week": week}),
                updated_at=ctx.now,
            )
        )
    ctx.session.add(
        AuditLog(at=ctx.now, actor=me.id, action="appraisal.held.repoll", subject=f"team {team.id}/{week}")
    )
    return Card(
        title="已请求重新拉取",
        theme="green",
        blocks=(Markdown("几分钟内会重新拉取所有数据源；数据到齐后考核自动发布给本人。"),),
        toast="已请求",
    )


@router.action("appraisal.held.publish")
def publish_action(event: Inbound, ctx: Context) -> Card:
    try:
        team, week = _team_week(ctx, event)
    except LookupError as exc:
        return error_card(str(exc))
    me = _allowed(ctx, team, week)
    rows = held_rows(ctx.session, team.id, week)
    if not rows:
        return Card(
            title="无需处理", theme="grey", blocks=(Markdown(f"{team.name} {week} 没有暂缓发布的考核。"),)
        )
    kpis = {k.key: k.name for k in ctx.session.scalars(select(Kpi))}
    done = []
    for row in rows:
        gaps = "、".join(
            f"{kpis.get(m['kpi'], m['kpi'])}（{m['scope']}）" for m in (row.rules or {}).get("missing", [])
        )
        reason = f"{me.name}按现有数据发布，缺少数据的项计 0 分：{gaps or '无'}"
        done.extend(release(ctx.session, [row], ctx.now, reason=reason, bots=ctx.bots, links=ctx.links))
    names = {p.id: p.name for p in ctx.session.scalars(select(Person).where(Person.team_id == team.id))}
    ctx.session.add(
        AuditLog(
            at=ctx.now,
            actor=me.id,
            action="appraisal.held.publish",
            subject=f"team {team.id}/{week}",
            detail={"people": [r.person_id for r in done]},
        )
    )
    who = "、".join(names.get(r.person_id, r.person_id) for r in done)
    return Card(
        title="已按现有数据发布",
        theme="green",
        blocks=(
            Markdown(
                f"{team.name} {week}：已发布 {len(done)} 人（{who}），缺数据的项标注“数据缺失”，计 0 分。"
            ),
        ),
        toast="已发布",
    )
