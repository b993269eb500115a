"""The outbox: enqueue a message in the caller's transaction; claim due rows for the relay."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.orm import Session

from cards.model import Card
from storage.db import insert_new, inserted
from storage.models import OutboxMessage


@dataclass(frozen=True)
class Target:
    """Where a message goes: ``bot_id`` + ``channel`` (chat | user | webhook | update) + ``target``."""

    bot_id: str
    channel: str
    target: str
    reply_handle: str | None = None


def enqueue(
    session: Session,
    target: Target,
    card: Card,
    *,
    dedupe_key: str,
    now: datetime,
    not_before: datetime | None = None,
) -> OutboxMessage | None:
    """Add one message; None if ``dedupe_key`` was enqueued before (the same alert, summary …).

    Call inside the transaction that made the change the message reports, so the two
    commit together or not at all.
    """
    if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)):
        return None
    row = OutboxMessage(**_row(target, card, dedupe_key, now, not_before))
    session.add(row)
    session.flush()
    return row


def put(
    session: Session,
    target: Target,
    card: Card,
    *,
    dedupe_key: str,
    now: datetime,
    not_before: datetime | None = None,
) -> bool:
    """``enqueue`` for a hot path (every inbound event's answer): one Core ``INSERT … ON
    CONFLICT DO NOTHING`` in the caller's transaction, the same row, no ORM object back.
    False if ``dedupe_key`` was enqueued before — also when a concurrent transaction holding
    it committed first (the insert waits for it instead of failing)."""
    conn = session.connection()
    result = conn.execute(_insert(conn.dialect.name), _row(target, card, dedupe_key, now, not_before))
    return inserted(result)


@functools.cache
def _insert(dialect: str) -> Insert:
    return insert_new(dialect, OutboxMessage.__table__)  # type: ignore[arg-type]


def _row(
    target: Target, card: Card, dedupe_key: str, now: datetime, not_before: datetime | None
) -> dict[str, Any]:
    """A new pending outbox row's columns (the others take their defaults)."""
    return {
        "id": str(uuid.uuid4()),
        "dedupe_key": dedupe_key,
        "bot_id": target.bot_id,
        "channel": target.channel,
        "target": target.target,
        "reply_handle": target.reply_handle,
        "card": card.to_dict(),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
        "last_error": "",
    }
