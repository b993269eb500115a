"""WeCom 智能机器人 (AI bot) on its long connection: the JSON callbacks, the reply frames, and sends.

The AI bot is not the self-built app of ``wecom.py``: it has its own id and secret (BotID /
Secret), receives JSON (no XML, no encryption) over the connection that
``wecom_stream.WeComStreamClient`` holds, and answers each callback with a frame carrying that
callback's ``req_id`` (developer.work.weixin.qq.com path/101463, and the official SDKs; what was
confirmed where is in docs/wecom.md):

- a message (``aibot_msg_callback``) is answered with ``aibot_respond_msg``: a template card, or
  msgtype ``stream`` (markdown, finish = true) when the card cannot show it, or both
  (``stream_with_template_card``) when the card needs its full text beside it;
- a card click (``aibot_event_callback``, eventtype ``template_card_event``) is answered with
  ``aibot_respond_update_msg`` (``response_type = update_template_card``, the clicked card's
  ``task_id``), which WeCom takes only within 5 s of the event;
- anything pushed later (reminders, lag alerts, summaries, the private answer to a group
  command) goes through ``send``: over the connection (``aibot_send_msg``, only in the process
  holding it, and only to a chat that has talked to the bot), or through the corp app's
  ``message/send`` when the entry carries ``corp_id`` / ``agent_id`` / ``secret`` and the card
  has no callback buttons (a click on an app card goes to the app's callback URL, which a
  stream deployment does not have).

No platform JSON leaves this module: the client hands frames' bodies here and gets back an
``Inbound`` or the reply frame to send.
"""

from __future__ import annotations

import re
import secrets
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from bot.config import BotConfig
from bot.platforms.base import DeliveryError, Outbound, RateLimit, SendResult, WebRequest, WebResponse
from bot.platforms.wecom import MAX_TEXT, WeComPlatform, _clean_id
from cards.model import Card
from cards.render import wecom as render
from handlers.inbound import ChatType, Inbound, Kind

if TYPE_CHECKING:
    from bot.platforms.base import Deps

MSG_CALLBACK = "aibot_msg_callback"
EVENT_CALLBACK = "aibot_event_callback"
RESPOND = "aibot_respond_msg"
RESPOND_UPDATE = "aibot_respond_update_msg"
RESPOND_WELCOME = "aibot_respond_welcome_msg"
SEND = "aibot_send_msg"

STREAM_BYTES = 20480  # stream.content, utf-8 (aibot-node-sdk StreamReplyBody)
PUSH_MARKDOWN_BYTES = 4096  # markdown in aibot_send_msg: not documented; the group robot's limit
PUSH_PER_MINUTE = 30  # per conversation, as quoted from path/101463 (not seen in the SDKs)
PUSH_PER_HOUR = 1000
WELCOME = "您好，我是计划助手。发送“写计划”填写本周计划，发送“帮助”查看全部命令。"
NO_REPLY = WebResponse(200, b"")
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\S+)+\s*")


class LiveConnection(Protocol):
    """The AI bot's open connection (wecom_stream.WeComStreamClient): pushes go over it."""

    def push(self, body: dict[str, Any], timeout: float | None = None) -> dict[str, Any]: ...


# Which bot's connection this process holds: the stream client registers itself while connected,
# the adapter's send() reads it. Kept here, below the stream client, so neither imports the other back.
_LIVE: dict[str, LiveConnection] = {}
_LIVE_LOCK = threading.Lock()


def hold_connection(bot_id: str, client: LiveConnection) -> None:
    with _LIVE_LOCK:
        _LIVE[bot_id] = client


def release_connection(bot_id: str, client: LiveConnection) -> None:
    with _LIVE_LOCK:
        if _LIVE.get(bot_id) is client:
            del _LIVE[bot_id]


def live_client(bot_id: str) -> LiveConnection | None:
    """The client holding ``bot_id``'s live connection in this process, if any."""
    with _LIVE_LOCK:
        return _LIVE.get(bot_id)


def _text_of(body: dict[str, Any]) -> str | None:
    """The text a person typed (or said: voice arrives transcribed); None for pictures, files …"""
    msgtype = body.get("msgtype")
    if msgtype in ("text", "voice"):
        part = body.get(msgtype)
        return str(part.get("content", "")) if isinstance(part, dict) else None
    if msgtype == "mixed":
        items = (body.get("mixed") or {}).get("msg_item") or []
        texts = [
            str((i.get("text") or {}).get("content", ""))
            for i in items
            if isinstance(i, dict) and i.get("msgtype") == "text"
        ]
        return "\n".join(t for t in texts if t) or None
    return None


def _selected(event: dict[str, Any]) -> dict[str, str]:
    """``selected_items.selected_item[]`` of a card event as {question_key: "id1,id2"}."""
    items = (event.get("selected_items") or {}).get("selected_item") or []
    out: dict[str, str] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not item.get("question_key"):
            continue
        ids = (item.get("option_ids") or {}).get("option_id") or []
        out[str(item["question_key"])] = ",".join(str(i) for i in ids if i)
    return out


def event_type(body: dict[str, Any]) -> str:
    event = body.get("event")
    return str(event.get("eventtype", "")) if isinstance(event, dict) else ""


def parse_callback(bot_id: str, cmd: str, body: Any, now: datetime) -> Inbound | None:
    """Pure: the neutral Inbound for one callback's body, or None for what planloop does not act on
    (pictures, files, feedback, entering the chat). Raises ValueError for a malformed body."""
    if not isinstance(body, dict):
        raise ValueError("the callback has no body object")
    msgid = str(body.get("msgid", ""))
    user = str((body.get("from") or {}).get("userid", ""))
    if not msgid or not user:
        raise ValueError("the callback has no msgid or from.userid")
    group = body.get("chattype") == "group" and bool(body.get("chatid"))
    chat = str(body["chatid"]) if group else user
    chat_type: ChatType = "group" if group else "dm"
    event_id = f"aibot:{msgid}"
    if cmd == MSG_CALLBACK:
        text = _text_of(body)
        if text is None:
            return None
        # In a group the bot only receives what mentions it; the mention leads the text.
        text = _LEADING_MENTIONS.sub("", text) if group else text.strip()
        if len(text) > MAX_TEXT:
            raise ValueError(f"text longer than {MAX_TEXT} characters")
        return Inbound("wecom", bot_id, event_id, "text", user, chat, chat_type, text=text, received_at=now)
    if cmd == EVENT_CALLBACK and event_type(body) == "template_card_event":
        event = body["event"]
        # The wire nests the click under event.template_card_event (the official OpenClaw plugin
        # reads it there); the Node SDK's types put event_key / task_id on event itself.
        click = event.get("template_card_event")
        click = click if isinstance(click, dict) else event
        action, values = render.decode_key(str(click.get("event_key", "")))
        selected = _selected(click)
        card_type = str(click.get("card_type", ""))
        kind: Kind = (
            "form" if selected or card_type in ("multiple_interaction", "vote_interaction") else "action"
        )
        return Inbound(
            "wecom",
            bot_id,
            event_id,
            kind,
            user,
            chat,
            chat_type,
            action=action,
            values={**values, **selected},
            reply_handle=str(click.get("task_id", "")) or None,
            received_at=now,
        )
    return None


def new_task_id(seed: str) -> str:
    """A task_id no other card of this bot has ([0-9A-Za-z_-@], at most 128 bytes)."""
    return f"pl-{secrets.token_hex(6)}-{_clean_id(seed)}"[: render.TASK_ID_BYTES]


def _markdown(card: Card, limit: int) -> list[str]:
    return render.markdown_parts(card, limit, with_buttons=True)


def reply_body(card: Card, *, task_id: str, fallback_url: str) -> dict[str, Any]:
    """Pure: the ``aibot_respond_msg`` body for ``card``."""
    stream = {"id": task_id, "finish": True}
    try:
        tc, complete = render.template_card(
            card, task_id=task_id, fallback_url=fallback_url, limits=render.AIBOT
        )
    except render.WeComLimitError:
        return {"msgtype": "stream", "stream": {**stream, "content": _markdown(card, STREAM_BYTES)[0]}}
    if complete:
        return {"msgtype": "template_card", "template_card": tc}
    text = _markdown(card, STREAM_BYTES)[0]
    return {
        "msgtype": "stream_with_template_card",
        "stream": {**stream, "content": text},
        "template_card": tc,
    }


def update_body(card: Card, *, task_id: str, actor: str, fallback_url: str) -> dict[str, Any] | None:
    """Pure: the ``aibot_respond_update_msg`` body replacing the clicked card (same task_id) with
    ``card`` (a toast-only card becomes a notice titled with the toast); None when no template
    card can show it. The card always gets a card_action where a URL is known: a third-party
    report (tiann/hapi#553) says WeCom refuses update cards without one (errcode 42045)."""
    shown = card if (card.blocks or card.buttons or card.form or card.title) else Card(card.toast)
    try:
        tc, _ = render.template_card(shown, task_id=task_id, fallback_url=fallback_url, limits=render.AIBOT)
    except render.WeComLimitError:
        return None
    if "card_action" not in tc and fallback_url:
        tc = {**tc, "card_action": {"type": 1, "url": fallback_url}}
    return {"response_type": "update_template_card", "userids": [actor], "template_card": tc}


def push_bodies(card: Card, *, task_id: str, fallback_url: str) -> list[dict[str, Any]]:
    """Pure: what ``aibot_send_msg`` gets for ``card`` (without chatid): markdown with the full
    text when the card cannot hold it, then the template card; markdown only when no card fits."""
    try:
        tc, complete = render.template_card(
            card, task_id=task_id, fallback_url=fallback_url, limits=render.AIBOT
        )
    except render.WeComLimitError:
        return [
            {"msgtype": "markdown", "markdown": {"content": p}} for p in _markdown(card, PUSH_MARKDOWN_BYTES)
        ]
    out: list[dict[str, Any]] = []
    if not complete:
        parts = render.markdown_parts(card, PUSH_MARKDOWN_BYTES, with_buttons=False)
        out += [{"msgtype": "markdown", "markdown": {"content": p}} for p in parts]
    out.append({"msgtype": "template_card", "template_card": tc})
    return out


def reply_as_pushes(frame_cmd: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Pure: a reply that could not go out (the connection dropped, the 5 s window passed) as
    ``aibot_send_msg`` bodies for the same chat, so the person still gets it. A card gets a new
    task_id: task ids are unique per bot."""
    if frame_cmd == RESPOND_WELCOME:
        return []  # a welcome is only ever a welcome
    out: list[dict[str, Any]] = []
    stream = body.get("stream")
    if isinstance(stream, dict) and stream.get("content"):
        content = str(stream["content"])
        out += [
            {"msgtype": "markdown", "markdown": {"content": p}}
            for p in render.split_utf8(content, PUSH_MARKDOWN_BYTES)
        ]
    tc = body.get("template_card")
    if isinstance(tc, dict):
        out.append({"msgtype": "template_card", "template_card": {**tc, "task_id": new_task_id("resend")}})
    return out


class WeComAIBotPlatform(WeComPlatform):
    """One WeCom 智能机器人 on a long connection; the corp app (optional) pushes plain cards."""

    name = "wecom"

    def __init__(self, bot: BotConfig, deps: Deps):
        super().__init__(bot, deps)
        self.aibot_id = str(bot.get("bot_id", ""))
        self.has_app = bool(self.corp_id and self.agent_id and bot.secret("secret"))

    # ------------------------------------------------------------ inbound (over the connection)

    def parse(self, request: WebRequest, now: datetime) -> Inbound | WebResponse:
        return WebResponse(404, {"error": "this WeCom bot is on a long connection and takes no callbacks"})

    def parse_callback(self, cmd: str, body: Any, now: datetime) -> Inbound | None:
        return parse_callback(self.bot_id, cmd, body, now)

    def answer(self, inbound: Inbound, card: Card | None) -> tuple[WebResponse, bool]:
        """The reply frame (``{"cmd", "body"}``) the client sends with the callback's req_id once
        the transaction committed, and whether ``card`` must (also) go through the outbox."""
        if card is None:
            return NO_REPLY, False
        url = self.deps.public_url
        if inbound.kind == "text":
            body = reply_body(card, task_id=new_task_id(inbound.event_id), fallback_url=url)
            return WebResponse(200, {"cmd": RESPOND, "body": body}), False
        failed = card.theme == "red" or (card.form is not None and bool(card.form.error))
        if failed or not inbound.reply_handle:
            # The clicked card stays as it was (the person can try again); the error goes as a
            # new message.
            return NO_REPLY, True
        update = update_body(card, task_id=inbound.reply_handle, actor=inbound.actor, fallback_url=url)
        if update is None:
            return NO_REPLY, True
        _, complete = render.template_card(
            card if (card.blocks or card.buttons or card.form or card.title) else Card(card.toast),
            task_id=inbound.reply_handle,
            fallback_url=url,
            limits=render.AIBOT,
        )
        return WebResponse(200, {"cmd": RESPOND_UPDATE, "body": update}), not complete

    def ack_duplicate(self, inbound: Inbound) -> WebResponse:
        return NO_REPLY

    def welcome(self) -> dict[str, Any]:
        return {"cmd": RESPOND_WELCOME, "body": {"msgtype": "text", "text": {"content": WELCOME}}}

    # ------------------------------------------------------------ outbound (the outbox relay)

    def _via_app(self, message: Outbound) -> bool:
        card = message.card
        clickable = any(not b.url for b in card.buttons) or (
            card.form is not None and render._select_only(card.form)
        )
        return self.has_app and message.channel in ("user", "update") and not clickable

    def limits(self, message: Outbound) -> list[RateLimit]:
        if message.channel == "webhook":
            return super().limits(message)
        if self._via_app(message):
            return super().limits(Outbound(message.id, "user", message.target, message.card))
        who = f"wecom-aibot:{self.bot_id}:{message.target}"
        return [RateLimit(who, PUSH_PER_MINUTE, 60), RateLimit(who + ":h", PUSH_PER_HOUR, 3600)]

    def send(self, message: Outbound) -> SendResult:
        if message.channel == "webhook":
            return self._send_robot(message)
        if message.channel not in ("user", "chat", "update"):
            raise DeliveryError(f"WeCom has no channel {message.channel!r}", retry=False, code="channel")
        if self._via_app(message):
            # An update of an AI-bot card is only possible within 5 s of its click, on the
            # connection; later it becomes a new message.
            return self._send_user(Outbound(message.id, "user", message.target, message.card))
        client = live_client(self.bot_id)
        if client is None:
            raise DeliveryError(
                "the WeCom AI bot's connection is held by another worker (or is down); "
                "configure corp_id / agent_id / secret to push without it",
                retry=True,
                retry_after=15.0,
                code="no_connection",
            )
        parts = push_bodies(message.card, task_id=self._task_id(message), fallback_url=self.deps.public_url)
        self._each(message, parts, lambda p: client.push({"chatid": message.target, **p}))
        return SendResult()
