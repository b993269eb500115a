"""WeCom (企业微信) self-built app: the encrypted XML callback, passive card updates, and sending.

Inbound (``GET/POST /webhooks/wecom/<bot_id>``, developer.work.weixin.qq.com path/90930,
90238-90241): every request carries ``msg_signature``, ``timestamp`` and ``nonce``; the
signature is SHA-1 over the sorted (token, timestamp, nonce, encrypted value). GET echoes
the decrypted ``echostr`` as bare text; POST carries ``<xml><ToUserName/><Encrypt/><AgentID/></xml>``
whose decrypted body is the message or event XML. WeCom retries three times when there is
no answer within 5 s, so the answer is an empty body or a small encrypted passive reply
(``update_button``: the clicked button turns grey with "已提交"); cards go through the outbox.

Outbound: ``message/send`` (template cards to a person), ``message/update_template_card``
(replace a clicked card with its single-use ``response_code``, 72 h), ``appchat/send``
(markdown into a chat the app created) and a team's group robot (``webhook/send?key=…``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from xml.parsers import expat

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
    webhook_http,
)
from bot.platforms.crypto import WxEnvelope
from bot.platforms.tokens import TokenCache
from cards.model import Card
from cards.render import wecom as render
from handlers.inbound import Inbound, Kind
from sources import jsonlimits, netguard

if TYPE_CHECKING:
    from bot.platforms.base import Deps

log = logging.getLogger("planloop.wecom")

WINDOW = timedelta(hours=1)  # CONTRACT: a signed timestamp further than this from our clock is refused
MAX_XML_BYTES = 64 * 1024  # a WeCom callback is a few KiB; text messages are at most 2048 bytes
MAX_XML_DEPTH = 8
MAX_XML_NODES = 500
MAX_TEXT = 4000  # characters in a text message (WeCom's own limit is 2048 bytes)
TOKEN_EARLY = timedelta(minutes=5)  # refresh the access token this long before it expires
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid credential / invalid token / expired token: refetch once
RETRY_ERRORS = {-1: 5.0, 45009: 60.0, 45033: 5.0}  # busy, API rate limit, too many concurrent calls
# enable_duplicate_check's window (path/90236: default 1800 s, at most 4 h): longer than the
# relay's whole retry schedule (8 attempts, backoff capped well below) plus a lease.
DUPLICATE_CHECK_SECONDS = 1800

EMPTY = WebResponse(200, b"", content_type="text/plain; charset=utf-8")


# ---------------------------------------------------------------- a small, safe XML reader


@dataclass
class XmlNode:
    tag: str
    text: str = ""
    children: list[XmlNode] = field(default_factory=list)

    def find(self, *tags: str) -> XmlNode | None:
        return next((c for c in self.children if c.tag in tags), None)

    def value(self, tag: str) -> str:
        node = self.find(tag)
        return node.text.strip() if node is not None else ""


def parse_xml(data: bytes) -> XmlNode:
    """Parse WeCom's XML with expat, refusing any DTD or entity declaration (no XXE, no entity
    bombs) and anything deeper or larger than a callback can be. Raises BadRequest."""
    if len(data) > MAX_XML_BYTES:
        raise BadRequest(f"XML body larger than {MAX_XML_BYTES} bytes")
    parser = expat.ParserCreate(encoding="utf-8")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[XmlNode] = []
    texts: list[list[str]] = []
    root: list[XmlNode] = []
    count = [0]

    def forbidden(*_args: Any) -> Any:
        raise BadRequest("XML with a DTD or entities is not accepted")

    def start(tag: str, _attrs: Any) -> None:
        count[0] += 1
        if len(stack) >= MAX_XML_DEPTH or count[0] > MAX_XML_NODES:
            raise BadRequest("XML nested too deep or too many elements")
        node = XmlNode(tag)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)
        texts.append([])

    def end(_tag: str) -> None:
        stack.pop().text = "".join(texts.pop())

    def chars(data: str) -> None:
        if texts:
            texts[-1].append(data)

    parser.StartDoctypeDeclHandler = forbidden
    parser.EntityDeclHandler = forbidden
    parser.UnparsedEntityDeclHandler = forbidden
    parser.ExternalEntityRefHandler = forbidden
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise BadRequest(f"broken XML ({expat.ErrorString(exc.code)})") from None
    if not root or root[0].tag != "xml":
        raise BadRequest("expected an <xml> document")
    return root[0]


def cdata(text: str) -> str:
    """A CDATA section that stays one even when ``text`` contains "]]>"."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


# ---------------------------------------------------------------- the verifier and its twin


def verify_callback(
    envelope: WxEnvelope, signature: str, timestamp: str, nonce: str, encrypt: str, now: datetime
) -> None:
    """Pure: a forged signature or a timestamp more than an hour from ``now`` raises SignatureError."""
    if not signature or not timestamp or not nonce:
        raise SignatureError("msg_signature, timestamp and nonce are required")
    envelope.verify(signature, timestamp, nonce, encrypt)
    try:
        signed_at = int(timestamp)
    except ValueError:
        raise SignatureError("timestamp is not a number") from None
    if abs(now.timestamp() - signed_at) > WINDOW.total_seconds():
        raise SignatureError("timestamp is more than an hour away from the server clock")


def sign_callback(
    envelope: WxEnvelope, plaintext: str, timestamp: str, nonce: str, agent_id: str = ""
) -> tuple[dict[str, str], bytes]:
    """What WeCom sends for ``plaintext``: the query arguments and the encrypted XML body."""
    encrypt = envelope.encrypt(plaintext)
    args = {"msg_signature": envelope.sign(timestamp, nonce, encrypt), "timestamp": timestamp, "nonce": nonce}
    body = (
        f"<xml><ToUserName>{cdata(envelope.receive_id)}</ToUserName>"
        f"<Encrypt>{cdata(encrypt)}</Encrypt><AgentID>{cdata(agent_id)}</AgentID></xml>"
    )
    return args, body.encode()


def passive_reply(envelope: WxEnvelope, plaintext: str, timestamp: str, nonce: str) -> str:
    """The encrypted passive-reply XML WeCom expects in the callback's HTTP answer."""
    encrypt = envelope.encrypt(plaintext)
    signature = envelope.sign(timestamp, nonce, encrypt)
    return (
        f"<xml><Encrypt>{cdata(encrypt)}</Encrypt><MsgSignature>{cdata(signature)}</MsgSignature>"
        f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{cdata(nonce)}</Nonce></xml>"
    )


def _selected(event: XmlNode) -> dict[str, str]:
    """``SelectedItems`` of a card event as {question_key: "id1,id2"}. The docs spell the inner
    tags both OptionIds/OptionId and OpitonIds/OpitonId; accept either."""
    items = event.find("SelectedItems")
    out: dict[str, str] = {}
    for item in items.children if items is not None else []:
        if item.tag != "SelectedItem":
            continue
        key = item.value("QuestionKey")
        ids = item.find("OptionIds", "OpitonIds")
        chosen = [c.text.strip() for c in ids.children if c.tag in ("OptionId", "OpitonId")] if ids else []
        if key:
            out[key] = ",".join(chosen)
    return out


def _clean_id(text: str) -> str:
    return "".join(ch for ch in text if ch.isascii() and (ch.isalnum() or ch in "_-@"))


# ---------------------------------------------------------------- the adapter


class WeComPlatform:
    """One WeCom self-built app (corp_id + agent_id) and the group robots of its teams."""

    name = "wecom"

    def __init__(self, bot: BotConfig, deps: Deps):
        self.bot_id = bot.id
        self.deps = deps
        self.corp_id = str(bot.get("corp_id", ""))
        self.agent_id = int(bot.get("agent_id", 0))
        self.api_base = str(bot.get("api_base", "https://qyapi.weixin.qq.com")).rstrip("/")
        self.timeout = float(bot.get("timeout", 10))
        self._secret = bot.secret("secret")
        # A long-connection (智能机器人) entry has no callback URL, so no token or AES key.
        aes_key = bot.secret("aes_key")
        self.envelope = WxEnvelope(bot.secret("token"), aes_key, self.corp_id) if aes_key else None
        self._tokens = TokenCache(self._fetch_token, deps.clock, TOKEN_EARLY)

    # ------------------------------------------------------------ inbound

    def parse(self, request: WebRequest, now: datetime) -> Inbound | WebResponse:
        if request.path:
            return WebResponse(404, {"error": f"no such WeCom callback path {request.path!r}"})
        args = request.args
        signature = args.get("msg_signature", "")
        timestamp = args.get("timestamp", "")
        nonce = args.get("nonce", "")
        if request.method == "GET":
            return self._verify_url(signature, timestamp, nonce, args.get("echostr", ""), now)
        if self.envelope is None:
            return WebResponse(404, {"error": "this WeCom bot takes no callbacks (connection = stream)"})
        outer = parse_xml(request.body)
        encrypt = outer.value("Encrypt")
        if not encrypt:
            raise BadRequest("no <Encrypt> in the callback body")
        verify_callback(self.envelope, signature, timestamp, nonce, encrypt, now)
        message = parse_xml(self.envelope.decrypt(encrypt).encode("utf-8"))
        return self._inbound(message, now)

    def _verify_url(
        self, signature: str, timestamp: str, nonce: str, echostr: str, now: datetime
    ) -> WebResponse:
        if self.envelope is None:
            return WebResponse(404, {"error": "this WeCom bot takes no callbacks (connection = stream)"})
        if not echostr:
            raise BadRequest("echostr is required")
        try:
            verify_callback(self.envelope, signature, timestamp, nonce, echostr, now)
        except SignatureError:
            # A "+" in base64 that reached us unencoded was decoded as a space; WeCom signed the "+".
            if " " not in echostr:
                raise
            echostr = echostr.replace(" ", "+")
            verify_callback(self.envelope, signature, timestamp, nonce, echostr, now)
        return WebResponse(200, self.envelope.decrypt(echostr), content_type="text/plain; charset=utf-8")

    def _inbound(self, msg: XmlNode, now: datetime) -> Inbound | WebResponse:
        user = msg.value("FromUserName")
        if not user:
            raise BadRequest("the message has no FromUserName")
        agent = msg.value("AgentID")
        if agent and agent != str(self.agent_id):
            raise BadRequest(f"the message is for AgentID {agent}, this bot is {self.agent_id}")
        created = msg.value("CreateTime")
        msg_type = msg.value("MsgType")
        if msg_type == "text":
            text = msg.find("Content")
            content = text.text if text is not None else ""
            if len(content) > MAX_TEXT:
                raise BadRequest(f"text longer than {MAX_TEXT} characters")
            msg_id = msg.value("MsgId")
            event_id = f"msg:{msg_id}" if msg_id else f"msg:{user}:{created}"
            return Inbound(
                "wecom", self.bot_id, event_id, "text", user, user, "dm", text=content, received_at=now
            )
        event = msg.value("Event") if msg_type == "event" else ""
        if event in ("template_card_event", "template_card_menu_event"):
            key_node = msg.find("EventKey")
            action, values = render.decode_key(key_node.text.strip() if key_node is not None else "")
            selected = _selected(msg)
            card_type = msg.value("CardType")
            kind: Kind = (
                "form" if selected or card_type in ("multiple_interaction", "vote_interaction") else "action"
            )
            code = msg.value("ResponseCode") or None
            # WeCom's retry repeats the same ResponseCode; other events dedupe on user + time.
            event_id = f"card:{code}" if code else f"event:{user}:{created}:{event}"
            return Inbound(
                "wecom",
                self.bot_id,
                event_id,
                kind,
                user,
                user,
                "dm",
                action=action,
                values={**values, **selected},
                reply_handle=code,
                received_at=now,
            )
        # Pictures, voice, entering the app …: nothing to do, and an answer stops WeCom's retries.
        return EMPTY

    def answer(self, inbound: Inbound, card: Card | None) -> tuple[WebResponse, bool]:
        """Text commands: an empty 200 now, the card through the outbox. A card click: the clicked
        button turns into "已提交"/"已处理" (or the card's toast) by an encrypted passive reply, and
        any card the handler returned follows through the outbox. An error card (red) leaves the
        button clickable so the person can try again; so does a form sent back with an error."""
        if inbound.kind == "text" or not inbound.reply_handle:
            return EMPTY, card is not None
        failed = card is not None and (
            card.theme == "red" or (card.form is not None and bool(card.form.error))
        )
        if card is not None and failed and not card.toast:
            return EMPTY, True
        label = (
            card.toast
            if card is not None and card.toast
            else ("已提交" if inbound.kind == "form" else "已处理")
        )
        now = str(int(self.deps.clock().timestamp()))
        plain = (
            f"<xml><ToUserName>{cdata(inbound.actor)}</ToUserName><FromUserName>{cdata(self.corp_id)}"
            f"</FromUserName><CreateTime>{now}</CreateTime><MsgType>{cdata('update_button')}</MsgType>"
            f"<Button><ReplaceName>{cdata(render.ellipsize(label, render.BUTTON_TEXT))}</ReplaceName>"
            "</Button></xml>"
        )
        assert self.envelope is not None  # only a callback (which needs the envelope) is answered here
        body = passive_reply(self.envelope, plain, now, secrets.token_hex(8))
        # A toast-only card said all it had to say on the button.
        rest = card is not None and bool(card.blocks or card.buttons or card.form)
        return WebResponse(200, body, content_type="application/xml; charset=utf-8"), rest

    def ack_duplicate(self, inbound: Inbound) -> WebResponse:
        return EMPTY

    # ------------------------------------------------------------ outbound

    def repeats_dropped(self, message: Outbound) -> bool:
        """App messages go with WeCom's duplicate check, updates replace; the app group chat and
        the group robot show a repeat twice."""
        return message.channel in ("user", "update")

    def limits(self, message: Outbound) -> list[RateLimit]:
        if message.channel == "webhook":
            url = message.extra.get("url", "")
            # Keyed by a hash: the robot key in the URL is the robot's only secret. 20 in 61 s, not
            # 60: a send reaches WeCom a moment after its token was taken, and WeCom counts
            # arrivals (bench/relay_scale.py saw a 45009 with exactly 60).
            return [RateLimit(f"wecom-robot:{hashlib.sha256(url.encode()).hexdigest()[:20]}", 20, 61)]
        if message.channel in ("user", "update"):
            who = f"wecom-app:{self.bot_id}:{message.target}"
            return [RateLimit(who, 30, 60), RateLimit(who + ":h", 1000, 3600)]
        return []

    def send(self, message: Outbound) -> SendResult:
        if message.channel == "user":
            return self._send_user(message)
        if message.channel == "update":
            return self._send_update(message)
        if message.channel == "webhook":
            return self._send_robot(message)
        if message.channel == "chat":
            return self._send_chat(message)
        raise DeliveryError(f"WeCom has no channel {message.channel!r}", retry=False, code="channel")

    def _task_id(self, message: Outbound) -> str:
        return ("pl-" + _clean_id(message.id))[: render.TASK_ID_BYTES]

    def _render(self, fn: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        try:
            return list(fn(*args, **kwargs))
        except render.WeComLimitError as exc:
            raise DeliveryError(f"card cannot be shown on WeCom: {exc}", retry=False, code="render") from None

    def _send_user(self, message: Outbound) -> SendResult:
        parts = self._render(
            render.app_messages,
            message.card,
            task_id=self._task_id(message),
            fallback_url=self.deps.public_url,
        )
        last = self._each(message, parts, lambda p: self._to_user(message.target, p))
        code = last.get("response_code")
        return SendResult(
            platform_message_id=str(last.get("msgid", "")), reply_handle=str(code) if code else None
        )

    def _to_user(self, user: str, payload: dict[str, Any]) -> dict[str, Any]:
        # WeCom drops a repeat of the same content to the same person within the interval: a
        # retry after a timeout (the first may have arrived) is then shown once. Every part of a
        # card differs (its task_id, its text), so only a true repeat is dropped.
        body = {
            "touser": user,
            "agentid": self.agent_id,
            **payload,
            "enable_duplicate_check": 1,
            "duplicate_check_interval": DUPLICATE_CHECK_SECONDS,
        }
        data = self._api("/cgi-bin/message/send", body)
        if data.get("invaliduser"):
            raise DeliveryError(f"WeCom does not know user {user!r}", retry=False, code="invaliduser")
        return data

    def _send_update(self, message: Outbound) -> SendResult:
        """Replace a sent card (``reply_handle`` = its response_code). A card with nothing but a
        toast turns the clicked button into that text; text too long for a card goes first as
        markdown, like any other send."""
        code = message.reply_handle
        if not code:
            raise DeliveryError(
                "an update needs the card's response_code", retry=False, code="no_response_code"
            )
        card = message.card
        base = {"userids": [message.target], "agentid": self.agent_id, "response_code": code}
        if card.toast and not (card.blocks or card.buttons or card.form):
            button = {"replace_name": render.ellipsize(card.toast, render.BUTTON_TEXT)}
            self._api("/cgi-bin/message/update_template_card", {**base, "button": button})
            return SendResult()
        parts = self._render(
            render.app_messages, card, task_id=self._task_id(message), fallback_url=self.deps.public_url
        )

        def deliver(payload: dict[str, Any]) -> dict[str, Any]:
            if payload["msgtype"] != "template_card":
                return self._to_user(message.target, payload)
            body = {**base, "template_card": payload["template_card"]}
            return self._api("/cgi-bin/message/update_template_card", body)

        self._each(message, parts, deliver)
        return SendResult()

    def _send_chat(self, message: Outbound) -> SendResult:
        parts = self._render(render.chat_messages, message.card)
        self._each(
            message,
            parts,
            # appchat/send offers no duplicate check: an unanswered part may be in the chat
            lambda p: self._api("/cgi-bin/appchat/send", {"chatid": message.target, **p}, unprotected=True),
        )
        return SendResult()

    def _send_robot(self, message: Outbound) -> SendResult:
        url = message.extra.get("url", "")
        split = urlsplit(url)
        if split.scheme not in ("http", "https") or "key=" not in split.query:
            raise DeliveryError(
                "the team's WeCom group robot URL is missing or malformed", retry=False, code="no_webhook"
            )
        parts = self._render(render.robot_messages, message.card)
        http = webhook_http(message)
        self._each(
            message, parts, lambda p: self._call(url, p, {}, retry_after=60.0, http=http, unprotected=True)
        )
        return SendResult()

    def _each(self, message: Outbound, parts: list[dict[str, Any]], deliver: Any) -> dict[str, Any]:
        """Deliver the parts in order, from the first one no earlier attempt got accepted
        (``parts_sent``, kept on the outbox row); each accepted part is recorded at once, so a
        retry or a restart resumes at the next part."""
        last: dict[str, Any] = {}
        for i, part in enumerate(parts):
            if i < message.parts_sent:
                continue
            last = deliver(part)
            if message.record_part is not None:
                message.record_part(i + 1)
        return last

    # ------------------------------------------------------------ HTTP + access token

    def access_token(self, *, stale: str | None = None) -> str:
        """The cached access token, fetched again shortly before it expires, or when ``stale`` (a
        token WeCom just refused) is still the cached one."""
        return self._tokens.get(stale)

    def _fetch_token(self) -> tuple[str, float]:
        data = self._call(
            f"{self.api_base}/cgi-bin/gettoken",
            None,
            {"corpid": self.corp_id, "corpsecret": self._secret},
        )
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise DeliveryError("WeCom gettoken returned no access_token", retry=True, code="no_token")
        try:
            return token, int(data.get("expires_in", 7200))
        except (TypeError, ValueError):
            return token, 7200

    def _api(self, path: str, body: dict[str, Any], *, unprotected: bool = False) -> dict[str, Any]:
        token = self.access_token()
        url = f"{self.api_base}{path}"
        try:
            return self._call(url, body, {"access_token": token}, unprotected=unprotected)
        except DeliveryError as exc:
            if exc.code not in {str(c) for c in TOKEN_ERRORS}:
                raise
            log.info("WeCom refused the access token (%s); fetching a new one", exc.code)
        return self._call(
            url, body, {"access_token": self.access_token(stale=token)}, unprotected=unprotected
        )

    def _call(
        self,
        url: str,
        body: dict[str, Any] | None,
        params: dict[str, str],
        retry_after: float | None = None,
        http: requests.Session | None = None,
        *,
        unprotected: bool = False,
    ) -> dict[str, Any]:
        """One request; errors become DeliveryError. Messages never include the URL: it carries the
        access token, the app secret or a robot key. ``unprotected``: nothing on WeCom's side
        drops a repeat (the group robot), so a request that went out unanswered is not retried."""
        where = urlsplit(url).path
        session = http or self.deps.http
        try:
            if body is None:
                resp = session.get(url, params=params, timeout=self.timeout)
            else:
                resp = session.post(
                    url,
                    params=params,
                    data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
                    headers={"Content-Type": "application/json; charset=utf-8"},
                    timeout=self.timeout,
                )
        except (netguard.UrlRefused, netguard.UnresolvedHost) as exc:
            raise guard_error(exc, f"WeCom {where}") from None
        except requests.ReadTimeout:
            if unprotected:
                raise DeliveryError(
                    f"WeCom {where} took the request but did not answer in time",
                    retry=False,
                    code=OUTCOME_UNKNOWN,
                ) from None
            raise DeliveryError(f"WeCom {where} did not answer in time", retry=True, code="timeout") from None
        except requests.Timeout:
            raise DeliveryError(f"WeCom {where} did not answer in time", retry=True, code="timeout") from None
        except requests.RequestException as exc:
            raise DeliveryError(
                f"cannot reach WeCom {where} ({type(exc).__name__})", retry=True, code="network"
            ) from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise DeliveryError(
                f"WeCom {where} answered HTTP {resp.status_code}", retry=True, code=f"http_{resp.status_code}"
            )
        if resp.status_code >= 400:
            raise DeliveryError(
                f"WeCom {where} answered HTTP {resp.status_code}",
                retry=False,
                code=f"http_{resp.status_code}",
            )
        try:
            data = jsonlimits.loads(resp.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise DeliveryError(
                f"WeCom {where} answered something that is not JSON", retry=True, code="bad_response"
            )
        try:
            errcode = int(data.get("errcode", 0))
        except (TypeError, ValueError):
            errcode = -1
        if errcode == 0:
            return data
        errmsg = str(data.get("errmsg", ""))[:200]
        if errcode in RETRY_ERRORS:
            wait = retry_after if errcode == 45009 and retry_after else RETRY_ERRORS[errcode]
            raise DeliveryError(
                f"WeCom {where} is busy or rate limited: {errcode} {errmsg}",
                retry=True,
                retry_after=wait,
                code=str(errcode),
            )
        raise DeliveryError(f"WeCom {where} refused: {errcode} {errmsg}", retry=False, code=str(errcode))
