"""The simulator: a local platform with no network, for the demo and end-to-end tests.

People are identified by their person id; a group chat's id is the team id and a
direct chat's id is the person id. Delivered cards land in the transcript the services hand
over as ``deps.transcript`` (storage/transcript.py), which the /sim page and
``GET /sim/api/messages`` read. Like every adapter it is built as ``SimulatorPlatform(bot, deps)``
and touches no table itself.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.config import BotConfig
from bot.platforms.base import (
    BadRequest,
    Outbound,
    RateLimit,
    SendResult,
    Transcript,
    WebRequest,
    WebResponse,
)
from cards.model import Card
from cards.render import html as html_render
from cards.render import text as text_render
from handlers.inbound import ChatType, Inbound, Kind

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.platforms.base import Deps

BOT_ID = "sim"
log = logging.getLogger("planloop.sim")
MAX_TEXT = 4000


def card_json(card: Card) -> dict[str, Any]:
    """The simulator's JSON for a card: title, plain text, actions, form, plus the full card model."""
    actions = [
        {"id": b.action, "label": b.label, "value": dict(b.value), **({"url": b.url} if b.url else {})}
        for b in card.buttons
    ]
    out: dict[str, Any] = {
        "title": card.title,
        "text": text_render.render(card),
        "actions": actions,
        "theme": card.theme,
        "html": html_render.render(card),
        "card": card.to_dict(),
    }
    if card.form is not None:
        out["form"] = {
            "action": card.form.action,
            "values": dict(card.form.values),
            "error": card.form.error,
            "fields": [
                {
                    "name": i.name,
                    "label": i.label,
                    "kind": i.kind,
                    "value": i.value,
                    "required": i.required,
                    "error": i.error,
                    "options": [{"value": o.value, "label": o.label} for o in i.options],
                }
                for i in card.form.inputs
            ],
        }
    return out


class SimulatorPlatform:
    name = "simulator"

    def __init__(self, bot: BotConfig, deps: Deps):
        if deps.transcript is None:
            raise ValueError("the simulator needs deps.transcript (bot/services.py gives it one)")
        self.bot_id = bot.id
        self.deps = deps
        self.transcript: Transcript = deps.transcript

    def parse(self, request: WebRequest, now: datetime) -> Inbound | WebResponse:
        body = request.json()
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object")
        actor = body.get("as")
        chat = body.get("chat") or "dm"
        if not isinstance(actor, str) or not actor:
            raise BadRequest('"as" (a person id) is required')
        if not isinstance(chat, str):
            raise BadRequest('"chat" must be "dm" or a team id')
        chat_type: ChatType = "dm" if chat in ("dm", actor) else "group"
        chat_id = actor if chat_type == "dm" else chat
        # The simulator has no platform event id: a client may send one ("id") to test retries.
        if request.path == "say":
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                raise BadRequest('"text" is required')
            if len(text) > MAX_TEXT:
                raise BadRequest(f"消息太长：最多 {MAX_TEXT} 字，这条 {len(text)} 字。请分几条发送。")
            event_id = str(body.get("id") or _auto_id(actor, chat_id, text, now))
            return Inbound(
                "simulator",
                self.bot_id,
                event_id,
                "text",
                actor,
                chat_id,
                chat_type,
                text=text,
                received_at=now,
            )
        if request.path == "act":
            action = body.get("action")
            values = body.get("values") or {}
            if not isinstance(action, str) or not action:
                raise BadRequest('"action" is required')
            if not isinstance(values, dict):
                raise BadRequest('"values" must be an object')
            clean = {str(k): "" if v is None else str(v) for k, v in values.items()}
            if any(len(v) > MAX_TEXT for v in clean.values()):
                raise BadRequest(f"填写的内容太长：每一项最多 {MAX_TEXT} 字。")
            event_id = str(
                body.get("id") or _auto_id(actor, chat_id, action + repr(sorted(clean.items())), now)
            )
            kind: Kind = "form" if clean else "action"
            label = body.get("label")
            return Inbound(
                "simulator",
                self.bot_id,
                event_id,
                kind,
                actor,
                chat_id,
                chat_type,
                action=action,
                values=clean,
                received_at=now,
                label=label.strip()[:100] if isinstance(label, str) else "",
            )
        raise BadRequest("unknown simulator call")

    def answer(self, inbound: Inbound, card: Card | None) -> tuple[WebResponse, bool]:
        replies = [card_json(card)] if card is not None else []
        return WebResponse(200, {"replies": replies}), False

    def ack_duplicate(self, inbound: Inbound) -> WebResponse:
        return WebResponse(200, {"replies": [], "duplicate": True})

    def limits(self, message: Outbound) -> list[RateLimit]:
        return []

    def record(self, session: Session, inbound: Inbound, card: Card | None, now: datetime) -> None:
        """Write what was said and the synchronous reply into the transcript (same transaction)."""
        said = inbound.text or (f"［{inbound.label}］" if inbound.label else f"[{inbound.action}]")
        self.transcript.add(session, chat=inbound.chat, sender=inbound.actor, text=said, card=None, at=now)
        if card is not None:
            text = text_render.render(card)
            self.transcript.add(
                session, chat=inbound.chat, sender="bot", text=text, card=card.to_dict(), at=now
            )

    def send(self, message: Outbound) -> SendResult:
        text = text_render.render(message.card)
        number = self.transcript.deliver(
            chat=message.target, text=text, card=message.card.to_dict(), at=self.deps.clock()
        )
        log.info("→ %s：%s", message.target, message.card.title or text[:40])
        return SendResult(platform_message_id=f"sim-{number}")


def _auto_id(actor: str, chat: str, what: str, now: datetime) -> str:
    # Distinct per request: a browser double-click within the same second collapses to one event.
    digest = hashlib.sha256(f"{actor}|{chat}|{what}|{int(now.timestamp())}".encode()).hexdigest()[:24]
    return f"sim-{digest}"
