"""Inbound event ids: remember one, and say whether it was seen before (platform retries)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from storage.models import InboundEvent

# Feishu retries for ~7.1 h; keep ids well beyond the longest platform retry window.
KEEP = timedelta(days=3)


def first_time(session: Session, key: str, now: datetime) -> bool:
    """Record ``key``; False if it was already there. Runs in the caller's transaction, so a
    rolled-back handler also forgets the id and the platform's retry is processed again."""
    if session.scalar(select(InboundEvent.key).where(InboundEvent.key == key)) is not None:
        return False
    session.execute(insert(InboundEvent).values(key=key, received_at=now))
    session.flush()
    return True


def prune(session: Session, now: datetime) -> int:
    result = session.execute(delete(InboundEvent).where(InboundEvent.received_at < now - KEEP))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
