"""A fake WeCom 智能机器人 long-connection gateway on a real loopback WebSocket.

Built from developer.work.weixin.qq.com path/101463 and the official SDKs' source
(WecomTeam/aibot-node-sdk src/ws.ts, src/client.ts, src/types; wecom-aibot-python-sdk 1.0.2),
never from planloop's code. What it checks, as WeCom does:

- the first frame is ``aibot_subscribe`` with the right ``bot_id`` and ``secret``; the answer is
  ``{headers: {req_id}, errcode, errmsg}`` echoing the subscribe's req_id; a refused one is
  answered with an errcode and the socket closed;
- one live connection per bot: a second subscribe gets the older connection an
  ``aibot_event_callback`` with eventtype ``disconnected_event``, then that one is closed;
- ``ping`` is answered with errcode 0 and its req_id; pings are recorded (intervals are checked);
- a reply carries the req_id of a callback delivered on the same connection (else 846605
  "invalid req_id", the code the official OpenClaw plugin handles); ``aibot_respond_msg`` only
  for a message callback (msgtype stream / template_card / stream_with_template_card, stream
  content at most 20480 bytes); ``aibot_respond_update_msg`` only for a template_card_event,
  ``response_type = update_template_card``, the event's task_id, within 5 s of the event;
  ``aibot_respond_welcome_msg`` only for enter_chat within 5 s;
- ``aibot_send_msg`` only to a chat (userid or chatid) that has talked to the bot, at most 30 a
  minute per chat (45009 beyond).

The errcodes for an expired update window, a chat that never talked to the bot and a wrong
secret are not documented; the fake uses the ones named below (see docs/wecom.md).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

ERR_INVALID_REQ_ID = 846605
ERR_EXPIRED = 846608  # the official plugin's "update expired" code; used for the 5 s window too
ERR_NO_CONVERSATION = 846609  # fake's own: a push to a chat that never talked to the bot
ERR_BAD_SECRET = 853000  # "signature is incorrect, please check if the bot secret is correct"
ERR_BAD_BODY = 40058  # WeCom's generic "invalid parameter"
ERR_FREQ = 45009
CARD_TYPES = {"text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction"}
_TASK_ID = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")
UPDATE_WINDOW = 5.0
STREAM_BYTES = 20480


@dataclass
class Callback:
    req_id: str
    cmd: str
    body: dict[str, Any]
    connection: int
    sent_at: float
    replies: int = 0


@dataclass
class Conn:
    number: int
    ws: ServerConnection
    bot_id: str = ""
    kicked: bool = False


@dataclass
class Record:
    connection: int
    frame: dict[str, Any]
    errcode: int
    at: float = field(default_factory=time.monotonic)


class FakeWeComAIBot:
    def __init__(self, bot_id: str, secret: str, *, update_window: float = UPDATE_WINDOW):
        self.bot_id = bot_id
        self.secret = secret
        self.update_window = update_window
        self.url = ""
        self.connections: list[Conn] = []
        self.live: Conn | None = None
        self.callbacks: dict[str, Callback] = {}
        self.frames: list[Record] = []  # every frame a client sent, with the errcode it got
        self.pings: list[tuple[int, float]] = []
        self.talked: set[str] = set()
        self.pushes: list[dict[str, Any]] = []
        self._push_times: dict[str, list[float]] = {}
        self.stall_answers = False  # the gateway stops answering (replies and pings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._ready = threading.Event()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ life cycle

    def start(self) -> FakeWeComAIBot:
        self._thread = threading.Thread(target=self._main, name="fake-wecom-aibot", daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "the fake gateway did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        if self._thread is not None:
            self._thread.join(5)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        async with serve(self._connection, "127.0.0.1", 0, ping_interval=None) as server:
            self._server = server
            port = server.sockets[0].getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}"
            self._ready.set()
            await self._stopped.wait()

    async def _shutdown(self) -> None:
        self._server.close()
        self._stopped.set()

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    # ------------------------------------------------------------ the protocol

    async def _connection(self, ws: ServerConnection) -> None:
        with self._lock:
            conn = Conn(len(self.connections) + 1, ws)
            self.connections.append(conn)
        try:
            raw = await asyncio.wait_for(ws.recv(), 10)
            frame = json.loads(raw)
            rid = str((frame.get("headers") or {}).get("req_id", ""))
            body = frame.get("body") or {}
            if frame.get("cmd") != "aibot_subscribe" or not rid:
                await self._answer(conn, frame, ERR_BAD_BODY, "expected aibot_subscribe first")
                await ws.close(1008, "not subscribed")
                return
            if body.get("bot_id") != self.bot_id or body.get("secret") != self.secret:
                await self._answer(
                    conn,
                    frame,
                    ERR_BAD_SECRET,
                    "signature is incorrect, please check if the bot secret is correct",
                )
                await ws.close(1000, "auth failed")
                return
            older = self.live
            conn.bot_id = self.bot_id
            self.live = conn
            await self._answer(conn, frame, 0, "ok")
            if older is not None and older is not conn:
                older.kicked = True
                await self._push_frame(
                    older, "aibot_event_callback", self._event_body("", "disconnected_event")
                )
                await older.ws.close(1000, "new connection established")
            async for raw in ws:
                await self._frame(conn, json.loads(raw))
        except (ConnectionClosed, TimeoutError):
            pass
        finally:
            if self.live is conn:
                self.live = None

    async def _answer(self, conn: Conn, frame: dict[str, Any], errcode: int, errmsg: str) -> None:
        rid = str((frame.get("headers") or {}).get("req_id", ""))
        with self._lock:
            self.frames.append(Record(conn.number, frame, errcode))
        if self.stall_answers and frame.get("cmd") != "aibot_subscribe":
            return
        await conn.ws.send(json.dumps({"headers": {"req_id": rid}, "errcode": errcode, "errmsg": errmsg}))

    async def _frame(self, conn: Conn, frame: dict[str, Any]) -> None:
        cmd = frame.get("cmd")
        rid = str((frame.get("headers") or {}).get("req_id", ""))
        body = frame.get("body") if isinstance(frame.get("body"), dict) else {}
        if cmd == "ping":
            self.pings.append((conn.number, time.monotonic()))
            await self._answer(conn, frame, 0, "ok")
            return
        if cmd == "aibot_send_msg":
            await self._answer(conn, frame, *self._check_push(body))
            return
        if cmd in ("aibot_respond_msg", "aibot_respond_update_msg", "aibot_respond_welcome_msg"):
            await self._answer(conn, frame, *self._check_reply(conn, str(cmd), rid, body))
            return
        await self._answer(conn, frame, ERR_BAD_BODY, f"unknown cmd {cmd!r}")

    def _check_reply(self, conn: Conn, cmd: str, rid: str, body: dict[str, Any]) -> tuple[int, str]:
        cb = self.callbacks.get(rid)
        if cb is None or cb.connection != conn.number:
            return ERR_INVALID_REQ_ID, "invalid req_id"
        kind = event_type(cb.body)
        if cmd == "aibot_respond_msg":
            if cb.cmd != "aibot_msg_callback":
                return ERR_INVALID_REQ_ID, "invalid req_id: not a message callback"
            problem = check_reply_body(body)
        elif cmd == "aibot_respond_update_msg":
            if kind != "template_card_event":
                return ERR_INVALID_REQ_ID, "invalid req_id: not a template_card_event"
            if time.monotonic() - cb.sent_at > self.update_window:
                return ERR_EXPIRED, "template card update expired"
            task = (cb.body["event"].get("template_card_event") or {}).get("task_id")
            problem = check_update_body(body, task)
        else:
            if kind != "enter_chat":
                return ERR_INVALID_REQ_ID, "invalid req_id: not enter_chat"
            if time.monotonic() - cb.sent_at > self.update_window:
                return ERR_EXPIRED, "welcome expired"
            problem = "" if body.get("msgtype") in ("text", "template_card") else "msgtype"
        if problem:
            return ERR_BAD_BODY, f"invalid parameter: {problem}"
        cb.replies += 1
        return 0, "ok"

    def _check_push(self, body: dict[str, Any]) -> tuple[int, str]:
        chat = str(body.get("chatid", ""))
        if chat not in self.talked:
            return ERR_NO_CONVERSATION, "the chat has not talked to the bot"
        msgtype = body.get("msgtype")
        if msgtype == "markdown":
            if not (body.get("markdown") or {}).get("content"):
                return ERR_BAD_BODY, "invalid parameter: markdown.content"
        elif msgtype == "template_card":
            problem = check_card(body.get("template_card"))
            if problem:
                return ERR_BAD_BODY, f"invalid parameter: {problem}"
        else:
            return ERR_BAD_BODY, f"invalid parameter: msgtype {msgtype!r}"
        now = time.monotonic()
        recent = [t for t in self._push_times.get(chat, []) if now - t < 60]
        if len(recent) >= 30:
            return ERR_FREQ, "api freq out of limit"
        self._push_times[chat] = [*recent, now]
        self.pushes.append(body)
        return 0, "ok"

    async def _push_frame(self, conn: Conn, cmd: str, body: dict[str, Any]) -> str:
        rid = secrets.token_hex(12)
        self.callbacks[rid] = Callback(rid, cmd, body, conn.number, time.monotonic())
        await conn.ws.send(
            json.dumps({"cmd": cmd, "headers": {"req_id": rid}, "body": body}, ensure_ascii=False)
        )
        return rid

    def _event_body(self, user: str, eventtype: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "msgid": secrets.token_hex(16),
            "create_time": int(time.time()),
            "aibotid": self.bot_id,
            "from": {"userid": user},
            "msgtype": "event",
            "event": {"eventtype": eventtype, **({eventtype: extra} if extra else {})},
        }
        return body

    # ------------------------------------------------------------ what a person does

    def _deliver(self, cmd: str, body: dict[str, Any]) -> str:
        conn = self.live
        assert conn is not None, "no live connection to push to"
        # A conversation exists where the person talked to the bot: the group, or the direct chat.
        if body.get("chattype") == "group":
            self.talked.add(str(body["chatid"]))
        elif body["from"]["userid"]:
            self.talked.add(str(body["from"]["userid"]))
        result: str = self._call(self._push_frame(conn, cmd, body))
        return result

    def send_text(self, user: str, text: str, *, chatid: str = "", msgid: str = "") -> tuple[str, str]:
        """A person's text (in a group: only what mentions the bot reaches it). (req_id, msgid)."""
        body: dict[str, Any] = {
            "msgid": msgid or secrets.token_hex(16),
            "aibotid": self.bot_id,
            "chattype": "group" if chatid else "single",
            "from": {"userid": user},
            "msgtype": "text",
            "text": {"content": text},
        }
        if chatid:
            body["chatid"] = chatid
        return self._deliver("aibot_msg_callback", body), body["msgid"]

    def click(
        self,
        user: str,
        event_key: str,
        task_id: str,
        *,
        card_type: str = "button_interaction",
        selected: dict[str, list[str]] | None = None,
        msgid: str = "",
    ) -> tuple[str, str]:
        extra: dict[str, Any] = {"card_type": card_type, "event_key": event_key, "task_id": task_id}
        if selected:
            extra["selected_items"] = {
                "selected_item": [
                    {"question_key": k, "option_ids": {"option_id": list(v)}} for k, v in selected.items()
                ]
            }
        body = self._event_body(user, "template_card_event", extra)
        body["chattype"] = "single"
        if msgid:
            body["msgid"] = msgid
        return self._deliver("aibot_event_callback", body), body["msgid"]

    def enter_chat(self, user: str) -> str:
        body = self._event_body(user, "enter_chat")
        body["chattype"] = "single"
        return self._deliver("aibot_event_callback", body)

    def drop(self) -> None:
        """The network fails: the live connection ends without a close handshake."""
        conn = self.live
        assert conn is not None
        self.live = None
        assert self._loop is not None
        self._loop.call_soon_threadsafe(conn.ws.transport.abort)

    # ------------------------------------------------------------ what the tests read

    def replies(self, req_id: str) -> list[Record]:
        with self._lock:
            return [r for r in self.frames if (r.frame.get("headers") or {}).get("req_id") == req_id]

    def wait(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise AssertionError("the fake WeCom AI-bot gateway waited in vain")


def event_type(body: dict[str, Any]) -> str:
    event = body.get("event")
    return str(event.get("eventtype", "")) if isinstance(event, dict) else ""


def check_card(tc: Any) -> str:
    """What WeCom would refuse in a template card ("" when it is fine)."""
    if not isinstance(tc, dict):
        return "template_card"
    kind = tc.get("card_type")
    if kind not in CARD_TYPES:
        return f"card_type {kind!r}"
    task = tc.get("task_id")
    interactive = kind in ("button_interaction", "vote_interaction", "multiple_interaction")
    if (interactive or task) and not (isinstance(task, str) and _TASK_ID.match(task)):
        return "task_id"
    if kind == "text_notice" and not (tc.get("card_action") or {}).get("type"):
        return "text_notice needs card_action"
    if kind == "button_interaction":
        buttons = tc.get("button_list") or []
        if not 1 <= len(buttons) <= 6 or any(not b.get("text") for b in buttons):
            return "button_list"
        keys = [b.get("key") for b in buttons if b.get("type", 0) == 0]
        if any(not k for k in keys) or len(set(keys)) != len(keys):
            return "button_list.key"
    if kind == "multiple_interaction":
        if not 1 <= len(tc.get("select_list") or []) <= 3 or not (tc.get("submit_button") or {}).get("key"):
            return "select_list / submit_button"
    if len(tc.get("jump_list") or []) > 3 or len(tc.get("horizontal_content_list") or []) > 6:
        return "list too long"
    # The "建议" lengths of the AI bot's cards (aibot-node-sdk types/api.ts), held strictly.
    if len((tc.get("main_title") or {}).get("title", "")) > 26 or len(tc.get("sub_title_text", "")) > 112:
        return "main_title.title > 26 or sub_title_text > 112 characters"
    if any(
        len(r.get("keyname", "")) > 5 or len(r.get("value", "")) > 26
        for r in tc.get("horizontal_content_list") or []
    ):
        return "horizontal_content_list keyname > 5 or value > 26 characters"
    if any(len(j.get("title", "")) > 13 for j in tc.get("jump_list") or []):
        return "jump_list.title > 13 characters"
    if any(len(b.get("text", "")) > 10 for b in tc.get("button_list") or []):
        return "button_list.text > 10 characters"
    return ""


def check_reply_body(body: dict[str, Any]) -> str:
    msgtype = body.get("msgtype")
    if msgtype not in ("stream", "template_card", "stream_with_template_card"):
        return f"msgtype {msgtype!r}"
    if msgtype in ("stream", "stream_with_template_card"):
        stream = body.get("stream") or {}
        if not stream.get("id") or len(str(stream.get("content", "")).encode()) > STREAM_BYTES:
            return "stream"
    if msgtype in ("template_card", "stream_with_template_card"):
        return check_card(body.get("template_card"))
    return ""


def check_update_body(body: dict[str, Any], task_id: Any) -> str:
    if body.get("response_type") != "update_template_card":
        return "response_type"
    tc = body.get("template_card")
    problem = check_card(tc)
    if problem:
        return problem
    if tc.get("task_id") != task_id:
        return "task_id differs from the event's"
    return ""
