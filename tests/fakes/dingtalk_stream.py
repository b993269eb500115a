"""DingTalk's Stream gateway on 127.0.0.1: the websocket half of ``FakeDingTalk``.

Built from the official SDKs' source (``dingtalk-stream`` 0.24 for Python: ``stream.py``,
``frames.py``, ``handlers.py``; ``dingtalk-stream-sdk-go``: ``client/client.go``,
``payload/data_frame.go``) and DingTalk's 互动卡片 事件回调 page, not from planloop's client:

- ``POST /v1.0/gateway/connections/open`` (served by FakeDingTalk's HTTP app, see
  ``open_connection``) checks ``clientId``/``clientSecret`` and the ``subscriptions`` list and
  answers ``{endpoint, ticket}``; a ticket opens one websocket, once.
- Frames go out as ``{specVersion, type, headers: {appId, connectionId, contentType, messageId,
  topic, time}, data: "<JSON string>"}``; the client answers each with ``{code, headers:
  {contentType, messageId}, message, data: "<JSON string>"}``.
- A CALLBACK frame stays pending until a ``code: 200`` ack with its messageId arrives; frames still
  pending when a connection ends are delivered again, with the same messageId, on the next
  connection (what the SDKs' "ack or DingTalk retries" contract implies; the exact retry timing
  of the real gateway is not documented).
- SYSTEM ``ping`` (the client echoes the data) and ``disconnect`` (the client opens a new
  connection); ``drop()`` cuts every connection without a word, as a network failure would.

The gateway counts live connections per clientId (``max_live``) so tests can prove that only
one worker held the bot's connection at a time.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

TOPICS = {"/v1.0/im/bot/messages/get", "/v1.0/card/instances/callback"}
TICKET_SECONDS = 90.0


@dataclass
class Pending:
    message_id: str
    topic: str
    frame: str
    deliveries: int = 0


@dataclass
class Ticket:
    client_id: str
    topics: set[str]
    expires: float


@dataclass
class Live:
    connection_id: str
    client_id: str
    topics: set[str]
    ws: ServerConnection
    pongs: list[str] = field(default_factory=list)


class FakeStreamGateway:
    def __init__(self, app_key: str, app_secret: str):
        self.app_key, self.app_secret = app_key, app_secret
        self.lock = threading.Condition()
        self.tickets: dict[str, Ticket] = {}
        self.live: dict[str, Live] = {}
        self.pending: dict[str, Pending] = {}  # messageId -> frame not yet acknowledged with 200
        self.acks: dict[str, dict[str, Any]] = {}  # messageId -> the client's ack
        self.refused: dict[str, dict[str, Any]] = {}  # messageId -> an ack with another code
        self.bad_acks: list[str] = []  # answers that do not have the ack's shape
        self.opened = 0  # connections/open answered with a ticket
        self.connections = 0  # websockets accepted
        self.max_live = 0
        self.opens_refused = 0
        self.lose_acks = 0  # knob: drop the connection on the next N acks, before recording them
        self.lost_acks = 0
        self._turn = 0
        self.server: Server = serve(
            self._session, "127.0.0.1", 0, process_request=self._check_ticket, ping_interval=None
        )
        self.port = self.server.socket.getsockname()[1]
        self.endpoint = f"ws://127.0.0.1:{self.port}/connect"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.drop()
        self.server.shutdown()
        self.thread.join(5)

    # ------------------------------------------------------------ HTTP: connections/open

    def open_connection(self, body: Any) -> tuple[int, dict[str, Any]]:
        """``POST /v1.0/gateway/connections/open``: ``(status, answer)``."""
        if not isinstance(body, dict):
            return 400, {"code": "invalidParameter", "message": "body must be a JSON object"}
        if body.get("clientId") != self.app_key or body.get("clientSecret") != self.app_secret:
            with self.lock:
                self.opens_refused += 1
            return 401, {"code": "InvalidAuthentication", "message": "clientId 或 clientSecret 不正确"}
        subscriptions = body.get("subscriptions")
        if (
            not isinstance(subscriptions, list)
            or not subscriptions
            or not all(
                isinstance(s, dict)
                and s.get("type") in ("EVENT", "CALLBACK", "SYSTEM")
                and isinstance(s.get("topic"), str)
                for s in subscriptions
            )
        ):
            return 400, {"code": "invalidParameter", "message": "subscriptions 需要 [{type, topic}]"}
        if not isinstance(body.get("ua"), str):
            return 400, {"code": "invalidParameter", "message": "ua 必填"}
        ticket = uuid.uuid4().hex
        topics = {s["topic"] for s in subscriptions if s["type"] == "CALLBACK"}
        with self.lock:
            self.tickets[ticket] = Ticket(self.app_key, topics, time.monotonic() + TICKET_SECONDS)
            self.opened += 1
        return 200, {"endpoint": self.endpoint, "ticket": ticket}

    # ------------------------------------------------------------ websocket

    def _check_ticket(self, conn: ServerConnection, request: Any) -> Any:
        query = parse_qs(urlsplit(request.path).query)
        ticket = (query.get("ticket") or [""])[0]
        with self.lock:
            grant = self.tickets.pop(ticket, None)
        if grant is None or grant.expires < time.monotonic():
            return conn.respond(HTTPStatus.UNAUTHORIZED, "ticket invalid or used\n")
        conn.ticket_grant = grant  # type: ignore[attr-defined]
        return None

    def _session(self, ws: ServerConnection) -> None:
        grant: Ticket = ws.ticket_grant  # type: ignore[attr-defined]
        live = Live(uuid.uuid4().hex[:12], grant.client_id, grant.topics, ws)
        with self.lock:
            self.live[live.connection_id] = live
            self.connections += 1
            self.max_live = max(
                self.max_live, sum(1 for x in self.live.values() if x.client_id == live.client_id)
            )
            backlog = [p for p in self.pending.values() if p.topic in live.topics]
        try:
            for item in backlog:  # what an earlier connection left unacknowledged
                self._deliver(live, item)
            for raw in ws:
                self._answer(live, raw)
        except ConnectionClosed:
            pass
        finally:
            with self.lock:
                self.live.pop(live.connection_id, None)
                self.lock.notify_all()

    def _answer(self, live: Live, raw: str | bytes) -> None:
        try:
            ack = json.loads(raw)
            headers = ack["headers"]
            message_id = headers["messageId"]
            ok = (
                isinstance(ack["code"], int)
                and headers.get("contentType") == "application/json"
                and isinstance(ack.get("message"), str)
                and isinstance(ack.get("data"), str)
            )
            if ack["data"]:
                json.loads(ack["data"])  # data travels as a JSON string
        except (ValueError, KeyError, TypeError):
            ok, message_id, ack = False, "", {}
        with self.lock:
            if ok and message_id in self.pending and self.lose_acks > 0:
                # the ack is lost on the way (the link failed): DingTalk still counts it pending
                self.lose_acks -= 1
                self.lost_acks += 1
                try:
                    live.ws.socket.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if not ok:
                self.bad_acks.append(raw if isinstance(raw, str) else raw.decode())
            elif message_id.startswith("ping-"):
                live.pongs.append(ack["data"])
            elif message_id in self.pending:
                if ack["code"] == 200:
                    self.acks[message_id] = ack
                    del self.pending[message_id]
                else:
                    self.refused[message_id] = ack
                    if ack["code"] == 400:  # the client says it can never take it
                        del self.pending[message_id]
            self.lock.notify_all()

    def _deliver(self, live: Live, item: Pending) -> bool:
        item.deliveries += 1
        frame = json.loads(item.frame)
        frame["headers"]["connectionId"] = live.connection_id
        try:
            live.ws.send(json.dumps(frame, ensure_ascii=False))
            return True
        except ConnectionClosed:
            return False

    # ------------------------------------------------------------ DingTalk's side

    def push(self, topic: str, data: dict[str, Any]) -> str:
        """Deliver a CALLBACK frame to one live connection subscribed to ``topic`` (or to the next
        one that connects); returns its messageId."""
        message_id = uuid.uuid4().hex
        frame = {
            "specVersion": "1.0",
            "type": "CALLBACK",
            "headers": {
                "appId": self.app_key,
                "connectionId": "",
                "contentType": "application/json",
                "messageId": message_id,
                "topic": topic,
                "time": str(int(time.time() * 1000)),
            },
            "data": json.dumps(data, ensure_ascii=False),
        }
        item = Pending(message_id, topic, json.dumps(frame, ensure_ascii=False))
        with self.lock:
            self.pending[message_id] = item
            targets = [x for x in self.live.values() if topic in x.topics]
            self._turn += 1
        if targets:
            self._deliver(targets[self._turn % len(targets)], item)
        return message_id

    def wait_ack(self, message_id: str, timeout: float = 5.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while message_id not in self.acks and message_id not in self.refused:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.lock.wait(left)
            return self.acks.get(message_id) or self.refused.get(message_id)

    def wait_live(self, count: int = 1, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.live) != count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(min(left, 0.05))
            return True

    def ping(self, timeout: float = 5.0) -> list[str]:
        """A SYSTEM ping to every live connection; the data each echoed."""
        with self.lock:
            lives = list(self.live.values())
        sent = []
        for live in lives:
            opaque = json.dumps({"opaque": uuid.uuid4().hex})
            frame = {
                "specVersion": "1.0",
                "type": "SYSTEM",
                "headers": {
                    "contentType": "application/json",
                    "messageId": f"ping-{uuid.uuid4().hex}",
                    "topic": "ping",
                },
                "data": opaque,
            }
            live.ws.send(json.dumps(frame))
            sent.append((live, opaque))
        deadline = time.monotonic() + timeout
        echoed: list[str] = []
        for live, opaque in sent:
            with self.lock:
                while opaque not in live.pongs and time.monotonic() < deadline:
                    self.lock.wait(0.05)
                if opaque in live.pongs:
                    echoed.append(opaque)
        return echoed

    def ask_disconnect(self) -> None:
        """SYSTEM ``disconnect`` to every live connection (the gateway is being redeployed)."""
        with self.lock:
            lives = list(self.live.values())
        for live in lives:
            frame = {
                "specVersion": "1.0",
                "type": "SYSTEM",
                "headers": {
                    "contentType": "application/json",
                    "messageId": uuid.uuid4().hex,
                    "topic": "disconnect",
                },
                "data": "{}",
            }
            try:
                live.ws.send(json.dumps(frame))
            except ConnectionClosed:
                pass

    def drop(self) -> None:
        """Cut every live connection as a network failure would (no close handshake)."""
        with self.lock:
            lives = list(self.live.values())
        for live in lives:
            try:
                live.ws.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def when(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()
