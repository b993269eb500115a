"""A fake Feishu open platform on 127.0.0.1, and event helpers that sign and encrypt like Feishu.

The server is a real HTTP server (werkzeug, threaded) that checks what we send the way
Feishu does: the tenant token in ``Authorization``, ``content`` as a JSON *string* holding a
2.0 card, ``uuid`` idempotency, the 30 KB body limit, a custom group robot's signature and
timestamp window and its card as an *object*. Tests can make it answer 429 with
``x-ogw-ratelimit-reset`` (or any code), expire every token it issued, or hang.

The event helpers are written independently of ``bot/platforms`` (hashlib and cryptography
directly), so a test that signs with them checks the adapter rather than itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import Flask, Response, request
from werkzeug.serving import make_server

APP_ID = "cli_fake_app"
APP_SECRET = "fake-app-secret"
ENCRYPT_KEY = "fake-encrypt-key"
VERIFICATION_TOKEN = "fake-verification-token"

# --- how Feishu seals and signs an event ---------------------------------------------------------


def seal(encrypt_key: str, plaintext: str, iv: bytes | None = None) -> str:
    """Feishu's encryption: AES-256-CBC, key = SHA-256(encrypt key), random IV prepended, PKCS#7/16."""
    key = hashlib.sha256(encrypt_key.encode()).digest()
    iv = iv or os.urandom(16)
    data = plaintext.encode()
    n = 16 - len(data) % 16
    data += bytes([n]) * n
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + enc.update(data) + enc.finalize()).decode()


def signature(timestamp: str, nonce: str, key: str, body: bytes, *, legacy: bool = False) -> str:
    """X-Lark-Signature: SHA-256 with the encrypt key; SHA-1 with the verification token (legacy card)."""
    digest = hashlib.sha1 if legacy else hashlib.sha256
    return digest((timestamp + nonce + key).encode() + body).hexdigest()


@dataclass
class Event:
    """A ready-to-post request: raw body bytes and headers."""

    body: bytes
    headers: dict[str, str]
    plaintext: dict[str, Any]


def deliver(
    payload: dict[str, Any],
    *,
    now: datetime,
    encrypt_key: str | None = ENCRYPT_KEY,
    sign: bool = True,
    legacy: bool = False,
    token: str = VERIFICATION_TOKEN,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> Event:
    """What Feishu POSTs for ``payload``: encrypted when there is a key, then signed over the raw body."""
    plaintext = json.dumps(payload, ensure_ascii=False)
    if encrypt_key:
        raw = json.dumps({"encrypt": seal(encrypt_key, plaintext)}).encode()
    else:
        raw = plaintext.encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if sign:
        ts = timestamp if timestamp is not None else str(int(now.timestamp()))
        nc = nonce if nonce is not None else uuid.uuid4().hex[:16]
        key = token if legacy else (encrypt_key or "")
        headers.update(
            {
                "X-Lark-Request-Timestamp": ts,
                "X-Lark-Request-Nonce": nc,
                "X-Lark-Signature": signature(ts, nc, key, raw, legacy=legacy),
            }
        )
    return Event(raw, headers, payload)


def v2(
    event_type: str, event: dict[str, Any], *, event_id: str | None = None, token: str = VERIFICATION_TOKEN
) -> dict:
    return {
        "schema": "2.0",
        "header": {
            "event_id": event_id or uuid.uuid4().hex,
            "token": token,
            "create_time": str(int(time.time() * 1000)),
            "event_type": event_type,
            "tenant_key": "fake-tenant",
            "app_id": APP_ID,
        },
        "event": event,
    }


def text_message(
    text: str,
    *,
    open_id: str = "ou_lilei",
    chat_id: str = "oc_team",
    chat_type: str = "p2p",
    mentions: list[dict[str, Any]] | None = None,
    event_id: str | None = None,
    message_type: str = "text",
    content: str | None = None,
    token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """An ``im.message.receive_v1`` event as Feishu sends it (content is a JSON string)."""
    return v2(
        "im.message.receive_v1",
        {
            "sender": {
                "sender_id": {"open_id": open_id, "union_id": "on_x", "user_id": "u_x"},
                "sender_type": "user",
                "tenant_key": "fake-tenant",
            },
            "message": {
                "message_id": "om_" + uuid.uuid4().hex[:24],
                "create_time": str(int(time.time() * 1000)),
                "chat_id": chat_id,
                "chat_type": chat_type,
                "message_type": message_type,
                "content": content if content is not None else json.dumps({"text": text}, ensure_ascii=False),
                "mentions": mentions or [],
            },
        },
        event_id=event_id,
        token=token,
    )


def bot_mention(key: str = "@_user_1", open_id: str = "ou_bot", name: str = "planloop") -> dict[str, Any]:
    return {
        "key": key,
        "id": {"open_id": open_id, "union_id": "on_bot", "user_id": ""},
        "name": name,
        "tenant_key": "t",
    }


def card_action(
    value: dict[str, Any],
    *,
    form_value: dict[str, Any] | None = None,
    open_id: str = "ou_lilei",
    tag: str = "button",
    option: str | None = None,
    name: str | None = None,
    event_id: str | None = None,
    callback_token: str = "c-fake-callback-token",
    message_id: str = "om_card",
    token: str = VERIFICATION_TOKEN,
) -> dict[str, Any]:
    """A ``card.action.trigger`` callback: a click (value), a form submit (value + form_value), a select."""
    action: dict[str, Any] = {"value": value, "tag": tag}
    if form_value is not None:
        action["form_value"] = form_value
        action["name"] = name or "planloop_submit"
    if option is not None:
        action["option"] = option
    if name is not None:
        action["name"] = name
    return v2(
        "card.action.trigger",
        {
            "operator": {"tenant_key": "t", "user_id": "u_x", "open_id": open_id, "union_id": "on_x"},
            "token": callback_token,
            "action": action,
            "host": "im_message",
            "context": {"open_message_id": message_id, "open_chat_id": "oc_team"},
        },
        event_id=event_id,
        token=token,
    )


def url_verification(challenge: str = "ajls384kdjx98XX", token: str = VERIFICATION_TOKEN) -> dict[str, Any]:
    return {"challenge": challenge, "token": token, "type": "url_verification"}


def legacy_card(value: dict[str, Any], *, open_id: str = "ou_lilei", update_token: str = "c-legacy") -> dict:
    return {
        "open_id": open_id,
        "user_id": "u_x",
        "open_message_id": "om_legacy",
        "open_chat_id": "oc_team",
        "tenant_key": "t",
        "token": update_token,
        "action": {"value": value, "tag": "button"},
    }


# --- the fake open platform -------------------------------------------------------------------


@dataclass
class Sent:
    """One message the fake accepted."""

    message_id: str
    receive_id_type: str
    receive_id: str
    card: dict[str, Any]
    uuid: str


@dataclass
class Failure:
    status: int
    code: int
    msg: str
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeFeishu:
    """The subset of open.feishu.cn planloop uses, answering the way Feishu does."""

    MAX_BODY = 30 * 1024  # im/v1: 230025 past 30 KB for cards
    MAX_ROBOT_BODY = 20 * 1024

    def __init__(self, clock: Callable[[], datetime] | None = None):
        self.clock = clock or (lambda: datetime.now(UTC))
        self.app_id = APP_ID
        self.app_secret = APP_SECRET
        self.tokens: dict[str, datetime] = {}
        self.token_requests = 0
        self.sent: list[Sent] = []
        self.by_uuid: dict[str, Sent] = {}
        self.patched: list[tuple[str, dict[str, Any]]] = []
        self.card_updates: list[tuple[str, dict[str, Any]]] = []
        self.callback_tokens: dict[str, int] = {}  # token -> uses left (Feishu allows two)
        self.robots: dict[str, str] = {}  # hook id -> secret ("" = unsigned robot)
        self.robot_posts: list[dict[str, Any]] = []
        self.robot_at: dict[str, list[float]] = {}  # hook -> when each accepted post came
        self.robot_times: dict[str, deque[float]] = {}
        self.requests: list[tuple[str, str]] = []
        self._failures: dict[str, deque[Failure]] = {}
        self._slow_answers: dict[str, list[float]] = {}  # path prefix -> delays after success
        self._lock = threading.Lock()
        self.app = self._build()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.bot_open_id = "ou_bot"  # what GET /open-apis/bot/v3/info says the bot is
        self.gateway: Any = None  # a feishu_gateway.FakeGateway answers /callback/ws/endpoint

    # --- control --------------------------------------------------------------------------

    def fail_next(
        self,
        path_prefix: str,
        *,
        times: int = 1,
        status: int = 429,
        code: int = 99991400,
        msg: str = "request trigger frequency limit",
        reset: float | None = 2.0,
        delay: float = 0.0,
    ) -> None:
        """The next ``times`` requests to ``path_prefix`` fail (429 with x-ogw-ratelimit-reset by default)."""
        headers = {"x-ogw-ratelimit-reset": str(reset)} if reset is not None else {}
        with self._lock:
            queue = self._failures.setdefault(path_prefix, deque())
            for _ in range(times):
                queue.append(Failure(status, code, msg, headers, delay))

    def lose_next_answer(self, path_prefix: str, *, delay: float = 1.0, times: int = 1) -> None:
        """Do the work, then answer too late: the client times out although Feishu acted."""
        with self._lock:
            self._slow_answers.setdefault(path_prefix, []).extend([delay] * times)

    def _after_success(self) -> None:
        with self._lock:
            delay = 0.0
            for prefix, delays in self._slow_answers.items():
                if request.path.startswith(prefix) and delays:
                    delay = delays.pop(0)
                    break
        if delay:
            time.sleep(delay)

    def expire_tokens(self) -> None:
        """Every tenant token issued so far becomes invalid (99991663), as after a secret reset."""
        with self._lock:
            self.tokens.clear()

    def add_robot(self, secret: str = "robot-secret") -> str:
        hook = uuid.uuid4().hex
        self.robots[hook] = secret
        return f"{self.base_url}/open-apis/bot/v2/hook/{hook}"

    def issue_callback_token(self, token: str = "c-fake-callback-token") -> str:
        self.callback_tokens[token] = 2
        return token

    @contextmanager
    def running(self) -> Iterator[FakeFeishu]:
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._thread.join(timeout=5)

    # --- the Flask app ---------------------------------------------------------------------

    def _answer(
        self, status: int, code: int, msg: str, data: Any = None, headers: dict | None = None
    ) -> Response:
        body: dict[str, Any] = {"code": code, "msg": msg}
        if data is not None:
            body["data"] = data
        resp = Response(json.dumps(body, ensure_ascii=False), status=status, content_type="application/json")
        resp.headers["X-Tt-Logid"] = "fake-" + uuid.uuid4().hex[:12]
        for k, v in (headers or {}).items():
            resp.headers[k] = v
        return resp

    def _injected(self) -> Response | None:
        with self._lock:
            self.requests.append((request.method, request.path))
            for prefix, queue in self._failures.items():
                if request.path.startswith(prefix) and queue:
                    failure = queue.popleft()
                    break
            else:
                return None
        if failure.delay:
            time.sleep(failure.delay)
        return self._answer(failure.status, failure.code, failure.msg, headers=failure.headers)

    def _authorised(self) -> Response | None:
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        with self._lock:
            expires = self.tokens.get(token)
        if not token:
            return self._answer(400, 99991661, "Missing access token for authorization")
        if expires is None or expires <= self.clock():
            return self._answer(400, 99991663, "Invalid access token for authorization")
        return None

    def _body(self) -> dict[str, Any] | Response:
        try:
            data = json.loads(request.get_data())
        except ValueError:
            return self._answer(400, 9499, "Bad Request: body is not JSON")
        if not isinstance(data, dict):
            return self._answer(400, 9499, "Bad Request")
        return data

    def _card_from_content(self, content: Any) -> dict[str, Any] | Response:
        if not isinstance(content, str):
            return self._answer(400, 230001, "content must be a string (JSON-encoded card)")
        try:
            card = json.loads(content)
        except ValueError:
            return self._answer(400, 230001, "content is not valid JSON")
        if not isinstance(card, dict) or card.get("schema") != "2.0" or "body" not in card:
            return self._answer(400, 230099, "Failed to create card content: not a 2.0 card")
        return card

    def _build(self) -> Flask:
        app = Flask("fake_feishu")

        @app.post("/open-apis/auth/v3/tenant_access_token/internal")
        def token() -> Response:
            if (failed := self._injected()) is not None:
                return failed
            data = self._body()
            if isinstance(data, Response):
                return data
            if data.get("app_id") != self.app_id:
                return self._answer(400, 10003, "invalid param: app_id")
            if not hmac.compare_digest(str(data.get("app_secret", "")), self.app_secret):
                return self._answer(400, 10014, "app secret invalid")
            value = "t-" + uuid.uuid4().hex
            with self._lock:
                self.tokens[value] = self.clock() + timedelta(seconds=7200)
                self.token_requests += 1
            body = {"code": 0, "msg": "ok", "tenant_access_token": value, "expire": 7200}
            return Response(json.dumps(body), content_type="application/json")

        @app.get("/open-apis/bot/v3/info")
        def bot_info() -> Response:
            # [DOC 获取机器人信息] the bot object sits beside code/msg, not under "data"
            if (failed := self._injected()) is not None:
                return failed
            if (denied := self._authorised()) is not None:
                return denied
            info = {"activate_status": 2, "app_name": "planloop", "avatar_url": "", "ip_white_list": []}
            body = {"code": 0, "msg": "ok", "bot": {**info, "open_id": self.bot_open_id}}
            return Response(json.dumps(body), content_type="application/json")

        @app.post("/callback/ws/endpoint")
        def ws_endpoint() -> Response:
            if (failed := self._injected()) is not None:
                return failed
            if self.gateway is None:
                return self._answer(404, 404, "not found")
            try:
                body = json.loads(request.get_data())
            except ValueError:
                body = None
            status, answer = self.gateway.discover(body)
            return Response(json.dumps(answer), status=status, content_type="application/json")

        @app.post("/open-apis/im/v1/messages")
        def send() -> Response:
            if (failed := self._injected()) is not None:
                return failed
            if (denied := self._authorised()) is not None:
                return denied
            if len(request.get_data()) > self.MAX_BODY:
                return self._answer(400, 230025, "The length of the message content reaches its limit.")
            id_type = request.args.get("receive_id_type", "")
            if id_type not in ("open_id", "user_id", "union_id", "email", "chat_id"):
                return self._answer(400, 99992402, "field validation failed: receive_id_type")
            data = self._body()
            if isinstance(data, Response):
                return data
            if data.get("msg_type") != "interactive":
                return self._answer(400, 230001, "msg_type must be interactive here")
            card = self._card_from_content(data.get("content"))
            if isinstance(card, Response):
                return card
            receive_id = data.get("receive_id")
            if not isinstance(receive_id, str) or not receive_id:
                return self._answer(400, 230001, "receive_id is required")
            if id_type == "chat_id" and not receive_id.startswith("oc_"):
                return self._answer(400, 230001, "invalid chat_id")
            if id_type == "open_id" and not receive_id.startswith("ou_"):
                return self._answer(400, 230001, "invalid open_id")
            key = str(data.get("uuid") or "")
            with self._lock:
                if key and key in self.by_uuid:  # idempotent: the same uuid is the same message
                    sent = self.by_uuid[key]
                else:
                    sent = Sent("om_" + uuid.uuid4().hex[:24], id_type, receive_id, card, key)
                    self.sent.append(sent)
                    if key:
                        self.by_uuid[key] = sent
            self._after_success()
            return self._answer(200, 0, "success", {"message_id": sent.message_id, "msg_type": "interactive"})

        @app.patch("/open-apis/im/v1/messages/<message_id>")
        def patch(message_id: str) -> Response:
            if (failed := self._injected()) is not None:
                return failed
            if (denied := self._authorised()) is not None:
                return denied
            data = self._body()
            if isinstance(data, Response):
                return data
            card = self._card_from_content(data.get("content"))
            if isinstance(card, Response):
                return card
            if not any(s.message_id == message_id for s in self.sent):
                return self._answer(400, 230001, "message not found")
            if card.get("config", {}).get("update_multi") is not True:
                return self._answer(400, 230099, "a shared card needs update_multi")
            self.patched.append((message_id, card))
            return self._answer(200, 0, "success", {})

        @app.post("/open-apis/interactive/v1/card/update")
        def card_update() -> Response:
            if (failed := self._injected()) is not None:
                return failed
            if (denied := self._authorised()) is not None:
                return denied
            data = self._body()
            if isinstance(data, Response):
                return data
            token = data.get("token")
            card = data.get("card")
            if not isinstance(card, dict):
                return self._answer(400, 300030, "card must be an object")
            with self._lock:
                left = self.callback_tokens.get(str(token), 0)
                if left <= 0:
                    return self._answer(400, 300040, "token expired or used up")
                self.callback_tokens[str(token)] = left - 1
                self.card_updates.append((str(token), card))
            return self._answer(200, 0, "success", {})

        @app.post("/open-apis/bot/v2/hook/<hook>")
        def robot(hook: str) -> Response:
            if (failed := self._injected()) is not None:
                return failed
            if hook not in self.robots:
                return self._answer(404, 19001, "param invalid: incoming webhook access token invalid")
            if len(request.get_data()) > self.MAX_ROBOT_BODY:
                return self._answer(400, 9499, "Bad Request: body too large")
            data = self._body()
            if isinstance(data, Response):
                return data
            secret = self.robots[hook]
            if secret:
                ts = str(data.get("timestamp", ""))
                if not ts.isdigit() or abs(self.clock().timestamp() - int(ts)) > 3600:
                    return self._answer(400, 19021, "sign match fail or timestamp is not within one hour")
                key = f"{ts}\n{secret}".encode()
                expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
                if not hmac.compare_digest(expected, str(data.get("sign", ""))):
                    return self._answer(400, 19021, "sign match fail or timestamp is not within one hour")
            if data.get("msg_type") != "interactive" or not isinstance(data.get("card"), dict):
                return self._answer(400, 9499, "Bad Request: card must be an object")
            now = self.clock().timestamp()
            with self._lock:
                times = self.robot_times.setdefault(hook, deque())
                while times and now - times[0] >= 60:
                    times.popleft()
                in_second = sum(1 for t in times if now - t < 1)
                if in_second >= 5 or len(times) >= 100:
                    return self._answer(200, 11232, "frequency limited psm[lark.oapi.app_platform_runtime]")
                times.append(now)
                self.robot_posts.append(data)
                self.robot_at.setdefault(hook, []).append(now)
            self._after_success()
            return self._answer(200, 0, "success", {})

        return app


def bot_config(
    api_base: str = "http://127.0.0.1:9",
    *,
    bot_id: str = "feishu-main",
    encrypt_key: str | None = ENCRYPT_KEY,
    verification_token: str | None = VERIFICATION_TOKEN,
    **values: Any,
):  # noqa: ANN201 - a BotConfig
    """A Feishu bot pointed at the fake (or at nothing: port 9 refuses)."""
    from bot.config import BotConfig, Secret

    secrets = {"app_secret": Secret(APP_SECRET)}
    if encrypt_key is not None:
        secrets["encrypt_key"] = Secret(encrypt_key)
    if verification_token is not None:
        secrets["verification_token"] = Secret(verification_token)
    return BotConfig(bot_id, "feishu", {"app_id": APP_ID, "api_base": api_base, **values}, secrets)
