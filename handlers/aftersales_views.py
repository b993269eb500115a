"""What people see of the after-sales cases: the customer-service progress card's case lines, the
leader's Monday line of causes against the week before, and the plan form's proposed causes."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cards.aftersales import cause_changes_line, largest_causes, week_cases_block, with_blocks
from cards.builders import FormRow
from cards.model import Card, Markdown
from handlers.workdays import week_dates
from storage.cases import case_week
from storage.models import AftersaleCase

# The plan form's complaint-cause words (handlers.setup.COMPLAINT_CAUSES) for each cause.
FORM_WORD = {
    "物流": "物流延迟",
    "产品": "产品质量",
    "描述不符": "描述不符",
    "服务": "服务态度",
    "其他": "其他",
}
COMPLAINT_SECTION = "投诉处理"


def has_cases(session: Session) -> bool:
    return session.scalar(select(AftersaleCase.case_id).limit(1)) is not None


def with_week_cases(session: Session, card: Card, week: str, tz: ZoneInfo, now: datetime) -> Card:
    """The customer-service progress card plus the week's cases by cause and the open ones."""
    if not has_cases(session):
        return card
    days = week_dates(week)
    summary = case_week(session, days[0], days[-1], tz, now)
    return with_blocks(card, week_cases_block(summary.by_cause, summary.open_count, summary.oldest_open, tz))


def with_cause_changes(session: Session, card: Card, week: str, tz: ZoneInfo, now: datetime) -> Card:
    """The leader's Monday card plus ``物流 12 → 7`` for ``week`` against the week before it."""
    if not has_cases(session):
        return card
    days = week_dates(week)
    this = case_week(session, days[0], days[-1], tz, now)
    last = case_week(session, days[0] - timedelta(days=7), days[0] - timedelta(days=1), tz, now)
    line = cause_changes_line(last.by_cause, this.by_cause)
    if not line:
        return card
    return with_blocks(
        card, (Markdown(f"**售后原因（{week} 比前一周）**：{line}；未结 {this.open_count} 件"),)
    )


def propose_causes(
    session: Session, rows: list[FormRow], today: date, tz: ZoneInfo, now: datetime
) -> list[FormRow]:
    """An empty form's complaint row proposes last week's largest causes (if cases are stored)."""
    if not rows or not has_cases(session):
        return rows
    monday = today - timedelta(days=today.weekday())
    last = case_week(session, monday - timedelta(days=7), monday - timedelta(days=1), tz, now)
    words = "、".join(FORM_WORD[c] for c in largest_causes(last.by_cause, 2))
    if not words:
        return rows
    at = next((n for n, r in enumerate(rows) if r.section == COMPLAINT_SECTION), 0)
    if rows[at].causes:
        return rows
    rows = list(rows)
    rows[at] = dataclasses.replace(rows[at], causes=words)
    return rows
