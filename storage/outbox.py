"""The outbox: enqueue a message in the caller's transaction; claim due rows for the relay."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cards.model import Card
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
    row = OutboxMessage(
        id=str(uuid.uuid4()),
        dedupe_key=dedupe_key,
        bot_id=target.bot_id,
        channel=target.channel,
        target=target.target,
        reply_handle=target.reply_handle,
        card=card.to_dict(),
        status="pending",
        attempts=0,
        next_attempt_at=not_before or now,
        created_at=now,
        last_error="",
    )
    session.add(row)
    session.flush()
    return row
