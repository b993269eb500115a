"""Inbound event ids: remember one, and say whether it was seen before (platform retries)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import InboundEvent

# Feishu retries for ~7.1 h; keep ids well beyond the longest platform retry window.
KEEP = timedelta(days=3)


def first_time(session: Session, key: str, now: datetime) -> bool:
    """Record ``key``; False if it was already there. Runs in the caller's transaction, so a
    rolled-back handler also forgets the id and the platform's retry is processed again.

    A retry racing the original (on another web replica) waits on the original's row: if
    that commits, the insert hits the primary key and this is a duplicate, not an error."""
    if session.scalar(select(InboundEvent.key).where(InboundEvent.key == key)) is not None:
        return False
    try:
        with session.begin_nested():
            session.execute(insert(InboundEvent).values(key=key, received_at=now))
    except IntegrityError:
        return False
    return True


def prune(session: Session, now: datetime) -> int:
    result = session.execute(delete(InboundEvent).where(InboundEvent.received_at < now - KEEP))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
