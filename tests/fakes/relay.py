"""Deliver pending outbox rows in tests: the outbox relay's ``drain`` once ``bot/delivery.py`` is
on main, until then a minimal stand-in that hands each due row to its platform's ``send()``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.platforms.base import Outbound
from cards.model import Card
from storage.models import OutboxMessage


def drain(services: Any) -> int:
    """Send everything pending; returns how many rows were sent."""
    try:
        from bot.delivery import drain as relay_drain  # type: ignore[import-not-found]
    except ImportError:
        relay_drain = None
    if relay_drain is not None:
        stats = relay_drain(services)
        return int(getattr(stats, "sent", 0))
    with services.sessions() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.status == "pending").order_by(OutboxMessage.created_at)
        ).all()
        due = [(r.id, r.bot_id, r.channel, r.target, r.card, r.reply_handle) for r in rows]
    for row_id, bot_id, channel, target, card, handle in due:
        # send outside any transaction of ours, as the relay does (the simulator writes its own)
        result = services.platforms[bot_id].send(
            Outbound(row_id, channel, target, Card.from_dict(card), handle)
        )
        with services.sessions() as session, session.begin():
            row = session.get(OutboxMessage, row_id)
            row.status, row.sent_at, row.attempts = "sent", services.clock(), row.attempts + 1
            row.platform_message_id = result.platform_message_id
    return len(due)
