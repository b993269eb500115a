"""Lag alerts: a DM to the employee per lagging item, one folded card per team to the leader.

Rules: only on workdays between 09:00 and 18:00 team time; at most one alert per item
and one leader card per team per workday (the outbox dedupe keys carry the local date);
snoozed items and teams are skipped until the end of the snooze. Everything is enqueued
in the caller's transaction. The buttons on the cards are handled here too.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cards import builders_progress as cards
from cards.model import Card
from handlers import workdays
from handlers.events_out import emit
from handlers.inbound import Inbound
from handlers.progress import DEFAULT_LAG_MARGIN, ItemProgress, progress_command, week_progress
from handlers.router import Context, PermissionDenied, router
from storage import outbox
from storage.calendar import load_overrides
from storage.models import Person, Plan, PlanItem, Setting, Team
from storage.people import leader_of, person_target

log = logging.getLogger(__name__)

ITEM_SNOOZE = "snooze:item:"
TEAM_SNOOZE = "snooze:team:"


@dataclass
class AlertRun:
    """What one pass did: messages enqueued, and teams passed over (with the reason)."""

    employee: int = 0
    leader: int = 0
    lagging: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


def _snoozed_until(session: Session, keys: list[str]) -> dict[str, date]:
    if not keys:
        return {}
    rows = session.scalars(select(Setting).where(Setting.key.in_(keys)))
    out: dict[str, date] = {}
    for row in rows:
        try:
            out[row.key] = date.fromisoformat(str(row.value.get("until", "")))
        except ValueError:
            continue
    return out


def _set_snooze(session: Session, key: str, until: date, by: str, now: datetime) -> None:
    row = session.get(Setting, key)
    value = {"until": until.isoformat(), "by": by}
    if row is None:
        session.add(Setting(key=key, value=value, updated_at=now))
    else:
        row.value = value
        row.updated_at = now
    session.flush()


def run_lag_alerts(
    session: Session, now: datetime, *, bots: Collection[str], dedupe_suffix: str = ""
) -> AlertRun:
    """Find lagging items of every active team and enqueue the alerts due at ``now``.

    ``bots`` are the bot ids configured here (where a message can go). ``dedupe_suffix`` is
    empty for scheduled runs; an admin's explicit re-run passes one so its messages are not
    mistaken for the ones already sent.
    """
    result = AlertRun()
    overrides = load_overrides(session)
    teams = list(session.scalars(select(Team).where(Team.active.is_(True)).order_by(Team.id)))
    by_week: dict[tuple[str, str], list[Team]] = {}
    for team in teams:
        tz = ZoneInfo(team.timezone or "Asia/Shanghai")
        if not workdays.is_working_time(now, tz, overrides):
            local = now.astimezone(tz)
            why = (
                "not a workday" if not workdays.is_workday(local.date(), overrides) else "outside 09:00–18:00"
            )
            result.skipped[team.id] = why
            continue
        by_week.setdefault((workdays.week_of(now, tz), team.timezone or "Asia/Shanghai"), []).append(team)

    for (week, zone_name), week_teams in by_week.items():
        tz = ZoneInfo(zone_name)
        today = now.astimezone(tz).date()
        items = week_progress(
            session, week, now, team_ids=[t.id for t in week_teams], overrides=overrides, tz=tz
        )
        lagging = [i for i in items if i.lagging]
        result.lagging += len(lagging)
        if not lagging:
            continue
        snoozes = _snoozed_until(
            session,
            [f"{ITEM_SNOOZE}{i.item_id}" for i in lagging] + [f"{TEAM_SNOOZE}{t.id}" for t in week_teams],
        )
        people = {
            p.id: p
            for p in session.scalars(select(Person).where(Person.id.in_({i.person_id for i in lagging})))
        }
        for team in week_teams:
            team_items = [
                i for i in lagging if i.team_id == team.id and _alertable(people.get(i.person_id), today)
            ]
            if not team_items:
                continue
            margin = DEFAULT_LAG_MARGIN if team.lag_margin is None else team.lag_margin
            for item in team_items:
                until = snoozes.get(f"{ITEM_SNOOZE}{item.item_id}")
                if until is not None and today <= until:
                    continue
                person = people[item.person_id]
                target = person_target(session, person, bots)
                if target is None:
                    log.warning(
                        "lag alert: %s has no chat identity; item %s not alerted", person.id, item.item_id
                    )
                    continue
                row = outbox.enqueue(
                    session,
                    target,
                    cards.lag_alert_card(item, margin),
                    dedupe_key=f"lag:{item.item_id}:{today.isoformat()}{dedupe_suffix}",
                    now=now,
                )
                result.employee += row is not None
                if row is not None:
                    emit(
                        session,
                        "item.lagging",
                        lag_event(item, person, margin),
                        resource=f"item:{item.item_id}",
                        now=now,
                        key=f"lag:{item.item_id}:{today.isoformat()}",
                    )
            until = snoozes.get(f"{TEAM_SNOOZE}{team.id}")
            if until is not None and today <= until:
                continue
            leader = leader_of(session, team)
            target = person_target(session, leader, bots) if leader is not None else None
            if target is None:
                log.warning("lag alert: team %s has no reachable leader; folded card not sent", team.id)
                continue
            named = [(people[i.person_id].name, i) for i in team_items]
            row = outbox.enqueue(
                session,
                target,
                cards.team_lag_card(team.id, team.name, today, named),
                dedupe_key=f"lag-team:{team.id}:{today.isoformat()}{dedupe_suffix}",
                now=now,
            )
            result.leader += row is not None
    return result


def _num(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def lag_event(item: ItemProgress, person: Person, margin: int) -> dict[str, object]:
    """A lagging item as an outgoing webhook's ``data``: the export's item keys, with whose and why."""
    return {
        "employee": person.id,
        "team": item.team_id,
        "week": item.week,
        "item_id": item.item_id,
        "text": item.text,
        "kpi": item.kpi_key,
        "scope": item.scope,
        "baseline": _num(item.baseline),
        "target": _num(item.target),
        "actual": _num(item.actual),
        "progress": item.ratio,
        "pace": _num(item.pace),
        "lagging": True,
        "margin": margin,
    }


def _alertable(person: Person | None, today: date) -> bool:
    if person is None or not person.active:
        return False
    return person.on_leave_until is None or person.on_leave_until < today


# --- the buttons on the alert cards ----------------------------------------------------------


def _item_for(ctx: Context, event: Inbound, *, leader_may: bool = False) -> tuple[ItemProgress, Person]:
    """The item a button refers to, if the actor owns it (or leads its team, when allowed)."""
    person = ctx.person
    assert person is not None
    try:
        item_id = int(event.values.get("item", ""))
    except ValueError:
        raise PermissionDenied("这个按钮缺少计划项。") from None
    row = ctx.session.execute(
        select(PlanItem.id, Plan.person_id, Plan.team_id, Plan.week)
        .join(Plan, Plan.id == PlanItem.plan_id)
        .where(PlanItem.id == item_id)
    ).first()
    if row is None:
        raise PermissionDenied("这个计划项已不存在（计划可能已修改）。")
    owner = ctx.session.get(Person, row.person_id)
    is_owner = row.person_id == person.id
    is_leader = owner is not None and owner.team.leader_id == person.id
    if not (is_owner or (leader_may and is_leader)) or owner is None:
        raise PermissionDenied("这是别人的计划项。")
    tz = ZoneInfo(owner.team.timezone or "Asia/Shanghai")
    items = week_progress(ctx.session, row.week, ctx.now, person_ids=[row.person_id], tz=tz)
    item = next((i for i in items if i.item_id == item_id), None)
    if item is None:
        raise PermissionDenied("这个计划项已不在当前计划里。")
    return item, owner


def _note_link(ctx: Context, item: ItemProgress) -> str:
    # the page "progress-note" (bot/web/pages.py) shows the same form for platforms without text inputs
    return ctx.links(item.person_id, "progress-note", item.week, item=str(item.item_id))


@router.action("progress.note")
def note_form(event: Inbound, ctx: Context) -> Card:
    item, _ = _item_for(ctx, event)
    return cards.note_form_card(item, _note_link(ctx, item))


@router.action("progress.note.save")
def note_save(event: Inbound, ctx: Context) -> Card:
    item, _ = _item_for(ctx, event)
    note = (event.values.get("note") or "").strip()
    problem = "请写几句说明。" if not note else ""
    if len(note) > cards.MAX_NOTE:
        problem = f"说明最多 {cards.MAX_NOTE} 字（现在 {len(note)} 字）。"
    if problem:
        card = cards.note_form_card(item, _note_link(ctx, item))
        assert card.form is not None
        return replace(card, form=replace(card.form, error=problem))
    row = ctx.session.get(PlanItem, item.item_id)
    assert row is not None
    row.note = note
    ctx.session.flush()
    return cards.done_card("说明已保存", f"“{item.text}”的说明已更新，组长查看进度时能看到。")


@router.action("progress.help")
def ask_for_help(event: Inbound, ctx: Context) -> Card:
    item, owner = _item_for(ctx, event)
    leader = leader_of(ctx.session, owner.team)
    if leader is None or leader.id == owner.id:
        return cards.progress_error("你的团队没有设置组长，无法转达。请联系管理员。")
    target = person_target(ctx.session, leader, ctx.bots)
    if target is None:
        return cards.progress_error(f"组长{leader.name}还没有绑定聊天账号，无法转达。")
    today = ctx.now.astimezone(ZoneInfo(owner.team.timezone or "Asia/Shanghai")).date()
    row = outbox.enqueue(
        ctx.session,
        target,
        cards.help_request_card(owner.name, item),
        dedupe_key=f"help:{item.item_id}:{today.isoformat()}",
        now=ctx.now,
    )
    if row is None:
        return cards.done_card("已经通知过组长", f"今天已经把“{item.text}”转给{leader.name}了。")
    return cards.done_card("已通知组长", f"已把“{item.text}”的情况发给{leader.name}。")


def _end_of_week(week: str) -> date:
    return workdays.week_dates(week)[-1]


@router.action("progress.snooze")
def snooze_item(event: Inbound, ctx: Context) -> Card:
    item, _ = _item_for(ctx, event, leader_may=True)
    person = ctx.person
    assert person is not None
    _set_snooze(ctx.session, f"{ITEM_SNOOZE}{item.item_id}", _end_of_week(item.week), person.id, ctx.now)
    return cards.done_card("本周不再提醒", f"“{item.text}”本周不再发落后提醒；进度仍可随时发送“进度”查看。")


@router.action("progress.team.snooze")
def snooze_team(event: Inbound, ctx: Context) -> Card:
    person = ctx.person
    assert person is not None
    team = person.team
    if team is None or team.leader_id != person.id or event.values.get("team", team.id) != team.id:
        raise PermissionDenied("只有组长可以暂停团队的落后汇总。")
    tz = ZoneInfo(team.timezone or "Asia/Shanghai")
    week = workdays.week_of(ctx.now, tz)
    _set_snooze(ctx.session, f"{TEAM_SNOOZE}{team.id}", _end_of_week(week), person.id, ctx.now)
    return cards.done_card("本周不再汇总", f"{team.name}本周不再发落后汇总；成员自己的提醒不受影响。")


@router.action("progress.show")
def show_progress(event: Inbound, ctx: Context) -> Card | None:
    """The button on leader cards: the same card as the 进度 command."""
    return progress_command(
        Inbound(
            event.platform,
            event.bot_id,
            event.event_id,
            "text",
            event.actor,
            event.chat,
            event.chat_type,
            text="进度",
        ),
        ctx,
    )


def snooze_until(session: Session, item_id: int) -> date | None:
    """When an item's snooze ends (for tests and the progress card), or None."""
    return _snoozed_until(session, [f"{ITEM_SNOOZE}{item_id}"]).get(f"{ITEM_SNOOZE}{item_id}")
