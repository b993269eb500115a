"""The simulator's transcript (``sim_messages``): what people said and what the bot delivered, per chat.

The simulator adapter sees only the ``Transcript`` face (bot/platforms/base.py); bot/services.py
hands it this store, and the /sim/ page reads ``lines``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storage.models import SimMessage


@dataclass(frozen=True)
class Line:
    """One line of a chat: ``sender`` is a person id or "bot"; ``card`` the card's dict, if it was one."""

    sender: str
    text: str
    card: dict[str, Any] | None
    at: datetime


class SimTranscript:
    """The sim_messages table behind the simulator adapter."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def add(
        self,
        session: Session,
        *,
        chat: str,
        sender: str,
        text: str,
        card: dict[str, Any] | None,
        at: datetime,
    ) -> None:
        """A line written in the caller's transaction (what was said, and the synchronous answer)."""
        session.add(SimMessage(chat=chat, sender=sender, text=text, card=card, at=at))

    def deliver(self, *, chat: str, text: str, card: dict[str, Any], at: datetime) -> int:
        """A card the bot sends (the outbox relay), in its own transaction; its row id."""
        with self.sessions() as session, session.begin():
            row = SimMessage(chat=chat, sender="bot", text=text, card=card, at=at)
            session.add(row)
            session.flush()
            return row.id


def lines(session: Session, chat: str) -> list[Line]:
    """Everything said in ``chat`` so far, oldest first."""
    rows = session.scalars(select(SimMessage).where(SimMessage.chat == chat).order_by(SimMessage.id))
    return [Line(r.sender, r.text, r.card, r.at) for r in rows]
