"""Outgoing webhook events (issue 21): ``emit`` queues one outbox row per subscribed webhook, in
the caller's transaction, so an event is sent if and only if the change that raised it commits.

Subscriptions: ``[[webhooks]]`` of planloop.toml (handed to every session through
``session.info``, set by bot/services.py) and the ``webhook_subscriptions`` made through the API.
bot/worker/webhooks_out.py signs and sends the rows; the relay (bot/worker/delivery.py) schedules them.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import OutboxMessage, WebhookSubscription

CHANNEL = "event"  # OutboxMessage.channel of an outgoing webhook event; target = the webhook's id
BOT_ID = "webhooks"  # OutboxMessage.bot_id of those rows (no chat bot sends them)
SESSION_HOOKS = "webhooks"  # session.info key: the configured [[webhooks]] (bot.config.WebhookConfig)

_sequence = itertools.count()


def _row_id(now: datetime) -> str:
    """A 36-character id that sorts by creation (microseconds, then a per-process counter), so the
    relay, which claims by (due time, created_at, id), sends one resource's events in order."""
    micros = int(now.timestamp() * 1_000_000)
    return f"{micros:016x}-{next(_sequence) % 16**8:08x}-{os.urandom(5).hex()}"


def resource_prefix(hook: str, resource: str) -> str:
    """The start of the dedupe key of every event row of ``resource`` for ``hook``."""
    return f"event:{hook}:{resource}:"


def queue_end(session: Session, hook: str, resource: str) -> datetime | None:
    """When the last undelivered event of ``resource`` for ``hook`` is due: a new one goes after it."""
    return session.scalar(
        select(func.max(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status == "pending",
            OutboxMessage.channel == CHANNEL,
            OutboxMessage.target == hook,
            OutboxMessage.dedupe_key.startswith(resource_prefix(hook, resource), autoescape=True),
        )
    )


def subscribers(session: Session, event_type: str) -> list[str]:
    """The ids of the webhooks that take ``event_type`` (an empty event list takes every event)."""
    configured: Iterable[Any] = session.info.get(SESSION_HOOKS, ())
    ids = [h.id for h in configured if not h.events or event_type in h.events]
    for row in session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.created_at)):
        if not row.events or event_type in row.events:
            ids.append(row.id)
    return ids


def emit(
    session: Session,
    event_type: str,
    data: Mapping[str, Any],
    *,
    resource: str,
    now: datetime,
    key: str = "",
) -> int:
    """Queue ``event_type`` with ``data`` for every subscribed webhook; returns the rows queued.

    ``resource`` names what the event is about (``plan:lilei/2026-W49``): events of one resource
    go out in the order they were raised: a new one is due no sooner than the last one waiting, and
    a retried one takes the later ones with it (bot/worker/webhooks_out.py). ``key``, when given, makes the event idempotent: the
    same key raises it once (a job run twice)."""
    hooks = subscribers(session, event_type)
    if not hooks:
        return 0
    event_id = (
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"planloop:{event_type}:{key}")) if key else str(uuid.uuid4())
    )
    event = {"id": event_id, "type": event_type, "created_at": now.isoformat(), "data": dict(data)}
    queued = 0
    for hook in hooks:
        dedupe = resource_prefix(hook, resource) + event_id
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe)):
            continue
        behind = queue_end(session, hook, resource)  # an earlier event still waits: queue after it
        due = max(now, behind) if behind is not None else now
        session.add(
            OutboxMessage(
                id=_row_id(now),
                dedupe_key=dedupe,
                bot_id=BOT_ID,
                channel=CHANNEL,
                target=hook,
                # "title" makes the row readable as a card where the relay and the admins' notice
                # expect one; the event itself is what bot/worker/webhooks_out.py sends
                card={"title": f"{event_type} → {hook}", "event": event, "resource": resource},
                reply_handle=None,
                status="pending",
                attempts=0,
                next_attempt_at=due,
                created_at=now,
                last_error="",
            )
        )
        queued += 1
    session.flush()
    return queued
