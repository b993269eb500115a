"""Feishu's long connection (使用长连接接收事件/回调): events and card callbacks without a public URL.

The protocol, as lark-oapi 1.7.5 ``lark_oapi/ws/client.py`` speaks it (the Go and Node SDKs,
oapi-sdk-go ``ws/`` and node-sdk ``ws-client/``, agree) [SRC]:

1. Endpoint discovery: ``POST {api_base}/callback/ws/endpoint`` with ``{"AppID", "AppSecret"}``
   (header ``locale: zh``) answers ``{"code", "msg", "data": {"URL", "ClientConfig":
   {"PingInterval", "ReconnectCount", "ReconnectInterval", "ReconnectNonce"}}}`` (seconds).
   code 0 is success; 1 (system busy) and 1000040343 (internal error) are the server's trouble,
   any other code is the client's: the SDKs stop retrying. A refused App ID / Secret shows as
   1000040345 "app_id or app_secret is invalid" [third-party reports only, not documented].
   A non-200 HTTP status is a server error.
2. A websocket to ``URL``; its query carries ``device_id`` (the connection id for logs) and
   ``service_id`` (put into every ping). A refused handshake carries ``Handshake-Status``,
   ``Handshake-Msg`` and ``Handshake-Autherrcode`` headers: 514 + 1000040350 means the app
   already holds the maximum of connections (50 [DOC]), 403 is forbidden.
3. Binary frames, protobuf ``pbbp2.Frame`` (``feishu_frames``). The client sends a control
   frame (method 0) ``type=ping`` with ``service`` = service_id every PingInterval; the gateway
   answers ``type=pong`` whose payload may carry a new ClientConfig. Data frames (method 1)
   carry headers ``type`` (``event``; ``card`` is the legacy message-card callback, which the
   long connection does not deliver [DOC 使用长连接接收回调] and the SDKs drop), ``message_id``,
   ``sum`` / ``seq`` (a payload split into ``sum`` parts, ``seq`` from 0, joined per message_id;
   the SDKs drop an incomplete one after 5 s) and ``trace_id``. The payload is the plain JSON of
   the same v2 event a webhook gets; ``card.action.trigger`` comes as an ``event`` too.
   (``payload_encoding`` / ``payload_type`` are not read by any SDK, so not here either.)
4. Every data frame is answered with the same frame plus a ``biz_rt`` header (milliseconds of
   work) and the payload ``{"code": 200, "headers": {}, "data": base64(JSON)}``: ``data`` holds a
   callback's answer (toast / card, the same body a webhook answers), ``code`` 500 asks for a
   redelivery. Feishu redelivers what is not answered within 3 s [DOC], and pushes each event to
   one random connection of the app [DOC "集群模式"].

What this client does differently from the SDK, and why it is not the SDK's client:
``lark_oapi.ws.Client`` creates its own asyncio loop at import time, runs ``start()`` forever with
its own reconnect loop (it only returns by raising), answers a frame only from inside its event
dispatcher (whose callbacks cannot wait for our transaction and whose errors it swallows) and
takes its gateway host from the SDK's domain list. planloop's worker needs a ``run`` that
returns when ``stop`` is set, raises so the supervisor can back off and report the state,
acknowledges only after ``handle`` committed, and talks to the configured ``api_base``, so the
client is written here on ``websockets`` (its threaded API: one thread per bot, no event loop).
Frames are served one at a time in that thread: an answer never overtakes its transaction.

Reconnecting is the supervisor's job (``bot/worker/streams.py``, jittered backoff up to 60 s); the
gateway's ReconnectInterval / ReconnectNonce are kept in ``server_config`` for it to read.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from bot.config import BotConfig
from bot.platforms.base import BadRequest, Deps, Platform, SignatureError, WebResponse
from bot.platforms.feishu import FeishuPlatform
from bot.platforms.feishu_frames import CONTROL, DATA, Frame, FrameError, decode, encode
from bot.platforms.stream import Handle, StreamAuthError, StreamError
from handlers.inbound import Inbound

log = logging.getLogger("planloop.feishu.stream")

ENDPOINT_PATH = "/callback/ws/endpoint"
# endpoint discovery codes [SRC lark_oapi/ws/const.py]
OK, SYSTEM_BUSY, INTERNAL_ERROR = 0, 1, 1000040343
# handshake refusals
FORBIDDEN, AUTH_FAILED, EXCEED_CONN_LIMIT = 403, 514, 1000040350
HDR_STATUS, HDR_MSG, HDR_AUTH_CODE = "Handshake-Status", "Handshake-Msg", "Handshake-Autherrcode"

ANSWER_BUDGET = 3.0  # seconds Feishu waits for an answer before it redelivers [DOC]
PART_TTL = 5.0  # seconds a split payload waits for its other parts [SRC _combine, cache 5 s]
POLL = 0.2  # seconds between looks at ``stop``
DISCOVERY_TIMEOUT = (3.05, 15.0)  # the Node SDK gives discovery 15 s
CALLBACK_EVENTS = {"card.action.trigger"}  # answered with data in the response frame


@dataclass
class ServerConfig:
    """ClientConfig as the gateway sends it (seconds; ReconnectCount -1 = forever)."""

    ping_interval: float = 120.0
    reconnect_count: int = -1
    reconnect_interval: float = 120.0
    reconnect_nonce: float = 30.0

    def update(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            return
        for key, attr in (
            ("PingInterval", "ping_interval"),
            ("ReconnectCount", "reconnect_count"),
            ("ReconnectInterval", "reconnect_interval"),
            ("ReconnectNonce", "reconnect_nonce"),
        ):
            value = raw.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                setattr(self, attr, int(value) if attr == "reconnect_count" else float(value))
        self.ping_interval = max(1.0, self.ping_interval)  # never a busy loop on a bad value


class _Parts:
    """Split payloads joined by message_id; a message whose parts stop coming is dropped."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[float, list[bytes | None]]] = {}

    def join(self, message_id: str, total: int, seq: int, data: bytes, now: float) -> bytes | None:
        for key in [k for k, (deadline, _) in self._pending.items() if deadline < now]:
            log.warning("dropped an incomplete split message %s", key)
            del self._pending[key]
        if total <= 1:
            return data
        if not 0 <= seq < total:
            raise BadRequest(f"part {seq} of a message in {total} parts")
        deadline, parts = self._pending.get(message_id, (now + PART_TTL, [None] * total))
        if len(parts) != total:
            raise BadRequest(f"message {message_id} changed its number of parts")
        parts[seq] = data
        if any(p is None for p in parts):
            self._pending[message_id] = (deadline, parts)
            return None
        self._pending.pop(message_id, None)
        return b"".join(p for p in parts if p is not None)


class FeishuStreamClient:
    """One bot's long connection; ``run`` serves it until ``stop`` is set or it breaks."""

    platform = "feishu"

    def __init__(self, bot: BotConfig, deps: Deps, adapter: FeishuPlatform):
        self.bot_id = bot.id
        self.deps = deps
        self.adapter = adapter
        self.app_id = adapter.app_id
        self._app_secret = bot.secret("app_secret")
        self.api_base = adapter.api_base
        self.server_config = ServerConfig()
        self.connection_id = ""  # device_id from the URL, for the logs
        self.pong_timeout = 30.0  # seconds without any frame after a ping before the line counts as dead

    # --- the StreamClient face --------------------------------------------------------------

    def run(self, handle: Handle, stop: threading.Event, on_connected: Callable[[], None]) -> None:
        self.adapter.own_open_id()  # learn the bot's open_id now, not inside the first 3-second answer
        url = self.discover()
        query = parse_qs(urlsplit(url).query)
        self.connection_id = (query.get("device_id") or [""])[0]
        try:
            service_id = int((query.get("service_id") or ["0"])[0])
        except ValueError:
            raise StreamError(f"feishu gateway URL with a bad service_id: {_safe(url)}") from None
        conn = self._open(url)
        log.info("bot %s: long connection open (conn_id=%s)", self.bot_id, self.connection_id)
        try:
            on_connected()
            self._serve(conn, service_id, handle, stop)
        finally:
            conn.close()
        log.info("bot %s: long connection closed (conn_id=%s)", self.bot_id, self.connection_id)

    # --- step 1: endpoint discovery -----------------------------------------------------------

    def discover(self) -> str:
        """The gateway URL for this app, and the gateway's ClientConfig into ``server_config``."""
        if not self.app_id or not self._app_secret:
            raise StreamAuthError(
                f"bot {self.bot_id}: app_id and app_secret are required for the Feishu long connection "
                "(开发者后台 → 凭证与基础信息)",
                code="config",
            )
        try:
            resp = self.deps.http.post(
                self.api_base + ENDPOINT_PATH,
                json={"AppID": self.app_id, "AppSecret": self._app_secret},
                headers={"locale": "zh"},
                timeout=DISCOVERY_TIMEOUT,
            )
        except requests.RequestException as exc:
            raise StreamError(
                f"bot {self.bot_id}: cannot reach {self.api_base}{ENDPOINT_PATH} ({type(exc).__name__})",
                code="connection",
            ) from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        msg = str(body.get("msg") or resp.reason or "")
        if resp.status_code != 200:
            raise StreamError(
                f"bot {self.bot_id}: feishu endpoint discovery: HTTP {resp.status_code} {msg}",
                code=f"http{resp.status_code}",
            )
        code = body.get("code")
        if code == OK:
            data = body.get("data")
            data = data if isinstance(data, dict) else {}
            url = data.get("URL")
            if not isinstance(url, str) or not url.startswith(("wss://", "ws://")):
                raise StreamError(f"bot {self.bot_id}: feishu endpoint discovery gave no URL", code="no-url")
            self.server_config.update(data.get("ClientConfig"))
            return url
        if code in (SYSTEM_BUSY, INTERNAL_ERROR) or not isinstance(code, int):
            raise StreamError(
                f"bot {self.bot_id}: feishu endpoint discovery: code={code} msg={msg} (Feishu is busy; retrying)",
                code=str(code),
            )
        raise StreamAuthError(
            f"bot {self.bot_id}: Feishu refused the long connection for app {self.app_id}: code={code} "
            f"msg={msg}. Check app_id and app_secret (开发者后台 → 凭证与基础信息), that the app is a "
            "企业自建应用 with a published version, and that api_base is the app's own platform "
            "(open.feishu.cn; Lark tenants: open.larksuite.com)",
            code=str(code),
        )

    # --- step 2: the websocket ----------------------------------------------------------------

    def _open(self, url: str) -> ClientConnection:
        try:
            return connect(
                url,
                open_timeout=10,
                close_timeout=3,  # a stop (SIGTERM) waits at most this for the gateway's close frame
                max_size=4 * 1024 * 1024,
                compression=None,
                **_DIRECT,
            )
        except InvalidStatus as exc:
            raise self._refused(exc) from None
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            raise StreamError(
                f"bot {self.bot_id}: cannot open the feishu long connection to {_safe(url)}: {exc}",
                code="handshake",
            ) from None

    def _refused(self, exc: InvalidStatus) -> StreamError:
        headers = exc.response.headers
        status, msg = headers.get(HDR_STATUS), headers.get(HDR_MSG, "")
        auth_code = headers.get(HDR_AUTH_CODE, "")
        where = f"bot {self.bot_id}: the feishu gateway refused the connection"
        if status is None:
            return StreamError(
                f"{where}: HTTP {exc.response.status_code}", code=f"http{exc.response.status_code}"
            )
        if status == str(AUTH_FAILED) and auth_code == str(EXCEED_CONN_LIMIT):
            return StreamError(
                f"{where}: {msg} (code {auth_code}): the app already holds the maximum of 50 long "
                "connections; stop other clients of the same app",
                code=auth_code,
            )
        if status == str(FORBIDDEN):
            return StreamAuthError(
                f"{where}: forbidden ({msg}). Long connections work only for 企业自建应用; check the app "
                "type and its 事件与回调 settings",
                code=status,
            )
        return StreamError(f"{where}: status {status} {msg} {auth_code}".rstrip(), code=status)

    # --- step 3: frames --------------------------------------------------------------------

    def _serve(self, conn: ClientConnection, service_id: int, handle: Handle, stop: threading.Event) -> None:
        parts = _Parts()
        next_ping = time.monotonic()  # the SDKs ping right after connecting, then every interval
        waiting_since: float | None = None  # when the oldest unanswered ping went out
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_ping:
                ping = Frame(service=service_id, method=CONTROL, headers=(("type", "ping"),))
                self._send(conn, encode(ping))
                waiting_since = waiting_since or now
                next_ping = now + self.server_config.ping_interval
            if waiting_since is not None and now - waiting_since > self.pong_timeout:
                raise StreamError(
                    f"bot {self.bot_id}: no answer from the feishu gateway for {self.pong_timeout:.0f} s "
                    "after a ping",
                    code="pong-timeout",
                )
            try:
                message = conn.recv(timeout=min(POLL, max(0.0, next_ping - now)))
            except TimeoutError:
                continue
            except ConnectionClosed as exc:
                raise StreamError(
                    f"bot {self.bot_id}: the feishu gateway closed the connection ({_closed(exc)})",
                    code=str(exc.rcvd.code) if exc.rcvd else "closed",
                ) from None
            waiting_since = None  # any frame shows the line is alive
            if isinstance(message, str):
                log.warning("bot %s: ignored a text frame from the feishu gateway", self.bot_id)
                continue
            try:
                frame = decode(message)
            except FrameError as exc:
                log.warning("bot %s: ignored an unreadable frame: %s", self.bot_id, exc)
                continue
            if frame.method == CONTROL:
                self._control(frame)
            elif frame.method == DATA:
                self._data(conn, frame, parts, handle)

    def _control(self, frame: Frame) -> None:
        if frame.header("type") == "pong" and frame.payload:
            try:
                self.server_config.update(json.loads(frame.payload))
            except ValueError:
                log.warning("bot %s: a pong with an unreadable ClientConfig", self.bot_id)

    def _data(self, conn: ClientConnection, frame: Frame, parts: _Parts, handle: Handle) -> None:
        kind, message_id = frame.header("type"), frame.header("message_id")
        try:
            total, seq = int(frame.header("sum", "1")), int(frame.header("seq", "0"))
        except ValueError:
            total, seq = 0, -1
        started = time.monotonic()
        callback = False
        try:
            payload = parts.join(message_id, total, seq, frame.payload, started)
            if payload is None:
                return  # more parts to come; the last one is answered
            if kind != "event":
                # "card" is the legacy message-card callback; the SDKs leave it unanswered too.
                log.warning("bot %s: ignored a %r frame (message_id=%s)", self.bot_id, kind, message_id)
                return
            result = self.adapter.parse_stream(payload, self.deps.clock())
            if isinstance(result, Inbound):
                callback = result.kind in ("action", "form")
                response = handle(result)
            else:
                response = result
            code = response.status
        except (BadRequest, SignatureError) as exc:
            # Feishu would redeliver a broken event for hours; as on the webhook path it gets a 400.
            log.warning("bot %s: refused event (message_id=%s): %s", self.bot_id, message_id, exc)
            response, code = WebResponse(400, {"msg": str(exc)}), 400
        except Exception:
            log.exception(
                "bot %s: handling message_id=%s failed; Feishu will redeliver", self.bot_id, message_id
            )
            response, code = WebResponse(500, {}), 500
        elapsed = time.monotonic() - started
        if elapsed > ANSWER_BUDGET:
            log.warning(
                "bot %s: message_id=%s took %.1f s (Feishu redelivers after %.0f s; the dedupe absorbs it)",
                self.bot_id,
                message_id,
                elapsed,
                ANSWER_BUDGET,
            )
        answer: dict[str, Any] = {"code": code, "headers": {}}
        if callback and code == 200 and response.body:
            answer["data"] = base64.b64encode(_json_bytes(response.body)).decode("ascii")
        reply = frame.answered(_json_bytes(answer), biz_rt=str(int(elapsed * 1000)))
        self._send(conn, encode(reply))

    def _send(self, conn: ClientConnection, data: bytes) -> None:
        try:
            conn.send(data)
        except ConnectionClosed as exc:
            # An event handled but not acknowledged is redelivered by Feishu and deduped by us.
            raise StreamError(
                f"bot {self.bot_id}: the feishu connection broke while sending ({_closed(exc)})",
                code="closed",
            ) from None


# Like the SDK, dial the gateway directly: websockets 15 would otherwise pick up HTTP(S)_PROXY
# (office proxies rarely pass websockets through); older versions have no ``proxy`` argument.
_DIRECT: dict[str, Any] = {"proxy": None} if "proxy" in inspect.signature(connect).parameters else {}


def _json_bytes(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _closed(exc: ConnectionClosed) -> str:
    if exc.rcvd is not None:
        return f"code {exc.rcvd.code} {exc.rcvd.reason}".rstrip()
    return "no close frame: the line dropped"


def _safe(url: str) -> str:
    """The gateway URL without its query (it carries an access key and a ticket)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def build(bot: BotConfig, deps: Deps, platform: Platform) -> FeishuStreamClient:
    if not isinstance(platform, FeishuPlatform):
        raise TypeError(f"bot {bot.id}: the feishu stream client needs the feishu adapter")
    return FeishuStreamClient(bot, deps, platform)
