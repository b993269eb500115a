"""The outbox: enqueue a message in the caller's transaction; claim due rows for the relay.

``enqueue`` adds one message; ``put`` is the same row for the inbound hot path (one Core insert
that skips a key already queued); ``enqueue_many`` adds a weekly run's thousands in a few statements
(one look-up of the keys already queued per thousand, one multi-row insert), with the same rule:
a dedupe key is queued at most once.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.orm import Session

from cards.model import Card
from storage.db import connection_of, counted, insert_new
from storage.hot import HotStatement
from storage.models import OutboxMessage


@dataclass(frozen=True)
class Target:
    """Where a message goes: ``bot_id`` + ``channel`` (chat | user | webhook | update) + ``target``."""

    bot_id: str
    channel: str
    target: str
    reply_handle: str | None = None


@dataclass(frozen=True)
class Message:
    """One message for ``enqueue_many``."""

    target: Target
    card: Card
    dedupe_key: str


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
    row = OutboxMessage(**_values(Message(target, card, dedupe_key), now, not_before))
    session.add(row)
    session.flush()
    return row


def put(
    session: Session | Connection,
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
    conn = connection_of(session)
    values = _values(Message(target, card, dedupe_key), now, not_before)
    return counted(_insert(conn.dialect.name).rowcount(conn, values))


@functools.cache
def _insert(dialect: str) -> HotStatement:
    """Built once per dialect, and run on the driver's cursor (storage/hot.py)."""
    return HotStatement(insert_new(dialect, OutboxMessage.__table__))  # type: ignore[arg-type]


CHUNK = 1000  # keys per IN (...) look-up and rows per insert statement


def enqueue_many(
    session: Session, messages: Sequence[Message], *, now: datetime, not_before: datetime | None = None
) -> list[str]:
    """Add many messages in the caller's transaction; returns the dedupe keys queued. A key that was
    enqueued before, or that comes twice in ``messages``, is queued once (the first), as ``enqueue``."""
    seen: set[str] = set()
    keys = sorted({m.dedupe_key for m in messages})
    for n in range(0, len(keys), CHUNK):
        chunk = keys[n : n + CHUNK]
        seen.update(
            session.scalars(select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(chunk)))
        )
    rows = []
    for message in messages:
        if message.dedupe_key in seen:
            continue
        seen.add(message.dedupe_key)
        rows.append(_values(message, now, not_before))
    for n in range(0, len(rows), CHUNK):
        session.execute(insert(OutboxMessage), rows[n : n + CHUNK])
    return [r["dedupe_key"] for r in rows]


def _values(message: Message, now: datetime, not_before: datetime | None) -> dict[str, Any]:
    target = message.target
    return {
        "id": str(uuid.uuid4()),
        "dedupe_key": message.dedupe_key,
        "bot_id": target.bot_id,
        "channel": target.channel,
        "target": target.target,
        "reply_handle": target.reply_handle,
        "card": message.card.to_dict(),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": not_before or now,
        "created_at": now,
        "last_error": "",
        "parts_sent": 0,
    }
