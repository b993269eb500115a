"""The WeCom 智能机器人 (AI bot) long connection: ``wss://openws.work.weixin.qq.com``.

Protocol (developer.work.weixin.qq.com path/101463; WecomTeam/aibot-node-sdk src/ws.ts and
wecom-aibot-python-sdk 1.0.2 aibot/ws.py): JSON text frames ``{cmd, headers: {req_id}, body}``.
After the socket opens we send ``aibot_subscribe {bot_id, secret}``; the answer is
``{headers: {req_id}, errcode, errmsg}`` with our req_id. Callbacks arrive as
``aibot_msg_callback`` / ``aibot_event_callback`` with WeCom's req_id; a reply carries that req_id
and is answered the same way (errcode 0 = taken). ``ping`` every 30 s keeps the connection;
two unanswered pings mean it is dead. A bot has one live connection: when another subscribes,
WeCom sends the older one an ``aibot_event_callback`` with eventtype ``disconnected_event`` and
closes it.

Why not the official Python SDK: it runs its own reconnect loop (the worker's supervisor owns
retries and the per-bot lease), reports a refused subscribe only as a log line and an error
callback (we must raise StreamAuthError), calls handlers fire-and-forget on its event loop
(we must reply only after the transaction committed, without blocking heartbeats), cannot
drain in-flight frames on SIGTERM, and brings aiohttp, pyee and certifi. The protocol is small;
this client is ~300 lines on ``websockets``.

Order of work per callback: parse (adapter) -> ``handle`` in a thread (dedupe, handlers, outbox,
commit) -> the reply frame with the callback's req_id -> wait for its answer. Callbacks are served
one at a time in arrival order while the reader keeps answering pings. A reply that cannot go
out (connection lost, the 5 s card-update window missed, WeCom refused it) is kept and pushed
with ``aibot_send_msg`` to the same chat once a connection is up again (in this process).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import State

from bot.config import BotConfig
from bot.platforms.base import BadRequest, DeliveryError, Deps, Platform, WebResponse, parse_json
from bot.platforms.stream import Handle, StreamAuthError, StreamError
from bot.platforms.wecom_aibot import (
    EVENT_CALLBACK,
    MSG_CALLBACK,
    RESPOND_UPDATE,
    RESPOND_WELCOME,
    SEND,
    WeComAIBotPlatform,
    event_type,
    hold_connection,
    release_connection,
    reply_as_pushes,
)
from handlers.inbound import Inbound

log = logging.getLogger("planloop.wecom.stream")

DEFAULT_URL = "wss://openws.work.weixin.qq.com"
SUBSCRIBE = "aibot_subscribe"
PING = "ping"
HEARTBEAT_SECONDS = 30.0
MISSED_PINGS = 2  # unanswered pings in a row before the connection counts as dead (the SDKs' rule)
ANSWER_SECONDS = 5.0  # how long a reply or push waits for WeCom's answer (the SDKs' ack timeout)
OPEN_SECONDS = 10.0
RETRY_CODES = {-1, 45009, 45033}  # busy / rate limited: a subscribe refused with these is retried
MAX_FRAME = 1 << 20
KEEP_UNDELIVERED = 200
UPDATE_WINDOW = 5.0  # seconds after a card event in which aibot_respond_update_msg is taken


def req_id(prefix: str) -> str:
    return f"{prefix}_{int(time.time() * 1000)}_{secrets.token_hex(4)}"


class WeComStreamClient:
    """One AI bot's connection; ``run`` is called again by the supervisor after each failure."""

    platform = "wecom"

    def __init__(self, bot: BotConfig, deps: Deps, adapter: WeComAIBotPlatform):
        self.bot_id = bot.id
        self.deps = deps
        self.adapter = adapter
        self.url = str(bot.get("ws_url", DEFAULT_URL))
        self.aibot_id = str(bot.get("bot_id", ""))
        self._secret = bot.secret("bot_secret")
        self.heartbeat = float(bot.get("heartbeat_seconds", HEARTBEAT_SECONDS))
        self.answer_timeout = float(bot.get("answer_seconds", ANSWER_SECONDS))
        self._undelivered: deque[dict[str, Any]] = deque(maxlen=KEEP_UNDELIVERED)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws: ClientConnection | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._kicked = False
        self._missed = 0
        self._resend_lock: asyncio.Lock | None = None

    # ------------------------------------------------------------ the StreamClient face

    def run(self, handle: Handle, stop: threading.Event, on_connected: Callable[[], None]) -> None:
        asyncio.run(self._session(handle, stop, on_connected))

    def push(self, body: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """``aibot_send_msg`` from any thread (the outbox relay); WeCom's answer, or DeliveryError."""
        loop = self._loop
        if loop is None or self._ws is None:
            raise DeliveryError(
                "the WeCom AI bot is not connected", retry=True, retry_after=15.0, code="no_connection"
            )
        wait = timeout or self.answer_timeout
        future: Future[dict[str, Any]] = asyncio.run_coroutine_threadsafe(
            self._request(SEND, req_id(SEND), body), loop
        )
        try:
            answer = future.result(wait + 1)
        except (TimeoutError, ConnectionClosed, asyncio.CancelledError, OSError) as exc:
            raise DeliveryError(
                f"aibot_send_msg got no answer ({type(exc).__name__})", retry=True, code="timeout"
            ) from None
        return _checked(answer, "aibot_send_msg")

    # ------------------------------------------------------------ one connection

    async def _session(self, handle: Handle, stop: threading.Event, on_connected: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._resend_lock = asyncio.Lock()
        self._kicked = False
        self._missed = 0
        try:
            ws = await connect(
                self.url, open_timeout=OPEN_SECONDS, ping_interval=None, close_timeout=5, max_size=MAX_FRAME
            )
        except (OSError, InvalidURI, InvalidHandshake, TimeoutError) as exc:
            raise StreamError(f"cannot open {self.url}: {exc}", code=type(exc).__name__) from None
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        reader = asyncio.create_task(self._read(ws, queue))
        tasks: list[asyncio.Task[Any]] = [reader]
        try:
            await self._subscribe(ws)
            self._ws = ws
            hold_connection(self.bot_id, self)
            log.info("WeCom AI bot %s connected to %s", self.bot_id, self.url)
            on_connected()
            draining = asyncio.Event()
            server = asyncio.create_task(self._serve(ws, queue, handle, draining))
            heart = asyncio.create_task(self._heartbeat(ws))
            stopper = asyncio.create_task(_wait_for(stop))
            tasks += [server, heart, stopper]
            tasks.append(asyncio.create_task(self._resend_undelivered()))
            done, _ = await asyncio.wait(
                {reader, server, heart, stopper}, return_when=asyncio.FIRST_COMPLETED
            )
            if stopper in done:
                # SIGTERM: serve what already arrived (each reply included), then close cleanly.
                draining.set()
                await queue.put({})
                await asyncio.wait({server, reader}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
                await ws.close(1000, "planloop worker stopping")
                log.info("WeCom AI bot %s closed its connection (stopping)", self.bot_id)
                return
            if server in done and server.exception() is not None:
                raise server.exception()  # type: ignore[misc]
            error = next((t.exception() for t in done if t.exception() is not None), None)
            # The connection ended (or its heartbeat did): finish what already arrived (its commit
            # stands; its reply is kept and pushed on the next connection), then report the loss.
            draining.set()
            await queue.put({})
            await asyncio.wait({server}, timeout=30)
            raise error or self._lost(ws)
        finally:
            release_connection(self.bot_id, self)
            self._ws = None
            for task in tasks:
                task.cancel()
            self._fail_waiters()
            self._waiting.clear()
            await ws.close()

    def _lost(self, ws: ClientConnection) -> StreamError:
        if self._kicked:
            return StreamError(
                "WeCom closed this connection because another one subscribed for the same AI bot "
                f"({self.aibot_id}): is a second planloop (or another program) using this bot?",
                code="disconnected_event",
            )
        code = ws.close_code
        return StreamError(
            f"WeCom closed the connection (code {code}, {ws.close_reason or 'no reason'})", code=str(code)
        )

    async def _subscribe(self, ws: ClientConnection) -> None:
        body = {"bot_id": self.aibot_id, "secret": self._secret}
        try:
            answer = await asyncio.wait_for(
                self._request(SUBSCRIBE, req_id(SUBSCRIBE), body, ws=ws), OPEN_SECONDS
            )
        except (TimeoutError, ConnectionError, ConnectionClosed) as exc:
            raise StreamError(
                f"aibot_subscribe got no answer ({type(exc).__name__})", code="subscribe"
            ) from None
        errcode = _errcode(answer)
        if errcode == 0:
            return
        message = f"WeCom refused aibot_subscribe: {errcode} {str(answer.get('errmsg', ''))[:200]}"
        if errcode in RETRY_CODES:
            raise StreamError(message, code=str(errcode))
        raise StreamAuthError(
            message + " — check bot_id and bot_secret against the admin console "
            "(应用管理 → 智能机器人 → the bot → API 模式, 长连接: Bot ID and Secret)",
            code=str(errcode),
        )

    async def _request(
        self, cmd: str, rid: str, body: dict[str, Any] | None, ws: ClientConnection | None = None
    ) -> dict[str, Any]:
        """Send one frame and wait for the answer carrying its req_id."""
        conn = ws or self._ws
        if conn is None or conn.state is not State.OPEN:
            raise ConnectionError("not connected")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiting[rid] = waiter
        frame: dict[str, Any] = {"cmd": cmd, "headers": {"req_id": rid}}
        if body is not None:
            frame["body"] = body
        try:
            await conn.send(json.dumps(frame, ensure_ascii=False))
            return await asyncio.wait_for(waiter, self.answer_timeout)
        finally:
            if self._waiting.get(rid) is waiter:
                del self._waiting[rid]

    async def _read(self, ws: ClientConnection, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Answers go to their waiters; callbacks to the queue. Returns when the connection ends."""
        try:
            async for raw in ws:
                try:
                    frame = parse_json(raw, "WeCom AI bot frame")  # bounded like every body we parse
                except BadRequest:
                    log.warning("WeCom AI bot %s: a frame that is not JSON was ignored", self.bot_id)
                    continue
                if not isinstance(frame, dict):
                    continue
                cmd = frame.get("cmd") or ""
                rid = str((frame.get("headers") or {}).get("req_id", ""))
                if cmd in (MSG_CALLBACK, EVENT_CALLBACK):
                    body = frame.get("body")
                    if isinstance(body, dict) and event_type(body) == "disconnected_event":
                        self._kicked = True
                        log.warning(
                            "WeCom AI bot %s: another connection subscribed; this one is closed", self.bot_id
                        )
                        continue
                    frame["_received"] = time.monotonic()
                    await queue.put(frame)
                    continue
                waiter = self._waiting.get(rid)
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
                elif rid.startswith(PING):
                    self._missed = 0
                else:
                    log.debug("WeCom AI bot %s: an answer nobody waits for (%s)", self.bot_id, rid)
        except ConnectionClosed:
            pass
        finally:
            self._fail_waiters()

    def _fail_waiters(self) -> None:
        """Nothing more will be answered on this connection: whoever waits learns it now."""
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("connection closed"))

    async def _heartbeat(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            if self._missed >= MISSED_PINGS:
                await ws.close(1001, "no heartbeat answer")
                raise StreamError(f"no answer to {MISSED_PINGS} pings in a row", code="heartbeat")
            self._missed += 1
            await ws.send(json.dumps({"cmd": PING, "headers": {"req_id": req_id(PING)}}))

    async def _serve(
        self,
        ws: ClientConnection,
        queue: asyncio.Queue[dict[str, Any]],
        handle: Handle,
        draining: asyncio.Event,
    ) -> None:
        while True:
            frame = await queue.get()
            if not frame:  # the stop marker: everything before it has been served
                if draining.is_set():
                    return
                continue
            await self._serve_one(frame, handle)

    async def _serve_one(self, frame: dict[str, Any], handle: Handle) -> None:
        rid = str((frame.get("headers") or {}).get("req_id", ""))
        body = frame.get("body")
        now: datetime = self.deps.clock()
        if isinstance(body, dict) and event_type(body) == "enter_chat":
            await self._reply(rid, self.adapter.welcome(), body, frame["_received"])
            return
        try:
            inbound = self.adapter.parse_callback(str(frame["cmd"]), body, now)
        except ValueError as exc:
            log.warning("WeCom AI bot %s: a callback was ignored: %s", self.bot_id, exc)
            return
        if inbound is None:
            return
        try:
            response = await asyncio.to_thread(handle, inbound)
        except Exception:
            log.exception("WeCom AI bot %s: handling %s failed", self.bot_id, inbound.event_id)
            response = _sorry(inbound)
        reply = response.body if isinstance(response.body, dict) else None
        if reply and reply.get("cmd"):
            await self._reply(rid, reply, body, frame["_received"])

    async def _reply(self, rid: str, reply: Any, callback: Any, received: float) -> None:
        """Send the reply frame; if WeCom cannot take it, keep it to push later to the same chat."""
        cmd, body = str(reply["cmd"]), dict(reply["body"])
        late = cmd in (RESPOND_UPDATE, RESPOND_WELCOME) and time.monotonic() - received > UPDATE_WINDOW
        why = "the 5 s window after the event has passed" if late else ""
        if not late:
            try:
                answer = await self._request(cmd, rid, body)
                if _errcode(answer) == 0:
                    return
                why = f"WeCom refused it: {_errcode(answer)} {str(answer.get('errmsg', ''))[:200]}"
            except (TimeoutError, ConnectionError, ConnectionClosed) as exc:
                why = f"no answer ({type(exc).__name__})"
        chat = _chat_of(callback)
        pushes = reply_as_pushes(cmd, body) if chat else []
        log.warning(
            "WeCom AI bot %s: %s for %s could not be delivered (%s); %d message(s) kept to push",
            self.bot_id,
            cmd,
            rid,
            why,
            len(pushes),
        )
        self._undelivered.extend({"chatid": chat, **p} for p in pushes)
        if pushes and self._ws is not None and self._ws.state is State.OPEN:
            await self._resend_undelivered()

    async def _resend_undelivered(self) -> None:
        assert self._resend_lock is not None
        async with self._resend_lock:
            await self._resend_locked()

    async def _resend_locked(self) -> None:
        while self._undelivered:
            body = self._undelivered[0]
            try:
                answer = await self._request(SEND, req_id(SEND), body)
            except (TimeoutError, ConnectionError, ConnectionClosed):
                return  # try again on the next connection
            self._undelivered.popleft()
            if _errcode(answer) != 0:
                log.warning(
                    "WeCom AI bot %s: a kept reply to %s was refused: %s %s",
                    self.bot_id,
                    body.get("chatid"),
                    _errcode(answer),
                    answer.get("errmsg", ""),
                )


def _errcode(answer: dict[str, Any]) -> int:
    try:
        return int(answer.get("errcode", -1))
    except (TypeError, ValueError):
        return -1


def _checked(answer: dict[str, Any], what: str) -> dict[str, Any]:
    errcode = _errcode(answer)
    if errcode == 0:
        return answer
    text = f"WeCom refused {what}: {errcode} {str(answer.get('errmsg', ''))[:200]}"
    if errcode in RETRY_CODES:
        raise DeliveryError(
            text, retry=True, retry_after=60.0 if errcode == 45009 else 5.0, code=str(errcode)
        )
    raise DeliveryError(text, retry=False, code=str(errcode))


def _chat_of(callback: Any) -> str:
    """Where a push reaches the same conversation: the group's chatid, else the person's userid."""
    if not isinstance(callback, dict):
        return ""
    if callback.get("chattype") == "group" and callback.get("chatid"):
        return str(callback["chatid"])
    return str((callback.get("from") or {}).get("userid", ""))


def _sorry(inbound: Inbound) -> WebResponse:
    """A clear answer when handling failed (nothing was stored): the person can send it again."""
    if inbound.kind != "text":
        return WebResponse(200, b"")
    content = "抱歉，刚才没能处理这条消息（系统繁忙），请稍后再发一次。"
    body = {"msgtype": "stream", "stream": {"id": req_id("sorry"), "finish": True, "content": content}}
    return WebResponse(200, {"cmd": "aibot_respond_msg", "body": body})


async def _wait_for(stop: threading.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.1)


def build(bot: BotConfig, deps: Deps, platform: Platform) -> WeComStreamClient:
    if not isinstance(platform, WeComAIBotPlatform):
        raise TypeError(
            f"bot {bot.id}: a WeCom stream bot needs the AI-bot adapter, got {type(platform).__name__}"
        )
    return WeComStreamClient(bot, deps, platform)
