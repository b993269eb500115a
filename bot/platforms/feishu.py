"""Feishu / Lark: events and card callbacks in, cards out through the open API or a group robot.

Inbound (``POST /webhooks/feishu/<bot_id>``), in this order:
1. Signature, checked on the RAW body before anything is parsed: ``X-Lark-Signature`` =
   hex(SHA-256(timestamp + nonce + encrypt_key + body)) for events and the new card callback;
   the legacy message-card callback uses hex(SHA-1(timestamp + nonce + verification_token +
   body)). Constant-time compares; a timestamp more than an hour from our clock is refused
   (CONTRACT.md), a replay inside the hour is caught by the event-id dedupe.
2. ``{"encrypt": …}`` is opened with the Encrypt Key (AES-256-CBC, bot.platforms.crypto).
3. URL verification (``type == "url_verification"``) is unsigned by Feishu: the token is
   checked and the plaintext ``{"challenge"}`` answered, also when the request was encrypted.
4. v2 events (``schema == "2.0"``): ``header.token`` must equal the verification token;
   ``im.message.receive_v1`` (text and rich-text posts, @mentions stripped) and
   ``card.action.trigger`` (button ``value``, form ``form_value``, select ``option``) become an
   ``Inbound``; anything else is acknowledged and ignored. v1 events (``uuid``) carry the token
   in the body; ``message`` events are understood.

On the long connection (``connection = "stream"``, ``feishu_stream.py``) the same v2 events
arrive unsigned and in plain JSON over a connection opened with the App Secret:
``parse_stream`` takes them through the same parsers, and the client puts ``answer``'s body
into the response frame. In groups only a message that @-mentions the bot itself is a
command: its open_id is configured (``bot_open_id``) or learned from ``GET /open-apis/bot/v3/info``.

Without an Encrypt Key Feishu signs nothing that we could check (the key is the secret in
the signature), so only the verification token protects such a bot; configure both.

Outbound (``send``, called by the outbox relay): a tenant_access_token cached and refreshed
early under a lock (and once more on 99991663/99991661); cards to a chat (``chat_id``) or a
person (``open_id``) with ``content`` as a JSON *string* and ``uuid`` = the outbox id (Feishu
drops a second send with the same uuid, so a relay retry after a lost answer is harmless);
card updates by message id (PATCH) or by a callback token; a team's custom group robot
(signed; ``card`` as an *object*). Every failure is a ``DeliveryError`` that says retry or give
up and carries Feishu's code and message. ``api_base`` = https://open.larksuite.com makes it Lark.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import requests

from bot.config import BotConfig
from bot.platforms.base import (
    OUTCOME_UNKNOWN,
    BadRequest,
    DeliveryError,
    Outbound,
    RateLimit,
    SendResult,
    SignatureError,
    WebRequest,
    WebResponse,
    guard_error,
    parse_json,
    webhook_http,
)
from bot.platforms.crypto import feishu_decrypt
from bot.platforms.tokens import TokenCache
from cards.model import Card, Markdown
from cards.render import feishu as render_feishu
from handlers.inbound import ChatType, Inbound, Kind
from sources import jsonlimits, netguard

if TYPE_CHECKING:
    from bot.platforms.base import Deps

log = logging.getLogger("planloop.feishu")

# --- limits and windows ---------------------------------------------------------------------
WINDOW_SECONDS = 3600  # CONTRACT.md: a signed timestamp more than one hour from our clock -> 401
MAX_BODY = 256 * 1024  # a Feishu event is a few KB; a text message may be up to 150 KB of content
MAX_TEXT = 8000  # characters of one chat message we hand to the router
MAX_VALUE = 4000  # characters of one card value / form field
TOKEN_REFRESH_MARGIN = timedelta(minutes=30)  # Feishu hands out a new token in the last 30 min
HTTP_TIMEOUT = (3.05, 10.0)  # connect, read (seconds)
OWN_ID_RETRY = timedelta(minutes=1)  # how soon to ask for the bot's own open_id again after a failure

HDR_TIMESTAMP = "X-Lark-Request-Timestamp"
HDR_NONCE = "X-Lark-Request-Nonce"
HDR_SIGNATURE = "X-Lark-Signature"
HDR_RATELIMIT_RESET = "x-ogw-ratelimit-reset"
HDR_LOGID = "X-Tt-Logid"

# Feishu codes (PROTOCOLS.md §1.3): retry later vs give up.
TOKEN_INVALID = {99991663, 99991661, 99991668}  # invalid/expired, missing, (user token) invalid
# 99991400: app/tenant throttled (HTTP 429, wait x-ogw-ratelimit-reset); 11232: a custom robot's
# 5/s-100/min limit; 230020: the per-chat limit of the send API.
RATE_LIMITED = {99991400, 11232, 230020}
# A robot's 11232 comes without a reset header: pause the robot (for every worker, through the
# relay's shared buckets) until its longer window, one minute, has surely passed.
ROBOT_REFUSAL_PAUSE = 60.0


# --- pure verifiers and their sign_ twins ---------------------------------------------------


def sign_event(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """X-Lark-Signature of a v2 event or card.action.trigger callback (over the raw body bytes)."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode("utf-8") + body).hexdigest()


def sign_legacy_card(timestamp: str, nonce: str, verification_token: str, body: bytes) -> str:
    """X-Lark-Signature of the legacy message-card callback (card.action.trigger_v1)."""
    return hashlib.sha1((timestamp + nonce + verification_token).encode("utf-8") + body).hexdigest()  # noqa: S324


def sign_webhook(timestamp: str, secret: str) -> str:
    """A custom group robot's ``sign``: base64(HMAC-SHA256(key=f"{ts}\\n{secret}", msg=b""))."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _same(expected: str, got: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), got.encode("utf-8"))


def check_timestamp(timestamp: str, now: datetime, window: int = WINDOW_SECONDS) -> None:
    """Refuse a signed timestamp (unix seconds) more than ``window`` seconds from ``now``."""
    try:
        ts = int(timestamp.strip())
    except ValueError:
        raise SignatureError("X-Lark-Request-Timestamp is not a unix timestamp") from None
    skew = abs(now.timestamp() - ts)
    if skew > window:
        raise SignatureError(f"timestamp is {skew:.0f} s from the server clock (limit {window} s)")


def verify_token(expected: str, got: Any) -> None:
    """The verification token from the payload (v2 ``header.token``, v1/handshake ``token``)."""
    if not isinstance(got, str) or not got or not _same(expected, got):
        raise SignatureError("verification token does not match")


def verify_signature(
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    *,
    encrypt_key: str,
    verification_token: str,
) -> str | None:
    """Check X-Lark-Signature; return which scheme matched ("event" or "card"), or None.

    None means "nothing to check": no signature header, or a bot without an Encrypt Key
    whose v2 signature has no secret in it (the caller then insists on the token).
    """
    signature = headers.get(HDR_SIGNATURE)
    if not signature:
        return None
    timestamp, nonce = headers.get(HDR_TIMESTAMP), headers.get(HDR_NONCE)
    if timestamp is None or nonce is None:
        raise SignatureError("X-Lark-Signature without X-Lark-Request-Timestamp / -Nonce")
    check_timestamp(timestamp, now)
    if encrypt_key and _same(sign_event(timestamp, nonce, encrypt_key, body), signature):
        return "event"
    if verification_token and _same(sign_legacy_card(timestamp, nonce, verification_token, body), signature):
        return "card"
    if encrypt_key:
        raise SignatureError("X-Lark-Signature does not match")
    return None


# --- payload helpers ------------------------------------------------------------------------


def _json_object(raw: bytes | str, what: str) -> dict[str, Any]:
    data = parse_json(raw, what)
    if not isinstance(data, dict):
        raise BadRequest(f"{what} is not a JSON object")
    return data


def _obj(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"{key!r} is not an object")
    return value


def _str(data: Mapping[str, Any], key: str, what: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{what or key} is missing")
    return value


def _flat(value: Any) -> str:
    """A form/callback value as the string handlers get: lists joined, booleans spelled out."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list):
        text = ",".join(_flat(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    if len(text) > MAX_VALUE:
        raise BadRequest(f"a card value is longer than {MAX_VALUE} characters")
    return text


def message_text(message_type: str, content: str, mention_keys: list[str]) -> str | None:
    """The text of a received message with @mention placeholders removed; None if not text."""
    body = parse_json(content, "message content")
    if not isinstance(body, dict):
        raise BadRequest("message content is not a JSON object")
    if message_type == "text":
        text = body.get("text")
        if not isinstance(text, str):
            raise BadRequest("text message without text")
    elif message_type == "post":
        post = body if "content" in body else next((v for v in body.values() if isinstance(v, dict)), {})
        paragraphs = post.get("content") or []
        if not isinstance(paragraphs, list):
            raise BadRequest("post message content is not a list of paragraphs")
        lines = []
        for paragraph in paragraphs:
            if isinstance(paragraph, list):
                lines.append(
                    "".join(
                        str(el.get("text", ""))
                        for el in paragraph
                        if isinstance(el, dict) and el.get("tag") in ("text", "a")
                    )
                )
        text = "\n".join(lines)
    else:
        return None
    for key in sorted(mention_keys, key=len, reverse=True):  # "@_user_10" before "@_user_1"
        text = text.replace(key, "")
    text = text.replace("@_all", "")
    return "\n".join(line.strip() for line in text.strip().splitlines())


# --- the adapter ----------------------------------------------------------------------------


class FeishuPlatform:
    """One Feishu (or Lark) app bot."""

    name = "feishu"

    def __init__(self, bot: BotConfig, deps: Deps):
        self.bot = bot
        self.bot_id = bot.id
        self.deps = deps
        self.app_id = str(bot.get("app_id", ""))
        self.api_base = str(bot.get("api_base") or "https://open.feishu.cn").rstrip("/")
        # The bot's own open_id, for the exact @bot check in groups: configured, or learned from
        # GET /open-apis/bot/v3/info on first need (``own_open_id``).
        self.bot_open_id = str(bot.get("bot_open_id", ""))
        self._own_lock = threading.Lock()
        self._own_failed_at: datetime | None = None
        self._app_secret = bot.secret("app_secret")
        self._encrypt_key = bot.secret("encrypt_key")
        self._verification_token = bot.secret("verification_token")
        self._tokens = TokenCache(self._fetch_token, deps.clock, TOKEN_REFRESH_MARGIN)

    # --- inbound ----------------------------------------------------------------------------

    def parse(self, request: WebRequest, now: datetime) -> Inbound | WebResponse:
        if request.method != "POST":
            raise BadRequest("Feishu sends events with POST")
        if len(request.body) > MAX_BODY:
            raise BadRequest(f"body larger than {MAX_BODY} bytes")
        signed = verify_signature(
            request.headers,
            request.body,
            now,
            encrypt_key=self._encrypt_key,
            verification_token=self._verification_token,
        )
        outer = _json_object(request.body, "body")
        encrypted = "encrypt" in outer
        if encrypted:
            if not self._encrypt_key:
                raise BadRequest("encrypted event, but this bot has no encrypt_key configured")
            sealed = outer["encrypt"]
            if not isinstance(sealed, str):
                raise BadRequest('"encrypt" is not a string')
            payload = _json_object(feishu_decrypt(self._encrypt_key, sealed), "decrypted body")
        else:
            payload = outer

        if payload.get("type") == "url_verification":
            return self._url_verification(payload, encrypted)

        if payload.get("schema") is not None:
            self._require(signed, "event", payload.get("header"))
            return self._v2(payload, now)
        if payload.get("uuid") is not None:
            self._require(signed, "event", payload)
            return self._v1(payload, now)
        if isinstance(payload.get("action"), dict) and payload.get("open_message_id"):
            if signed != "card":
                raise SignatureError("legacy card callback without a valid SHA-1 signature")
            return self._legacy_card(payload, now)
        raise BadRequest("not a Feishu event (no schema, uuid or card action)")

    def parse_stream(self, payload: bytes, now: datetime) -> Inbound | WebResponse:
        """One event or callback from the long connection (``feishu_stream``): the same v2 (or v1)
        schema as a webhook, but in plain JSON and unsigned: the connection was authenticated
        with the App Secret when it opened [DOC 使用长连接接收事件; SRC lark_oapi/ws/client.py
        hands the payload to ``_do_without_validation``]."""
        if len(payload) > MAX_BODY:
            raise BadRequest(f"payload larger than {MAX_BODY} bytes")
        data = _json_object(payload, "payload")
        if data.get("schema") is not None:
            return self._v2(data, now)
        if data.get("uuid") is not None:
            return self._v1(data, now)
        raise BadRequest("not a Feishu event (no schema or uuid)")

    def _require(self, signed: str | None, scheme: str, token_holder: Any) -> None:
        """Events need the SHA-256 signature when we hold an Encrypt Key, and the token always
        when one is configured; a bot with neither is refused rather than left open."""
        if signed == "card":
            raise SignatureError("an event signed with the legacy card scheme")
        if self._encrypt_key and signed != scheme:
            raise SignatureError("unsigned event (X-Lark-Signature missing)")
        if token_holder is not None and not isinstance(token_holder, Mapping):
            raise BadRequest("the event header is not an object")
        if self._verification_token:
            verify_token(self._verification_token, (token_holder or {}).get("token"))
        elif not self._encrypt_key:
            raise SignatureError(f"bot {self.bot_id} has neither encrypt_key nor verification_token")

    def _url_verification(self, payload: Mapping[str, Any], encrypted: bool) -> WebResponse:
        if self._verification_token:
            verify_token(self._verification_token, payload.get("token"))
        elif not encrypted:  # opening it with our key is the only other proof we can have
            raise SignatureError(f"bot {self.bot_id} has no verification_token to check the handshake")
        challenge = payload.get("challenge")
        if not isinstance(challenge, str):
            raise BadRequest("url_verification without a challenge")
        return WebResponse(200, {"challenge": challenge})

    def _v2(self, payload: Mapping[str, Any], now: datetime) -> Inbound | WebResponse:
        header = _obj(payload, "header")
        event = _obj(payload, "event")
        event_id = _str(header, "event_id", "header.event_id")
        event_type = header.get("event_type")
        if event_type == "im.message.receive_v1":
            return self._message_v2(event, event_id, now)
        if event_type == "card.action.trigger":
            return self._card_action(event, event_id, now)
        return WebResponse(200, {"msg": "success"})  # subscribed but not ours to act on

    def _message_v2(self, event: Mapping[str, Any], event_id: str, now: datetime) -> Inbound | WebResponse:
        sender = _obj(event, "sender")
        if sender.get("sender_type", "user") != "user":
            return WebResponse(200, {"msg": "success"})  # another bot or the app itself
        actor = _str(_obj(sender, "sender_id"), "open_id", "event.sender.sender_id.open_id")
        message = _obj(event, "message")
        chat_id = _str(message, "chat_id", "event.message.chat_id")
        mentions = [m for m in message.get("mentions") or [] if isinstance(m, dict)]
        group = message.get("chat_type") != "p2p"
        if group and not self._mentions_bot(mentions):
            return WebResponse(200, {"msg": "success"})  # group chatter not addressed to the bot
        text = message_text(
            str(message.get("message_type", "")),
            _str(message, "content", "event.message.content"),
            [str(m.get("key", "")) for m in mentions if m.get("key")],
        )
        if text is None:
            return WebResponse(200, {"msg": "success"})  # images, files, stickers: nothing to do
        return self._text_inbound(event_id, actor, chat_id, group, text, message.get("message_id"), now)

    def _mentions_bot(self, mentions: list[dict[str, Any]]) -> bool:
        if not mentions:
            return False
        own = self.own_open_id()
        if not own:
            # Not known (bot info unreachable): without the group-messages permission Feishu
            # only sends group messages that @ the bot, so any mention is the best guess.
            return True
        return any(_obj(m, "id").get("open_id") == own for m in mentions)

    def own_open_id(self) -> str:
        """The bot's open_id: configured as ``bot_open_id`` or fetched once from
        ``GET /open-apis/bot/v3/info`` (``{"code":0,"bot":{"open_id":…}}``, tenant token, no
        permission needed [DOC 获取机器人信息]). A failure is logged and retried at most every
        ``OWN_ID_RETRY``; meanwhile "" (unknown)."""
        if self.bot_open_id:
            return self.bot_open_id
        with self._own_lock:
            if self.bot_open_id:
                return self.bot_open_id
            now = self.deps.clock()
            if self._own_failed_at is not None and now - self._own_failed_at < OWN_ID_RETRY:
                return ""
            try:
                data = self._call("GET", "/open-apis/bot/v3/info", None, what="bot info")
                bot = data.get("bot")
                open_id = bot.get("open_id") if isinstance(bot, dict) else None
                if not isinstance(open_id, str) or not open_id:
                    raise DeliveryError("feishu bot info: no bot.open_id in the answer", retry=True)
            except DeliveryError as exc:
                self._own_failed_at = now
                log.warning(
                    "bot %s: cannot learn its own open_id (%s); any @mention in a group counts as "
                    "addressed to it until then (or set bot_open_id in the config)",
                    self.bot_id,
                    exc,
                )
                return ""
            self.bot_open_id = open_id
            log.info("bot %s: its own open_id is %s", self.bot_id, open_id)
            return open_id

    def _text_inbound(
        self,
        event_id: str,
        actor: str,
        chat_id: str,
        group: bool,
        text: str,
        message_id: Any,
        now: datetime,
    ) -> Inbound:
        if len(text) > MAX_TEXT:
            raise BadRequest(f"message is longer than {MAX_TEXT} characters")
        chat_type: ChatType = "group" if group else "dm"
        return Inbound(
            platform=self.name,
            bot_id=self.bot_id,
            event_id=event_id,
            kind="text",
            actor=actor,
            chat=chat_id if group else actor,
            chat_type=chat_type,
            text=text,
            reply_handle=message_id if isinstance(message_id, str) else None,
            received_at=now,
        )

    def _v1(self, payload: Mapping[str, Any], now: datetime) -> Inbound | WebResponse:
        event_id = _str(payload, "uuid")
        event = _obj(payload, "event")
        if event.get("type") != "message" or event.get("msg_type") != "text":
            return WebResponse(200, {"msg": "success"})
        actor = _str(event, "open_id", "event.open_id")
        group = event.get("chat_type") != "private"
        raw = event.get("text_without_at_bot", event.get("text", ""))
        text = "\n".join(line.strip() for line in str(raw).strip().splitlines())
        chat_id = str(event.get("open_chat_id") or actor)
        return self._text_inbound(
            f"v1:{event_id}", actor, chat_id, group, text, event.get("open_message_id"), now
        )

    def _card_action(self, event: Mapping[str, Any], event_id: str, now: datetime) -> Inbound:
        operator = _obj(event, "operator")
        actor = _str(operator, "open_id", "event.operator.open_id")
        context = _obj(event, "context")
        handle = context.get("open_message_id") or (f"token:{event['token']}" if event.get("token") else None)
        return self._action_inbound(event_id, actor, _obj(event, "action"), handle, now)

    def _legacy_card(self, payload: Mapping[str, Any], now: datetime) -> Inbound:
        actor = _str(payload, "open_id")
        # No event id in the legacy callback: its update token is unique per click, and a retry
        # of the same click carries the same one.
        digest = hashlib.sha256(
            f"{payload.get('token', '')}|{payload.get('open_message_id', '')}|{actor}".encode()
        ).hexdigest()[:32]
        return self._action_inbound(
            f"legacy:{digest}", actor, _obj(payload, "action"), payload.get("open_message_id"), now
        )

    def _action_inbound(
        self, event_id: str, actor: str, action: Mapping[str, Any], handle: Any, now: datetime
    ) -> Inbound:
        value = action.get("value")
        if isinstance(value, str):  # a 1.0 card may carry a JSON string
            value = _json_object(value, "action.value") if value.strip().startswith("{") else {}
        if not isinstance(value, dict) or not isinstance(value.get("action"), str) or not value["action"]:
            raise BadRequest("card action without an action id (not a planloop card?)")
        values = {str(k): _flat(v) for k, v in value.items() if k != "action"}
        kind: Kind = "action"
        form_value = action.get("form_value")
        if isinstance(form_value, dict) and form_value:
            kind = "form"
            values.update({str(k): _flat(v) for k, v in form_value.items()})
        if action.get("option") is not None:  # a standalone select
            values["option"] = _flat(action["option"])
            if isinstance(action.get("name"), str) and action["name"]:
                values[action["name"]] = values["option"]
        if action.get("input_value") is not None and isinstance(action.get("name"), str):
            values[action["name"]] = _flat(action["input_value"])
        return Inbound(
            platform=self.name,
            bot_id=self.bot_id,
            event_id=event_id,
            kind=kind,
            actor=actor,
            # The callback does not say whether the card sits in a group or a 1:1 chat; the
            # person who clicked is who a follow-up message is for, so it goes to their DM.
            chat=actor,
            chat_type="dm",
            action=value["action"],
            values=values,
            reply_handle=handle if isinstance(handle, str) else None,
            received_at=now,
        )

    # --- the synchronous answer -------------------------------------------------------------

    def answer(self, inbound: Inbound, card: Card | None) -> tuple[WebResponse, bool]:
        """Text messages: acknowledge, the card goes out through the API (via_outbox).

        Card callbacks are answered inside Feishu's 3-second reply: ``{"toast", "card": {"type":
        "raw", "data": …}}`` replaces the clicked card for everyone in the chat. A FORM submit
        is also delivered as a new message through the outbox: the replaced card is a shared
        card that a later edit overwrites, while the receipt message is the person's own
        durable record (and the notification on their phone). An error answer (red card
        without a form) to a form submit keeps the form in place, so nothing typed is lost:
        a toast says what went wrong and the full error card comes as a message.
        """
        if inbound.kind == "text":
            return WebResponse(200, {"msg": "success"}), card is not None
        if card is None:
            return WebResponse(200, {}), False
        toast = {"type": _toast_type(card), "content": card.toast or card.title}
        if inbound.kind == "form" and card.theme == "red" and card.form is None:
            toast["content"] = card.toast or _first_text(card) or card.title
            return WebResponse(200, {"toast": toast}), True
        try:
            data = render_feishu.render(card)
        except render_feishu.RenderError as exc:
            log.error("card for %s cannot be shown on Feishu: %s", inbound.event_id, exc)
            return WebResponse(
                200, {"toast": {"type": "error", "content": "卡片内容过长或有误，请联系管理员"}}
            ), False
        if inbound.event_id.startswith("legacy:"):
            # The legacy callback takes the new card itself as the answer [?: not documented for
            # JSON 2.0 cards; planloop never sends 1.0 cards, so this path only serves old ones].
            return WebResponse(200, data), inbound.kind == "form"
        return WebResponse(
            200, {"toast": toast, "card": {"type": "raw", "data": data}}
        ), inbound.kind == "form"

    def ack_duplicate(self, inbound: Inbound) -> WebResponse:
        if inbound.kind == "text":
            return WebResponse(200, {"msg": "success"})
        return WebResponse(200, {"toast": {"type": "info", "content": "已处理"}})

    # --- outbound ---------------------------------------------------------------------------

    def repeats_dropped(self, message: Outbound) -> bool:
        """The API drops a repeat of the same ``uuid`` (the outbox id); a custom robot does not."""
        return message.channel != "webhook"

    def limits(self, message: Outbound) -> list[RateLimit]:
        """Custom robot: 5/s and 100/min per robot. App: 50/s and 1000/min for the send API, and
        5/s to one person or one group (shared by the bots in it)."""
        if message.channel == "webhook":
            key = f"feishu:robot:{_fingerprint(message.extra.get('url', message.target))}"
            # windows a little longer than Feishu's: it counts arrivals, which come a moment after
            # the token was taken (bench/relay_scale.py saw an 11232 with exactly 1 s)
            return [RateLimit(key, 5, 1.2), RateLimit(key, 100, 61.0)]
        app = f"feishu:app:{self.app_id or self.bot_id}"
        limits = [RateLimit(app, 50, 1.0), RateLimit(app, 1000, 60.0)]
        if message.channel in ("chat", "user"):
            limits.append(RateLimit(f"feishu:{message.channel}:{message.target}", 5, 1.0))
        return limits

    def send(self, message: Outbound) -> SendResult:
        if message.channel == "webhook":
            return self._send_webhook(message)
        try:
            card = render_feishu.render(message.card)
        except render_feishu.RenderError as exc:
            raise DeliveryError(
                f"card cannot be rendered for Feishu: {exc}", retry=False, code="render"
            ) from None
        if message.channel in ("chat", "user"):
            id_type = "chat_id" if message.channel == "chat" else "open_id"
            data = self._call(
                "POST",
                f"/open-apis/im/v1/messages?receive_id_type={id_type}",
                {
                    "receive_id": message.target,
                    "msg_type": "interactive",
                    "content": render_feishu.api_content(card),
                    "uuid": _uuid(message.id),
                },
                what="send",
            )
            message_id = str((data.get("data") or {}).get("message_id", ""))
            return SendResult(platform_message_id=message_id, reply_handle=message_id or None)
        if message.channel == "update":
            handle = message.reply_handle or message.target
            if not handle:
                raise DeliveryError(
                    "update without a message id or callback token", retry=False, code="target"
                )
            if handle.startswith("token:"):
                self._call(
                    "POST",
                    "/open-apis/interactive/v1/card/update",
                    {"token": handle[len("token:") :], "card": card},
                    what="update",
                )
            else:
                self._call(
                    "PATCH",
                    f"/open-apis/im/v1/messages/{handle}",
                    {"content": render_feishu.api_content(card)},
                    what="update",
                )
            return SendResult(platform_message_id=handle, reply_handle=handle)
        raise DeliveryError(f"unknown channel {message.channel!r}", retry=False, code="channel")

    def _send_webhook(self, message: Outbound) -> SendResult:
        url = message.extra.get("url", "")
        if not url.startswith(("https://", "http://")):
            raise DeliveryError("the team's group robot has no URL configured", retry=False, code="config")
        try:
            card = render_feishu.render(message.card, interactive=False)
        except render_feishu.RenderError as exc:
            raise DeliveryError(
                f"card cannot be rendered for Feishu: {exc}", retry=False, code="render"
            ) from None
        body: dict[str, Any] = {"msg_type": "interactive", "card": card}
        secret = message.extra.get("secret", "")
        if secret:
            ts = str(int(self.deps.clock().timestamp()))
            body = {"timestamp": ts, "sign": sign_webhook(ts, secret), **body}
        # a custom robot has no idempotency key: an unanswered post may be in the group already
        resp = self._http(
            "POST", url, body, headers={}, what="group robot", http=webhook_http(message), unprotected=True
        )
        data = _response_json(resp)
        code = _code(data)
        if resp.status_code == 200 and code == 0:
            return SendResult()
        raise _classify(resp, data, code, "group robot")

    # --- HTTP plumbing ----------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None, *, what: str) -> dict[str, Any]:
        """One authorised open-API call; on an invalid token, refresh once and try again."""
        token = self._tokens.get()
        for attempt in (1, 2):
            resp = self._http(
                method, self.api_base + path, body, headers={"Authorization": f"Bearer {token}"}, what=what
            )
            data = _response_json(resp)
            code = _code(data)
            if resp.status_code < 400 and code == 0:
                return data
            if code in TOKEN_INVALID and attempt == 1:
                token = self._tokens.get(stale=token)
                continue
            raise _classify(resp, data, code, what)
        raise AssertionError("unreachable")  # pragma: no cover

    def _http(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None,
        *,
        headers: dict[str, str],
        what: str,
        http: requests.Session | None = None,
        unprotected: bool = False,
    ) -> requests.Response:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        if data is not None:
            headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        try:
            return (http or self.deps.http).request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=HTTP_TIMEOUT,
            )
        except (netguard.UrlRefused, netguard.UnresolvedHost) as exc:
            raise guard_error(exc, f"feishu {what}") from None
        except requests.ReadTimeout:
            if unprotected:
                raise DeliveryError(
                    f"feishu {what}: sent, no answer in time", retry=False, code=OUTCOME_UNKNOWN
                ) from None
            raise DeliveryError(f"feishu {what}: timed out", retry=True, code="timeout") from None
        except requests.Timeout:
            raise DeliveryError(f"feishu {what}: timed out", retry=True, code="timeout") from None
        except requests.RequestException as exc:
            raise DeliveryError(
                f"feishu {what}: connection failed ({type(exc).__name__})", retry=True, code="connection"
            ) from None

    def access_token(self, stale: str | None = None) -> str:
        """The cached tenant_access_token, fetched again when ``stale`` (one Feishu just refused) is
        still the cached one; the console's directory pull uses it too."""
        return self._tokens.get(stale)

    def _fetch_token(self) -> tuple[str, float]:
        if not self.app_id or not self._app_secret:
            raise DeliveryError(
                f"bot {self.bot_id}: app_id/app_secret not configured", retry=False, code="config"
            )
        resp = self._http(
            "POST",
            self.api_base + "/open-apis/auth/v3/tenant_access_token/internal",
            {"app_id": self.app_id, "app_secret": self._app_secret},
            headers={},
            what="tenant_access_token",
        )
        data = _response_json(resp)
        code = _code(data)
        token = data.get("tenant_access_token")
        if resp.status_code < 400 and code == 0 and isinstance(token, str) and token:
            try:
                expire = int(data.get("expire", 7200))
            except (TypeError, ValueError):
                expire = 7200
            return token, expire
        raise _classify(resp, data, code, "tenant_access_token")


# --- response classification ------------------------------------------------------------------


def _response_json(resp: requests.Response) -> dict[str, Any]:
    try:
        data = jsonlimits.loads(resp.content)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _code(data: Mapping[str, Any]) -> int | None:
    raw = data.get("code", data.get("StatusCode"))
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _retry_after(resp: requests.Response) -> float | None:
    raw = resp.headers.get(HDR_RATELIMIT_RESET) or resp.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def _classify(resp: requests.Response, data: Mapping[str, Any], code: int | None, what: str) -> DeliveryError:
    """Retry later (throttled, server trouble) or give up (a request Feishu will never accept)."""
    msg = str(data.get("msg", data.get("StatusMessage", "")) or resp.reason or "")
    logid = resp.headers.get(HDR_LOGID, "")
    text = f"feishu {what}: HTTP {resp.status_code} code={code} msg={msg}" + (
        f" log_id={logid}" if logid else ""
    )
    shown_code = str(code) if code is not None else f"http{resp.status_code}"
    if resp.status_code == 429 or code in RATE_LIMITED:
        pause = _retry_after(resp) or (ROBOT_REFUSAL_PAUSE if code == 11232 else None)
        return DeliveryError(text, retry=True, retry_after=pause, code=shown_code)
    if resp.status_code >= 500 or code in TOKEN_INVALID:
        return DeliveryError(text, retry=True, retry_after=_retry_after(resp), code=shown_code)
    if code is None and resp.status_code < 400:
        return DeliveryError(text + " (no JSON answer)", retry=True, code=shown_code)
    return DeliveryError(text, retry=False, code=shown_code)


def _toast_type(card: Card) -> str:
    return {"red": "error", "orange": "warning", "green": "success"}.get(card.theme, "info")


def _first_text(card: Card) -> str:
    for block in card.blocks:
        if isinstance(block, Markdown):
            return block.text.replace("**", "")[:120]
    return ""


def _fingerprint(secret_ish: str) -> str:
    """A stable key for a secret-bearing URL that does not reveal it in logs or metrics."""
    return hashlib.sha256(secret_ish.encode()).hexdigest()[:16]


def _uuid(outbox_id: str) -> str:
    """im/v1 ``uuid`` (idempotency key, at most 50 characters): the outbox id, hashed if longer."""
    return outbox_id if len(outbox_id) <= 50 else hashlib.sha256(outbox_id.encode()).hexdigest()[:50]
