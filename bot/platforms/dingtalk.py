"""DingTalk (钉钉): the encrypted event subscription, robot messages, cards and every send path.

Inbound over HTTP, three URLs (CONTRACT.md):
- ``POST /webhooks/dingtalk/<bot>``: the HTTP event subscription. Query ``signature``/
  ``timestamp``/``nonce`` (legacy ``msg_signature``/``timeStamp``), body ``{"encrypt"}``,
  the WeCom envelope with the app key as trailing id. Every answer, ``check_url``
  included, is ``{"msg_signature","timeStamp","nonce","encrypt": Enc("success")}``
  within 1.5 s. No event planloop uses arrives here: DingTalk never sends card clicks
  through the event subscription.
- ``POST /webhooks/dingtalk/<bot>/robot``: robot messages with ``timestamp``/``sign``
  headers (HMAC-SHA256 keyed by the app secret); text commands, group (@bot) and 1:1.
- ``POST /webhooks/dingtalk/<bot>/card``: card clicks (互动卡片 事件回调, HTTP mode), plain JSON
  ``{"type":"actionCallback","outTrackId","corpId","userId","content":"<JSON string>"}`` to the
  URL registered with ``POST /v1.0/card/callbacks/register`` under ``card_callback_route_key``,
  signed with headers ``x-ddpaas-signature-timestamp`` (ms) and ``x-ddpaas-signature`` =
  Base64(HMAC-SHA256(key=apiSecret, msg=timestamp)); ``card_callback_secret`` is that apiSecret.
  The answer (within 2 s) carries the card update: ``cardData`` / ``cardUpdateOptions``.

Over a Stream connection (``connection = "stream"``, ``bot/platforms/dingtalk_stream.py``) the
same robot message and card callback JSON arrive as frames and go through the same parsers
(``robot_inbound``, ``card_inbound``); the card update travels back in the frame's ack.

Outbound (``send``): the app robot API (group and 1:1 markdown/ActionCard), the card
platform (``createAndDeliver`` and ``PUT /v1.0/card/instances``) for cards whose buttons
call back, the message's ``sessionWebhook`` while it is valid, and a team's custom
group robot (``webhook`` channel, signed URL). Facts: shared/PROTOCOLS.md §3 and DingTalk's
互动卡片 事件回调 page (HTTP and Stream modes, the ``x-ddpaas-*`` signature, the 2 s answer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

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
from bot.platforms.crypto import WxEnvelope
from bot.platforms.tokens import TokenCache
from cards.model import Card
from cards.render import dingtalk as render
from handlers.inbound import ChatType, Inbound, Kind
from sources import jsonlimits, netguard
from storage import replay

if TYPE_CHECKING:
    from bot.platforms.base import Deps

log = logging.getLogger("planloop.dingtalk")

WINDOW = timedelta(hours=1)  # signed timestamps further from our clock are refused (CONTRACT.md)
MAX_BODY = 64 * 1024  # a DingTalk event or robot message is a few KB
MAX_TEXT = 4000  # characters of one message or one card value
TOKEN_EARLY = timedelta(minutes=10)  # refresh the access token this long before it expires
SESSION_MARGIN = timedelta(minutes=2)  # do not start a send on a session webhook about to expire
THROTTLE = 600.0  # 130101: the custom robot is blocked for ten minutes
ROBOT_PER_MINUTE = 20  # custom robot: 20 messages a minute, then the ten-minute block
ROBOT_WINDOW = 64.0  # our window for 19 of them: 4 s of room for a send's arrival to lag its token
APP_QPS = 20  # app APIs: about 20 QPS per app per API, then 403 QpsLimit / 90018

_LEADING_MENTIONS = re.compile(r"^\s*(?:@\S+\s+)*")


# ---------------------------------------------------------------- pure verifiers and twins


def parse_timestamp(raw: str) -> datetime:
    """A signed timestamp: milliseconds (DingTalk's unit), or seconds for small values."""
    if not raw or not raw.isdigit() or len(raw) > 16:
        raise SignatureError("timestamp is missing or not a number")
    value = int(raw)
    seconds = value / 1000 if value >= 100_000_000_000 else float(value)
    return datetime.fromtimestamp(seconds, UTC)


def check_window(raw_timestamp: str, now: datetime) -> None:
    at = parse_timestamp(raw_timestamp)
    if abs(now - at) > WINDOW:
        raise SignatureError("timestamp is more than one hour from the server clock")


def sign_robot(app_secret: str, timestamp_ms: str) -> str:
    """base64(HMAC-SHA256(key=secret, msg=f"{ts}\\n{secret}")): the robot callback's ``sign``
    header, and (URL-encoded) a custom robot's ``sign`` query value."""
    mac = hmac.new(app_secret.encode(), f"{timestamp_ms}\n{app_secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def verify_robot(app_secret: str, timestamp: str, sign: str, now: datetime) -> None:
    """Check a robot callback's ``timestamp``/``sign`` headers; raise SignatureError."""
    if not timestamp or not sign:
        raise SignatureError("missing timestamp/sign headers")
    expected = sign_robot(app_secret, timestamp)
    if not hmac.compare_digest(expected.encode(), sign.encode()):
        raise SignatureError("robot sign does not match")
    check_window(timestamp, now)


def sign_card_callback(api_secret: str, timestamp_ms: str) -> str:
    """Base64(HMAC-SHA256(key=apiSecret, msg=timestamp)): a card callback's ``x-ddpaas-signature``."""
    mac = hmac.new(api_secret.encode(), timestamp_ms.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def verify_card_callback(api_secret: str, timestamp: str, signature: str, now: datetime) -> None:
    """Check an HTTP card callback's ``x-ddpaas-signature(-timestamp)`` headers; raise SignatureError."""
    if not timestamp or not signature:
        raise SignatureError("missing x-ddpaas-signature-timestamp / x-ddpaas-signature headers")
    expected = sign_card_callback(api_secret, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SignatureError("card callback signature does not match")
    check_window(timestamp, now)


def card_update(card: Card) -> dict[str, Any]:
    """The answer to a card callback that replaces the clicked card's data with ``card``."""
    return {
        "cardData": {"cardParamMap": render.card_params(card)},
        "cardUpdateOptions": {"updateCardDataByKey": False, "updatePrivateDataByKey": False},
    }


def sign_custom_robot_url(url: str, secret: str, timestamp_ms: str) -> str:
    """A custom robot URL with ``timestamp`` and the URL-encoded ``sign`` added to its query.

    Only secrets starting with ``SEC`` are signing secrets (the robot's 加签 setting);
    anything else (keyword or IP security) is sent unsigned, as dingtalkchatbot does.
    """
    if not secret.startswith("SEC"):
        return url
    parts = urlsplit(url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("timestamp", "sign")
    ]
    extra = f"timestamp={timestamp_ms}&sign={quote_plus(sign_robot(secret, timestamp_ms))}"
    joined = (urlencode(query) + "&" if query else "") + extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))


def verify_event(
    envelope: WxEnvelope, signature: str, timestamp: str, nonce: str, encrypt: str, now: datetime
) -> None:
    """The event subscription's SHA-1 signature and the one-hour window; raise SignatureError."""
    if not signature or not timestamp or not nonce:
        raise SignatureError("missing signature/timestamp/nonce query parameters")
    envelope.verify(signature, timestamp, nonce, encrypt)
    check_window(timestamp, now)


def sign_event(envelope: WxEnvelope, timestamp: str, nonce: str, encrypt: str) -> str:
    return envelope.sign(timestamp, nonce, encrypt)


def success_reply(envelope: WxEnvelope, now: datetime, nonce: str | None = None) -> dict[str, str]:
    """The only answer the event subscription accepts: encrypted "success", camelCase timeStamp."""
    timestamp = str(int(now.timestamp() * 1000))
    nonce = nonce or secrets.token_hex(8)
    encrypt = envelope.encrypt("success")
    return {
        "msg_signature": envelope.sign(timestamp, nonce, encrypt),
        "timeStamp": timestamp,
        "nonce": nonce,
        "encrypt": encrypt,
    }


def robot_key(url: str) -> str:
    """A rate-limit / throttle key for one robot URL: a hash, so no token or secret is kept in it."""
    return "dingtalk:robot:" + hashlib.sha256(url.encode()).hexdigest()[:20]


def strip_mentions(text: str) -> str:
    """Drop the leading ``@bot`` (and any other leading mentions) of a group message."""
    return _LEADING_MENTIONS.sub("", text, count=1).strip()


# ---------------------------------------------------------------- reply handles


def session_handle(url: str, expires_ms: int) -> str:
    return json.dumps({"session": url, "exp": expires_ms}, separators=(",", ":"))


def card_handle(out_track_id: str) -> str:
    return json.dumps({"card": out_track_id}, separators=(",", ":"))


def decode_handle(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _json_field(value: Any, name: str) -> dict[str, Any]:
    """Card callbacks carry ``content``/``extension`` as JSON *strings*; accept an object too."""
    if value in (None, ""):
        return {}
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a JSON string")
    data = parse_json(value, name)
    if not isinstance(data, dict):
        raise BadRequest(f"{name} must be a JSON object")
    return data


def _text_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# ---------------------------------------------------------------- the adapter


class DingTalkPlatform:
    name = "dingtalk"

    def __init__(self, bot: BotConfig, deps: Deps):
        self.bot_id = bot.id
        self.deps = deps
        self.http = deps.http
        self.clock = deps.clock
        self.app_key = str(bot.get("app_key", ""))
        self.app_secret = bot.secret("app_secret")
        self.robot_code = str(bot.get("robot_code") or self.app_key)
        self.api_base = str(bot.get("api_base", "https://api.dingtalk.com")).rstrip("/")
        self.oapi_base = str(bot.get("oapi_base", "https://oapi.dingtalk.com")).rstrip("/")
        self.card_template_id = str(bot.get("card_template_id") or "")
        self.card_route_key = str(bot.get("card_callback_route_key") or "")
        self.card_callback_secret = bot.secret("card_callback_secret")
        self.stream = bot.get("connection", "webhook") == "stream"
        if self.card_template_id and not self.stream and not self.card_route_key:
            log.warning(
                "%s: cards are created without a callback (no card_callback_route_key): "
                "their buttons will not reach planloop (docs/dingtalk.md)",
                bot.id,
            )
        self.timeout = float(bot.get("timeout", 10))
        token, aes_key = bot.secret("token"), bot.secret("aes_key")
        self.envelope = WxEnvelope(token, aes_key, self.app_key) if token and aes_key else None
        self._tokens = TokenCache(self._fetch_token, self.clock, TOKEN_EARLY)
        self._throttled: dict[str, datetime] = {}
        self._throttle_lock = threading.Lock()

    # ------------------------------------------------------------ inbound

    def parse(self, request: WebRequest, now: datetime) -> Inbound | WebResponse:
        if request.method != "POST":
            raise BadRequest("DingTalk callbacks are POST requests")
        if len(request.body) > MAX_BODY:
            raise BadRequest(f"body larger than {MAX_BODY} bytes")
        if request.path == "":
            return self._parse_event(request, now)
        if request.path == "robot":
            return self._parse_robot(request, now)
        if request.path == "card":
            return self._parse_card(request, now)
        raise BadRequest(f"unknown DingTalk callback path {request.path!r}")

    def _parse_event(self, request: WebRequest, now: datetime) -> Inbound | WebResponse:
        if self.envelope is None:
            raise BadRequest("this bot has no event subscription (token and aes_key are not configured)")
        args = request.args
        signature = args.get("signature") or args.get("msg_signature") or ""
        timestamp = args.get("timestamp") or args.get("timeStamp") or ""
        nonce = args.get("nonce") or ""
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("encrypt"), str) or not body["encrypt"]:
            raise BadRequest('expected a JSON body {"encrypt": "..."}')
        encrypt = body["encrypt"]
        verify_event(self.envelope, signature, timestamp, nonce, encrypt, now)
        plain = self.envelope.decrypt(encrypt)
        event = parse_json(plain, "decrypted event")
        if not isinstance(event, dict):
            raise BadRequest("decrypted event must be a JSON object")
        kind = event.get("EventType") or event.get("type")
        if kind == "check_url":
            log.info("check_url answered for %s", self.bot_id)
        else:
            # Card clicks never come this way (DingTalk posts them to the registered card
            # callback URL, or over Stream); anything else here is not used by planloop.
            log.info("event %s acknowledged (not used) on %s", kind, self.bot_id)
        return WebResponse(200, success_reply(self.envelope, now))

    def _parse_card(self, request: WebRequest, now: datetime) -> Inbound:
        if not self.card_callback_secret:
            raise SignatureError(
                "card_callback_secret is not configured: set it to the apiSecret the card callback "
                "route was registered with"
            )
        timestamp = request.headers.get("x-ddpaas-signature-timestamp", "")
        verify_card_callback(
            self.card_callback_secret, timestamp, request.headers.get("x-ddpaas-signature", ""), now
        )
        event = request.json()
        if not isinstance(event, dict):
            raise BadRequest("card callback must be a JSON object")
        # The signature covers only the timestamp: the replay key is (timestamp, click).
        return self.card_inbound(event, now, f"http:{timestamp}")

    def card_inbound(self, event: dict[str, Any], now: datetime, delivery: str) -> Inbound:
        """A card click (``actionCallback``, HTTP or Stream) as an Inbound. ``delivery`` names this
        delivery of it (the signed timestamp, or the Stream frame's messageId), so a redelivery
        of the same push collapses onto one event id while a later click of the same button is new."""
        if event.get("type", "actionCallback") != "actionCallback":
            raise BadRequest(f"card callback type {event.get('type')!r} is not actionCallback")
        user = event.get("userId")
        out_track_id = event.get("outTrackId") or ""
        if not isinstance(user, str) or not user:
            raise BadRequest("card callback without userId")
        if not isinstance(out_track_id, str):
            raise BadRequest("outTrackId must be a string")
        content = _json_field(event.get("content"), "content")
        _json_field(event.get("extension"), "extension")  # validated; nothing in it is needed
        private = content.get("cardPrivateData") or {}
        if not isinstance(private, dict):
            raise BadRequest("cardPrivateData must be an object")
        action_ids = private.get("actionIds") or []
        params = private.get("params") or {}
        if not isinstance(action_ids, list) or not isinstance(params, dict):
            raise BadRequest("cardPrivateData.actionIds must be a list and params an object")
        action = params.get("action") or (action_ids[0] if action_ids else "")
        if not isinstance(action, str) or not action:
            raise BadRequest("card callback names no action")
        values: dict[str, str] = {}
        packed = params.get("value")
        if isinstance(packed, str) and packed.strip().startswith("{"):
            values.update({k: _text_value(v) for k, v in _json_field(packed, "params.value").items()})
        elif isinstance(packed, dict):
            values.update({k: _text_value(v) for k, v in packed.items()})
        values.update({str(k): _text_value(v) for k, v in params.items() if k not in ("action", "value")})
        if len(action) > 200 or any(len(v) > MAX_TEXT for v in values.values()):
            raise BadRequest(f"a card value is longer than {MAX_TEXT} characters")
        # The documented body has no space; the Stream SDK's model knows spaceType/spaceId.
        group = event.get("spaceType") == "IM_GROUP" and isinstance(event.get("spaceId"), str)
        chat_type: ChatType = "group" if group else "dm"
        chat = str(event["spaceId"]) if group else user
        digest = hashlib.sha256(
            f"{out_track_id}|{user}|{json.dumps(content, sort_keys=True)}|{delivery}".encode()
        ).hexdigest()[:40]
        kind: Kind = "form" if values else "action"
        return Inbound(
            "dingtalk",
            self.bot_id,
            f"card:{digest}",
            kind,
            user,
            chat,
            chat_type,
            action=action,
            values=values,
            reply_handle=card_handle(out_track_id) if out_track_id else None,
            received_at=now,
        )

    def _parse_robot(self, request: WebRequest, now: datetime) -> Inbound | WebResponse:
        verify_robot(
            self.app_secret, request.headers.get("timestamp", ""), request.headers.get("sign", ""), now
        )
        msg = request.json()
        if not isinstance(msg, dict):
            raise BadRequest("robot message must be a JSON object")
        msg_id = msg.get("msgId")
        if not isinstance(msg_id, str) or not msg_id:
            raise BadRequest("robot message without msgId")
        self._bind_signature(request, msg_id, now)  # HTTP only: a Stream frame has no such headers
        inbound = self.robot_inbound(msg, now)
        return WebResponse(200, {}) if inbound is None else inbound

    def robot_inbound(self, msg: dict[str, Any], now: datetime) -> Inbound | None:
        """A robot message (HTTP or Stream) as an Inbound; None for one planloop does not take
        (not text, or a group message that does not @ the robot)."""
        msg_id = msg.get("msgId")
        conversation_type = msg.get("conversationType")
        actor = msg.get("senderStaffId") or msg.get("senderId")
        if not isinstance(msg_id, str) or not msg_id:
            raise BadRequest("robot message without msgId")
        if conversation_type not in ("1", "2"):
            raise BadRequest('conversationType must be "1" (1:1) or "2" (group)')
        if not isinstance(actor, str) or not actor:
            raise BadRequest("robot message without senderStaffId")
        group = conversation_type == "2"
        chat = msg.get("conversationId") if group else actor
        if not isinstance(chat, str) or not chat:
            raise BadRequest("group message without conversationId")
        if group and msg.get("isInAtList") is False:
            log.info("group message not addressed to the robot ignored on %s", self.bot_id)
            return None
        text = self._message_text(msg)
        if text is None:
            log.info("robot message type %r ignored on %s", msg.get("msgtype"), self.bot_id)
            return None
        if len(text) > MAX_TEXT:
            raise BadRequest(f"message longer than {MAX_TEXT} characters")
        handle = None
        webhook, expires = msg.get("sessionWebhook"), msg.get("sessionWebhookExpiredTime")
        if (
            isinstance(webhook, str)
            # only DingTalk's own host: a message can never make the worker post somewhere else
            and webhook.startswith(self.oapi_base + "/")
            and isinstance(expires, int | str)
            and str(expires).isdigit()
        ):
            handle = session_handle(webhook, int(expires))
        return Inbound(
            "dingtalk",
            self.bot_id,
            f"msg:{msg_id}",
            "text",
            actor,
            chat,
            "group" if group else "dm",
            text=strip_mentions(text),
            reply_handle=handle,
            received_at=now,
        )

    def _bind_signature(self, request: WebRequest, msg_id: str, now: datetime) -> None:
        """The robot's (timestamp, sign) does not sign the body: bind it to this msgId for the
        signature window, on every replica (storage/replay.py); another msgId is a replay (401)."""
        timestamp, sign = request.headers.get("timestamp", ""), request.headers.get("sign", "")
        key = replay.pair_key(self.bot_id, timestamp, sign)
        expires = parse_timestamp(timestamp) + WINDOW
        with self.deps.sessions() as session, session.begin():
            bound_to = replay.bind(session, key, msg_id, expires, now)
        if bound_to is None:
            return
        log.warning(
            "robot callback on %s replays the signature of msg %s as %s", self.bot_id, bound_to, msg_id
        )
        with self.deps.sessions() as session, session.begin():
            replay.audit_replay(session, f"dingtalk:{self.bot_id}", msg_id, bound_to, now)
        raise SignatureError("timestamp/sign already used by another message")

    @staticmethod
    def _message_text(msg: dict[str, Any]) -> str | None:
        kind = msg.get("msgtype")
        if kind == "text":
            text = msg.get("text")
            content = text.get("content") if isinstance(text, dict) else None
            if not isinstance(content, str):
                raise BadRequest("text message without text.content")
            return content
        if kind == "richText":
            content = msg.get("content")
            parts = content.get("richText") if isinstance(content, dict) else None
            if not isinstance(parts, list):
                raise BadRequest("richText message without content.richText")
            return "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
        return None

    def answer(self, inbound: Inbound, card: Card | None) -> tuple[WebResponse, bool]:
        if inbound.event_id.startswith("card:"):
            # A click's answer updates the clicked card in place, in the callback's own answer
            # (DingTalk: do not call the update API while answering a callback).
            return WebResponse(200, card_update(card) if card is not None else {}), False
        # A robot message is answered at once; the reply goes out through the outbox.
        return WebResponse(200, {}), True

    def ack_duplicate(self, inbound: Inbound) -> WebResponse:
        return WebResponse(200, {})

    # ------------------------------------------------------------ outbound

    def repeats_dropped(self, message: Outbound) -> bool:
        """A card (its outTrackId) and an update are safe to send again; robot messages, and a
        card that goes as text first, are not."""
        if message.channel == "update":
            return True
        card = message.card
        return (
            message.channel in ("chat", "user")
            and bool(self.card_template_id)
            and render.needs_callbacks(card)
            and not render.card_needs_split(card)
        )

    def limits(self, message: Outbound) -> list[RateLimit]:
        if message.channel == "webhook":
            url = message.extra.get("url", "")
            # 20 a minute per robot, declared as 19 in any 64 s. The relay's buckets are sliding
            # windows (no 64 s ever holds more than 19 tokens), so DingTalk, counting a message
            # when it arrives, never sees 20 in a minute, even with each send arriving up to 4 s
            # after its token (one per 3.21 s allowed 4.2 s), nor 20 in one calendar minute.
            # Bursts of 19, not one per 3.21 s: a robot's queue goes in 64 s, not 61 s per 19.
            return [RateLimit(robot_key(url), ROBOT_PER_MINUTE - 1, ROBOT_WINDOW)]
        return [RateLimit(f"dingtalk:app:{self.app_key}", APP_QPS // 2, 1.0)]

    def send(self, message: Outbound) -> SendResult:
        card = message.card
        if message.channel == "webhook":
            url = message.extra.get("url", "")
            if not url:
                raise DeliveryError("the team's DingTalk robot has no URL", retry=False, code="no_url")
            signed = sign_custom_robot_url(
                url, message.extra.get("secret", ""), str(int(self.clock().timestamp() * 1000))
            )
            self._post_robot(robot_key(url), signed, render.robot_message(card), http=webhook_http(message))
            return SendResult()
        handle = decode_handle(message.reply_handle)
        if message.channel == "update" or (handle.get("card") and message.channel in ("chat", "user")):
            if handle.get("card") and self.card_template_id:
                return self._update_card(str(handle["card"]), card)
            if message.channel == "update":
                raise DeliveryError("no card to update", retry=False, code="no_card_handle")
        if message.channel not in ("chat", "user"):
            raise DeliveryError(f"unknown channel {message.channel!r}", retry=False, code="bad_channel")
        if render.needs_callbacks(card):
            if self.card_template_id:
                return self._create_and_deliver(message)
            log.warning("card %r has callback buttons but no card_template_id is set", card.title)
        session, expires = handle.get("session"), handle.get("exp")
        if isinstance(session, str) and isinstance(expires, int):
            remaining = expires / 1000 - self.clock().timestamp()
            if remaining > SESSION_MARGIN.total_seconds():
                self._post_robot(robot_key(session), session, render.robot_message(card))
                return SendResult()
        return self._send_app_robot(message)

    def _send_app_robot(self, message: Outbound) -> SendResult:
        msg_key, param = render.app_robot_message(message.card)
        msg_param = json.dumps(param, ensure_ascii=False)
        if message.channel == "chat":
            body: dict[str, Any] = {
                "robotCode": self.robot_code,
                "openConversationId": message.target,
                "msgKey": msg_key,
                "msgParam": msg_param,
            }
            result = self._api("POST", "/v1.0/robot/groupMessages/send", body, unprotected=True)
            return SendResult(platform_message_id=str(result.get("processQueryKey", "")))
        body = {
            "robotCode": self.robot_code,
            "userIds": [message.target],
            "msgKey": msg_key,
            "msgParam": msg_param,
        }
        result = self._api("POST", "/v1.0/robot/oToMessages/batchSend", body, unprotected=True)
        if message.target in (result.get("flowControlledStaffIdList") or []):
            raise DeliveryError(
                "DingTalk flow-controlled this user", retry=True, retry_after=60, code="flow_controlled"
            )
        if message.target in (result.get("invalidStaffIdList") or []):
            raise DeliveryError(
                f"unknown DingTalk user {message.target}", retry=False, code="invalid_staff_id"
            )
        return SendResult(platform_message_id=str(result.get("processQueryKey", "")))

    def _create_and_deliver(self, message: Outbound) -> SendResult:
        card = message.card
        out_track_id = f"planloop-{message.id}"  # stable: a retried send addresses the same card
        names = self._display_names(card.mentions)
        split = render.card_needs_split(card)
        if split and message.parts_sent < 1:
            # a card value holds 1 KB: the whole text goes first, as the app robot's markdown
            self._send_app_robot(
                Outbound(message.id, message.channel, message.target, render.text_part(card))
            )
            if message.record_part is not None:
                message.record_part(1)
        body: dict[str, Any] = {
            "cardTemplateId": self.card_template_id,
            "outTrackId": out_track_id,
            "cardData": {"cardParamMap": render.card_params(card, names, continued=split)},
            "userIdType": 1,
        }
        if self.stream:
            body["callbackType"] = "STREAM"  # clicks come back over this bot's Stream connection
        elif self.card_route_key:
            body["callbackType"] = "HTTP"
            body["callbackRouteKey"] = self.card_route_key
        if message.channel == "chat":
            body["openSpaceId"] = f"dtv1.card//IM_GROUP.{message.target}"
            body["imGroupOpenSpaceModel"] = {"supportForward": True}
            deliver: dict[str, Any] = {"robotCode": self.robot_code}
            # atUserIds: id -> the name DingTalk shows; cardAtUserIds: the ids the card's
            # <a atId=…> marks highlight (create-and-deliver-cards)
            at_ids = {m: names.get(m, m) for m in card.mentions if m != "all"}
            if at_ids:
                body["cardAtUserIds"] = list(at_ids)
            if "all" in card.mentions:
                at_ids = {"@ALL": "@ALL"}
            if at_ids:
                deliver["atUserIds"] = at_ids
            body["imGroupOpenDeliverModel"] = deliver
        else:
            body["openSpaceId"] = f"dtv1.card//IM_ROBOT.{message.target}"
            body["imRobotOpenSpaceModel"] = {"supportForward": True}
            body["imRobotOpenDeliverModel"] = {"spaceType": "IM_ROBOT", "robotCode": self.robot_code}
        try:
            result = self._api("POST", "/v1.0/card/instances/createAndDeliver", body)
        except DeliveryError as exc:
            if not _duplicate_out_track_id(exc):
                raise
            # An earlier attempt created and delivered this very card (its answer was lost):
            # the outTrackId is ours and unique per outbox row, so this is "delivered".
            log.info("card %s was already delivered (duplicate outTrackId)", out_track_id)
            return SendResult(platform_message_id=out_track_id, reply_handle=card_handle(out_track_id))
        delivered = (result.get("result") or {}).get("deliverResults") or []
        failed = [d for d in delivered if isinstance(d, dict) and not d.get("success", True)]
        if failed:
            raise DeliveryError(
                f"card not delivered: {failed[0].get('errorMsg', '')}", retry=False, code="deliver_failed"
            )
        return SendResult(platform_message_id=out_track_id, reply_handle=card_handle(out_track_id))

    def _update_card(self, out_track_id: str, card: Card) -> SendResult:
        body = {
            "outTrackId": out_track_id,
            "cardData": {"cardParamMap": render.card_params(card, self._display_names(card.mentions))},
            "cardUpdateOptions": {"updateCardDataByKey": False},
        }
        self._api("PUT", "/v1.0/card/instances", body)
        return SendResult(platform_message_id=out_track_id, reply_handle=card_handle(out_track_id))

    def _display_names(self, ids: tuple[str, ...]) -> dict[str, str]:
        """The names of mentioned DingTalk user ids (their people on this bot); ids without one
        are shown as themselves."""
        wanted = [m for m in ids if m != "all"]
        if not wanted or self.deps.sessions is None:
            return {}
        from sqlalchemy import select

        from storage.models import Identity, Person

        try:
            with self.deps.sessions() as session:
                rows = session.execute(
                    select(Identity.external_id, Person.name)
                    .join(Person, Person.id == Identity.person_id)
                    .where(Identity.bot_id == self.bot_id, Identity.external_id.in_(wanted))
                ).all()
        except Exception:  # a name is a nicety: never fail a send over it
            log.warning("cannot look up the names of mentioned DingTalk users", exc_info=True)
            return {}
        return {str(ext): str(name) for ext, name in rows}

    # ------------------------------------------------------------ HTTP plumbing

    def _request(
        self,
        method: str,
        url: str,
        http: requests.Session | None = None,
        *,
        unprotected: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """``unprotected``: DingTalk would show a repeat twice (robots have no idempotency key), so
        a request that went out and got no answer is not retried: its outcome is unknown."""
        try:
            return (http or self.http).request(
                method, url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except (netguard.UrlRefused, netguard.UnresolvedHost) as exc:
            raise guard_error(exc, "DingTalk robot") from None
        except requests.ReadTimeout:
            if unprotected:
                raise DeliveryError(
                    "DingTalk took the message but did not answer in time", retry=False, code=OUTCOME_UNKNOWN
                ) from None
            raise DeliveryError("DingTalk did not answer in time", retry=True, code="timeout") from None
        except requests.Timeout:
            raise DeliveryError("DingTalk did not answer in time", retry=True, code="timeout") from None
        except requests.RequestException as exc:
            raise DeliveryError(
                f"cannot reach DingTalk: {type(exc).__name__}", retry=True, code="network"
            ) from None

    def access_token(self, stale: str | None = None) -> str:
        """The app's access token, cached; refreshed early, and when ``stale`` was refused (401)."""
        return self._tokens.get(stale)

    def _fetch_token(self) -> tuple[str, float]:
        resp = self._request(
            "POST",
            f"{self.api_base}/v1.0/oauth2/accessToken",
            json={"appKey": self.app_key, "appSecret": self.app_secret},
        )
        data = self._api_result(resp)
        token = data.get("accessToken")
        if not isinstance(token, str) or not token:
            raise DeliveryError("DingTalk returned no access token", retry=True, code="no_token")
        return token, int(data.get("expireIn") or 7200)

    def _api(
        self, method: str, path: str, body: dict[str, Any], *, unprotected: bool = False
    ) -> dict[str, Any]:
        stale: str | None = None
        for _attempt in range(2):
            token = self.access_token(stale)
            resp = self._request(
                method,
                self.api_base + path,
                unprotected=unprotected,
                json=body,
                headers={"x-acs-dingtalk-access-token": token},
            )
            if resp.status_code == 401 and stale is None:
                stale = token  # expired or revoked early: fetch a new one and try once more
                continue
            return self._api_result(resp)
        return self._api_result(resp)

    @staticmethod
    def _body(resp: requests.Response) -> dict[str, Any]:
        try:
            data = jsonlimits.loads(resp.content)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _api_result(self, resp: requests.Response) -> dict[str, Any]:
        data = self._body(resp)
        status = resp.status_code
        code = str(data.get("code") or data.get("errcode") or status)
        message = str(data.get("message") or data.get("errmsg") or "")[:200]
        if 200 <= status < 300 and data.get("errcode") in (None, 0, "0"):
            return data
        if code == "90018" or (status == 403 and "QpsLimit" in code):
            raise DeliveryError(f"DingTalk rate limit: {code}", retry=True, retry_after=1.0, code=code)
        if status == 429:
            raise DeliveryError(
                "DingTalk rate limit (429)", retry=True, retry_after=_retry_after(resp, 1.0), code=code
            )
        if status >= 500:
            raise DeliveryError(f"DingTalk server error {status}", retry=True, code=code)
        raise DeliveryError(f"DingTalk refused the request: {code} {message}".strip(), retry=False, code=code)

    def _post_robot(
        self, key: str, url: str, payload: dict[str, Any], http: requests.Session | None = None
    ) -> None:
        """POST to a custom group robot or a session webhook (errcode in a 200 body)."""
        now = self.clock()
        with self._throttle_lock:
            until = self._throttled.get(key)
            if until is not None and until <= now:
                del self._throttled[key]
                until = None
        if until is not None:
            # Do not even try: another message now would extend DingTalk's block.
            wait = (until - now).total_seconds()
            raise DeliveryError(
                "robot is throttled by DingTalk (130101)", retry=True, retry_after=wait, code="130101"
            )
        resp = self._request("POST", url, http=http, unprotected=True, json=payload)
        data = self._body(resp)
        errcode = str(data.get("errcode", ""))
        if resp.status_code == 200 and errcode in ("0", ""):
            if not data:
                raise DeliveryError("robot answered without a JSON body", retry=True, code="bad_answer")
            return
        if errcode == "130101":
            with self._throttle_lock:
                self._throttled[key] = now + timedelta(seconds=THROTTLE)
            raise DeliveryError(
                "robot is throttled by DingTalk (130101)", retry=True, retry_after=THROTTLE, code="130101"
            )
        if errcode == "90018":
            raise DeliveryError("DingTalk rate limit (90018)", retry=True, retry_after=1.0, code="90018")
        if resp.status_code == 429 or resp.status_code >= 500 or 300 <= resp.status_code < 400:
            raise DeliveryError(
                f"robot answered HTTP {resp.status_code}",
                retry=True,
                retry_after=_retry_after(resp, None),
                code=str(resp.status_code),
            )
        code = errcode or str(resp.status_code)
        message = str(data.get("errmsg", ""))[:200]
        raise DeliveryError(f"robot refused the message: {code} {message}".strip(), retry=False, code=code)


def _duplicate_out_track_id(exc: DeliveryError) -> bool:
    """DingTalk's answer to a createAndDeliver whose outTrackId already exists."""
    said = f"{exc.code} {exc}".lower()
    return "outtrackid" in said and ("duplicate" in said or "已存在" in said)


def _retry_after(resp: requests.Response, default: float | None) -> float | None:
    raw = resp.headers.get("Retry-After", "")
    try:
        return max(0.0, float(raw))
    except ValueError:
        return default
