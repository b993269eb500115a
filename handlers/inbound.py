"""Inbound: the neutral event every platform adapter produces, and the only thing handlers see."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Kind = Literal["text", "action", "form"]
ChatType = Literal["group", "dm"]


@dataclass(frozen=True)
class Inbound:
    """One thing a person did in chat, with every platform detail already stripped.

    ``actor`` is the person's id *on that bot* (Feishu open_id, DingTalk staffId, WeCom
    userid, the simulator's person id); handlers map it to a person through storage.
    ``chat`` is the platform chat id for a group, or the actor's id for a direct chat.
    ``action`` names a card action (``"plan.submit"``); ``values`` carries the button
    value merged with form fields. ``reply_handle`` is an opaque token the adapter needs
    to update the card later (Feishu callback token, WeCom response_code, DingTalk
    outTrackId); handlers pass it on but never read it. ``label`` is the clicked button's
    text where the platform says it (the simulator shows it in the chat); handlers never read it.
    """

    platform: str
    bot_id: str
    event_id: str
    kind: Kind
    actor: str
    chat: str
    chat_type: ChatType = "dm"
    text: str = ""
    action: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    reply_handle: str | None = None
    received_at: datetime | None = None
    label: str = ""
