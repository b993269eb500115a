"""DingTalk Stream mode: robot messages and card clicks over one outbound websocket, no public URL.

The protocol (checked in the official SDKs' source, ``dingtalk-stream`` 0.24 for Python and
``dingtalk-stream-sdk-go``, and on DingTalk's 互动卡片 事件回调 page):

1. ``POST {api_base}/v1.0/gateway/connections/open`` with
   ``{clientId: app_key, clientSecret: app_secret, subscriptions: [{type, topic}], ua}``
   answers ``{endpoint, ticket}``.
2. A websocket to ``{endpoint}?ticket=<ticket, URL-encoded>``.
3. Text frames ``{specVersion, type: SYSTEM|EVENT|CALLBACK, headers: {topic, messageId, contentType,
   time, …}, data: "<JSON string>"}``; each is acknowledged with
   ``{code, headers: {contentType, messageId}, message, data: "<JSON string>"}``.
   SYSTEM ``ping`` is answered with its own data; SYSTEM ``disconnect`` means: open a new
   connection. CALLBACK topics: robot messages ``/v1.0/im/bot/messages/get`` and card clicks
   ``/v1.0/card/instances/callback``; a card click's ack carries the card update as
   ``data = {"response": {cardData, cardUpdateOptions}}``.

Why not the SDK: ``dingtalk_stream.DingTalkStreamClient`` hard-codes the gateway URL (an
environment variable read at import time is its only override), runs its own asyncio loop with
``start_forever`` (retrying forever with fixed sleeps, swallowing the gateway's error, so a wrong
secret is never reported as such), and acknowledges a frame inside its handler framework, so
"acknowledge only after the transaction committed" and "close after in-flight frames are
acknowledged on SIGTERM" cannot be expressed. This client is small, synchronous (one thread per
bot, like the rest of the worker) and uses ``websockets``' threading client, whose keepalive
pings find a dead link.

A frame is acknowledged only after ``handle`` returned (its transaction committed). If ``handle``
raises, the frame stays unacknowledged and the connection is dropped: DingTalk delivers it again
and the inbound dedupe absorbs a frame that had in fact been applied.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import quote_plus

import requests
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from bot.config import BotConfig
from bot.platforms.base import BadRequest, Deps, SignatureError, parse_json
from bot.platforms.dingtalk import DingTalkPlatform
from bot.platforms.stream import Handle, StreamAuthError, StreamError

log = logging.getLogger("planloop.dingtalk.stream")

ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
SUBSCRIPTIONS = ({"type": "CALLBACK", "topic": ROBOT_TOPIC}, {"type": "CALLBACK", "topic": CARD_TOPIC})
OPEN_PATH = "/v1.0/gateway/connections/open"
try:
    UA = f"planloop/{version('planloop')}"
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    UA = "planloop"
POLL = 0.5  # seconds between looks at ``stop`` while no frame arrives


def ack(message_id: str, *, code: int = 200, message: str = "OK", data: Any = None) -> str:
    """The acknowledgement of one frame, as the SDKs build it (``data`` is a JSON string)."""
    body = {
        "code": code,
        "headers": {"contentType": "application/json", "messageId": message_id},
        "message": message,
        "data": data if isinstance(data, str) else json.dumps(data, ensure_ascii=False),
    }
    return json.dumps(body, ensure_ascii=False)


class Reconnect(Exception):
    """The gateway asked for a new connection (SYSTEM ``disconnect``)."""


class DingTalkStream:
    """The Stream client of one DingTalk bot; ``run`` is called by the supervisor (bot/worker/streams.py)."""

    platform = "dingtalk"

    def __init__(
        self,
        bot: BotConfig,
        deps: Deps,
        adapter: DingTalkPlatform,
        *,
        ping_interval: float = 30.0,
        ping_timeout: float = 15.0,
    ):
        self.bot_id = bot.id
        self.adapter = adapter
        self.http: requests.Session = deps.http
        self.clock = deps.clock
        self.api_base = str(bot.get("api_base", "https://api.dingtalk.com")).rstrip("/")
        self.client_id = str(bot.get("app_key", ""))
        self.client_secret = bot.secret("app_secret")
        self.timeout = float(bot.get("timeout", 10))
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.frames = 0  # frames acknowledged (for tests and the bench)

    # ------------------------------------------------------------ the loop

    def run(self, handle: Handle, stop: threading.Event, on_connected: Callable[[], None]) -> None:
        while not stop.is_set():
            endpoint = self.open_connection()
            try:
                self._serve(endpoint, handle, stop, on_connected)
            except Reconnect:
                log.info("DingTalk asked %s to reconnect; opening a new connection", self.bot_id)
                continue
            return

    def open_connection(self) -> str:
        """Ask the gateway for an endpoint and ticket; the websocket URL to dial."""
        body = {
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "subscriptions": list(SUBSCRIPTIONS),
            "ua": UA,
        }
        try:
            resp = self.http.post(
                self.api_base + OPEN_PATH,
                json=body,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise StreamError(
                f"cannot reach the DingTalk gateway at {self.api_base}: {type(exc).__name__}", code="network"
            ) from None
        try:
            data = resp.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        said = f"HTTP {resp.status_code} {data.get('code', '')} {data.get('message', '')}".strip()
        if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
            raise StreamAuthError(
                f"DingTalk refused to open a Stream connection for {self.bot_id} ({said}): check the "
                "bot's app_key (Client ID) and app_secret (Client Secret) in the developer console "
                "(应用开发 → 凭证与基础信息), and that the app's robot uses Stream mode (消息接收模式: Stream 模式)",
                code=said,
            )
        if resp.status_code != 200:
            raise StreamError(f"the DingTalk gateway answered {said}", code=said)
        endpoint, ticket = data.get("endpoint"), data.get("ticket")
        if not isinstance(endpoint, str) or not endpoint or not isinstance(ticket, str) or not ticket:
            raise StreamError("the DingTalk gateway answered without endpoint/ticket", code=said)
        return f"{endpoint}?ticket={quote_plus(ticket)}"

    def _serve(
        self, url: str, handle: Handle, stop: threading.Event, on_connected: Callable[[], None]
    ) -> None:
        try:
            ws = connect(
                url,
                open_timeout=self.timeout,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                close_timeout=5,
                user_agent_header=UA,
            )
        except (InvalidHandshake, InvalidURI, OSError, TimeoutError) as exc:
            raise StreamError(
                f"the DingTalk Stream endpoint refused the websocket: {exc}", code="ws"
            ) from None
        with ws:
            log.info("DingTalk Stream connected for %s", self.bot_id)
            on_connected()
            while not stop.is_set():
                try:
                    raw = ws.recv(timeout=POLL)
                except TimeoutError:
                    continue
                except ConnectionClosed as exc:
                    raise StreamError(
                        f"DingTalk closed the Stream connection: {exc}", code="closed"
                    ) from None
                self._frame(ws, raw, handle)
            ws.close(1000, "planloop stopping")  # every frame read so far has been acknowledged
            log.info("DingTalk Stream for %s closed", self.bot_id)

    # ------------------------------------------------------------ one frame

    def _frame(self, ws: ClientConnection, raw: str | bytes, handle: Handle) -> None:
        try:
            frame = parse_json(raw, "DingTalk Stream frame")  # bounded like every body we parse
            headers = frame.get("headers") or {}
            kind, topic, message_id = (
                frame.get("type"),
                headers.get("topic", ""),
                headers.get("messageId", ""),
            )
        except (BadRequest, AttributeError):
            log.warning("DingTalk Stream sent a frame that is not a JSON object on %s", self.bot_id)
            return
        if kind == "SYSTEM":
            if topic == "ping":
                self._send(ws, ack(message_id, message="ok", data=frame.get("data") or ""))
            elif topic == "disconnect":
                self._send(ws, ack(message_id))
                raise Reconnect
            else:
                self._send(ws, ack(message_id))
            return
        if kind != "CALLBACK" or topic not in (ROBOT_TOPIC, CARD_TOPIC):
            log.info("DingTalk Stream frame %s %s not used on %s", kind, topic, self.bot_id)
            self._send(ws, ack(message_id, code=404 if kind == "CALLBACK" else 200, message="not used"))
            return
        now = self.clock()
        try:
            payload = parse_json(frame.get("data") or "", "frame data")
            if not isinstance(payload, dict):
                raise BadRequest("frame data must be a JSON object")
            if topic == ROBOT_TOPIC:
                inbound = self.adapter.robot_inbound(payload, now)
            else:
                inbound = self.adapter.card_inbound(payload, now, f"stream:{message_id}")
        except (BadRequest, SignatureError, ValueError) as exc:
            # A frame we can never take: acknowledge it as bad so it is not delivered for ever.
            log.warning("DingTalk Stream frame refused on %s: %s", self.bot_id, exc)
            self._send(ws, ack(message_id, code=400, message=str(exc)[:200]))
            return
        response = None
        if inbound is not None:
            # Raises when the transaction did not commit: no ack, the connection drops, and
            # DingTalk delivers the frame again.
            try:
                answer = handle(inbound)
            except Exception as exc:
                raise StreamError(
                    f"frame {message_id} not applied ({type(exc).__name__}); DingTalk will deliver it again",
                    code="handle",
                ) from exc
            response = answer.body if answer.body not in (b"", "", {}) else None
        self._send(ws, ack(message_id, data={"response": response}))
        self.frames += 1

    def _send(self, ws: ClientConnection, text: str) -> None:
        try:
            ws.send(text)
        except ConnectionClosed as exc:
            raise StreamError(f"DingTalk closed the Stream connection: {exc}", code="closed") from None


def build(bot: BotConfig, deps: Deps, platform: Any) -> DingTalkStream:
    if not isinstance(platform, DingTalkPlatform):
        raise TypeError(f"bot {bot.id}: a DingTalk Stream client needs the DingTalk adapter")
    return DingTalkStream(bot, deps, platform)
