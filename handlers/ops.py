"""Notices to the service's admins (person ids from ``[server] admins``), through the outbox."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cards.model import Card
from storage import outbox
from storage.models import AuditLog, Person
from storage.people import person_target

log = logging.getLogger(__name__)

# Every notice's dedupe key starts with this, so the relay never reports a failed notice
# about a failed notice to the admins (it only logs and audits it).
ADMIN_PREFIX = "admin:"


def notify_admins(
    session: Session,
    admins: Iterable[str],
    card: Card,
    *,
    bots: Collection[str],
    dedupe_key: str,
    now: datetime,
    audit: dict[str, Any] | None = None,
) -> int:
    """Enqueue ``card`` to every reachable admin (on one of ``bots``, the configured bot ids).

    Returns the number of messages enqueued (0 when they were enqueued before).
    The audit entry is always written, so the event is on record either way.
    """
    sent = reached = 0
    for admin_id in admins:
        person = session.get(Person, admin_id)
        target = person_target(session, person, bots) if person is not None and person.active else None
        if target is None:
            log.warning("admin %s cannot be reached by chat (unknown, inactive or no identity)", admin_id)
            continue
        reached += 1
        key = f"{ADMIN_PREFIX}{dedupe_key}:{admin_id}"
        row = outbox.enqueue(session, target, card, dedupe_key=key, now=now)
        sent += row is not None
    session.add(
        AuditLog(
            at=now,
            actor="planloop",
            action="admin_notice",
            subject=dedupe_key[:200],
            detail={"title": card.title, "admins_reached": reached, **(audit or {})},
        )
    )
    if reached == 0:
        log.error("admin notice with nobody to tell (set [server] admins): %s", card.title)
    session.flush()
    return sent
