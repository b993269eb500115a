"""Forgetting what only guards against retries, once no retry can come (the daily ``housekeeping`` job).

- inbound event ids (``storage/events.py``): kept ``events.KEEP`` (3 days), far past the longest
  platform retry (Feishu's, about 7 hours);
- the open API's first answers per ``Idempotency-Key``: kept ``IDEMPOTENCY_KEEP`` (7 days); a
  client's retry after that is a new request.
Console credentials purge themselves (bot/console/sessions.py), and signed callbacks too
(storage/replay.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from storage import events
from storage.models import ApiIdempotency

IDEMPOTENCY_KEEP = timedelta(days=7)


def forget_old(session: Session, now: datetime) -> dict[str, int]:
    """Delete the expired rows; how many of each."""
    keys = session.execute(delete(ApiIdempotency).where(ApiIdempotency.created_at < now - IDEMPOTENCY_KEEP))
    return {
        "inbound_events": events.prune(session, now),
        "idempotency_keys": int(getattr(keys, "rowcount", 0) or 0),
    }
