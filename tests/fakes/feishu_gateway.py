"""A fake Feishu long-connection gateway on 127.0.0.1: endpoint discovery, then pbbp2 frames.

Built from lark-oapi 1.7.5 ``lark_oapi/ws`` (client.py, const.py, model.py, pb/pbbp2_pb2.py),
oapi-sdk-go ``ws/`` and node-sdk ``ws-client/`` (what a client must send and accept), and the
documentation 使用长连接接收事件 / 使用长连接接收回调 (3 s to answer or the event is pushed again;
one random connection of the app gets each event; at most 50 connections per app). Frames are
encoded and read with lark-oapi's own generated protobuf classes, not with planloop's codec.

What the fake checks, as the gateway would:
- discovery: ``POST /callback/ws/endpoint`` with a JSON body ``{"AppID", "AppSecret"}``; a wrong
  pair answers HTTP 200 ``{"code": 1000040345, "msg": "app_id or app_secret is invalid"}`` (the
  code third parties report from the real endpoint; the SDKs treat every code but 0, 1 and
  1000040343 as the client's fault);
- the websocket handshake: the one-time ticket from discovery, and the connection limit
  (``Handshake-Status: 514`` + ``Handshake-Autherrcode: 1000040350`` past ``max_connections``);
- pings: a control frame with ``type=ping`` and the ``service_id`` of the URL, answered with a
  pong carrying the ClientConfig;
- answers: the frame sent back with SeqID, LogID, service, LogIDNew and headers kept, a
  ``biz_rt`` header added, and a JSON payload ``{"code": 200, ...}``; a callback's ``data`` is
  base64 of a JSON object. An event not answered (200) within ``answer_budget`` seconds, or
  answered 5xx, is pushed again, on whatever connection is live by then.
Every violation is appended to ``problems``; tests assert it stays empty.
"""

from __future__ import annotations

import base64
import hmac
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lark_oapi.ws.pb.pbbp2_pb2 import Frame
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

BAD_CREDENTIALS = 1000040345
EXCEED_CONN_LIMIT = 1000040350


@dataclass
class Pushed:
    """One event the gateway holds until it is answered 200."""

    message_id: str
    payload: bytes
    parts: int
    first_sent: float = 0.0
    last_sent: float = 0.0
    deliveries: int = 0
    answer: dict[str, Any] | None = None  # the decoded answer payload (data as JSON)
    answered_after: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)


class FakeGateway:
    def __init__(self, app_id: str, app_secret: str, *, ping_interval: int = 120):
        self.app_id = app_id
        self.app_secret = app_secret
        self.client_config = {
            "PingInterval": ping_interval,
            "ReconnectCount": -1,
            "ReconnectInterval": 120,
            "ReconnectNonce": 30,
        }
        self.service_id = 33554678
        self.max_connections = 50
        self.answer_budget = 3.0
        self.answer_pongs = True
        self.discovery_answer: tuple[int, dict[str, Any]] | None = None  # a scripted discovery answer
        # a scripted handshake refusal: (HTTP status, Handshake-Status, -Msg, -Autherrcode); "" = none
        self.refuse_handshake: tuple[int, str, str, str] | None = None
        self.lose_next_answers = 0  # drop the line as soon as the next N answers arrive, unrecorded
        self.problems: list[str] = []
        self.discoveries = 0
        self.handshakes = 0
        self.pings = 0
        self.pushed: dict[str, Pushed] = {}
        self.connections: list[ServerConnection] = []
        self._tickets: set[str] = set()
        self._sent_frames: dict[tuple[str, int], Frame] = {}
        self._seq = 0
        self._lock = threading.RLock()
        self._server: Any = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.ws_base = ""

    # --- discovery, called by FakeFeishu's /callback/ws/endpoint --------------------------------

    def discover(self, body: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) of ``POST /callback/ws/endpoint``."""
        with self._lock:
            self.discoveries += 1
        if self.discovery_answer is not None:
            return self.discovery_answer
        return 200, self._discovery(body)

    def _discovery(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("AppID"), str):
            return {"code": 1000040344, "msg": "invalid param: AppID is required"}
        if body["AppID"] != self.app_id or not hmac.compare_digest(
            str(body.get("AppSecret", "")), self.app_secret
        ):
            return {"code": BAD_CREDENTIALS, "msg": "app_id or app_secret is invalid"}
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        device = uuid.uuid4().hex[:16]
        url = (
            f"{self.ws_base}/ws/v2?fpid=493&aid=552564&device_id={device}"
            f"&access_key={uuid.uuid4().hex}&service_id={self.service_id}&ticket={ticket}"
        )
        return {"code": 0, "msg": "ok", "data": {"URL": url, "ClientConfig": dict(self.client_config)}}

    # --- control from tests ----------------------------------------------------------------------

    def push(self, event: dict[str, Any], *, parts: int = 1) -> Pushed:
        """Send ``event`` (a v2 event dict) as an ``event`` data frame, split into ``parts``."""
        payload = json.dumps(event, ensure_ascii=False).encode()
        item = Pushed(uuid.uuid4().hex, payload, parts)
        with self._lock:
            self.pushed[item.message_id] = item
        self._deliver(item)
        return item

    def push_legacy_card(self, body: dict[str, Any]) -> str:
        """A ``type=card`` frame (legacy card callback); clients are expected to leave it alone."""
        message_id = uuid.uuid4().hex
        self._send_any(self._data_frame(message_id, "card", 1, 0, json.dumps(body).encode()))
        return message_id

    def wait(self, item: Pushed, timeout: float = 10.0) -> dict[str, Any]:
        assert item.done.wait(timeout), f"no 200 answer to {item.message_id} within {timeout} s"
        assert item.answer is not None
        return item.answer

    def wait_connected(self, count: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.connections) >= count:
                    return
            time.sleep(0.02)
        raise AssertionError(f"{count} connection(s) expected, have {len(self.connections)}")

    def drop(self) -> None:
        """Cut every live connection without a close frame, as a network failure would."""
        with self._lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close_all(self, code: int = 1001, reason: str = "server restart") -> None:
        with self._lock:
            conns = list(self.connections)
        for conn in conns:
            conn.close(code, reason)

    # --- the websocket server ------------------------------------------------------------------

    @contextmanager
    def running(self) -> Iterator[FakeGateway]:
        self._server = serve(self._session, "127.0.0.1", 0, process_request=self._handshake, compression=None)
        self.ws_base = f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}"
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        redeliverer = threading.Thread(target=self._redeliver_loop, daemon=True)
        redeliverer.start()
        try:
            yield self
        finally:
            self._stopping.set()
            self._server.shutdown()
            thread.join(timeout=5)
            redeliverer.join(timeout=5)

    def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        with self._lock:
            self.handshakes += 1
            if self.refuse_handshake is not None:
                status, hs, msg, auth = self.refuse_handshake
                if not hs:
                    return connection.respond(status, msg)
                return self._refuse(connection, status, hs, msg, auth)
            if not request.path.startswith("/ws/v2?"):
                return connection.respond(404, "not found")
            query = dict(p.split("=", 1) for p in request.path.split("?", 1)[1].split("&") if "=" in p)
            ticket = query.get("ticket", "")
            if ticket not in self._tickets:
                return self._refuse(connection, 401, "514", "ticket invalid or used", "1000040351")
            self._tickets.discard(ticket)
            if len(self.connections) >= self.max_connections:
                return self._refuse(connection, 401, "514", "exceed connection limit", str(EXCEED_CONN_LIMIT))
        return None

    @staticmethod
    def _refuse(connection: ServerConnection, status: int, hs: str, msg: str, auth: str) -> Response:
        response = connection.respond(status, msg)
        response.headers["Handshake-Status"] = hs
        response.headers["Handshake-Msg"] = msg
        response.headers["Handshake-Autherrcode"] = auth
        return response

    def _session(self, conn: ServerConnection) -> None:
        with self._lock:
            self.connections.append(conn)
            waiting = [p for p in self.pushed.values() if not p.done.is_set()]
        for item in waiting:  # what a broken line left unanswered comes again
            self._deliver(item, only=conn)
        try:
            for message in conn:
                self._from_client(conn, message)
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                if conn in self.connections:
                    self.connections.remove(conn)

    def _from_client(self, conn: ServerConnection, message: Any) -> None:
        if not isinstance(message, bytes):
            self.problems.append(f"text frame from the client: {message!r}")
            return
        frame = Frame()
        try:
            frame.ParseFromString(message)
        except Exception as exc:  # noqa: BLE001
            self.problems.append(f"unparsable frame: {exc}")
            return
        headers = [(h.key, h.value) for h in frame.headers]
        kind = dict(headers).get("type")
        if frame.method == 0:
            if kind != "ping":
                self.problems.append(f"control frame of type {kind!r}")
                return
            if frame.service != self.service_id:
                self.problems.append(f"ping with service {frame.service}, URL said {self.service_id}")
            with self._lock:
                self.pings += 1
            if self.answer_pongs:
                pong = Frame(service=self.service_id, method=0, SeqID=0, LogID=0)
                h = pong.headers.add()
                h.key, h.value = "type", "pong"
                pong.payload = json.dumps(self.client_config).encode()
                self._send(conn, pong.SerializeToString())
            return
        self._answer(conn, frame, headers)

    def _answer(self, conn: ServerConnection, frame: Frame, headers: list[tuple[str, str]]) -> None:
        message_id = dict(headers).get("message_id", "")
        with self._lock:
            item = self.pushed.get(message_id)
            sent = self._sent_frames.get((message_id, frame.SeqID))
            if self.lose_next_answers > 0:
                self.lose_next_answers -= 1
                lose = True
            else:
                lose = False
        if item is None or sent is None:
            self.problems.append(f"answer to unknown message {message_id} / SeqID {frame.SeqID}")
            return
        if (frame.LogID, frame.service, frame.method, frame.LogIDNew) != (
            sent.LogID,
            sent.service,
            sent.method,
            sent.LogIDNew,
        ):
            self.problems.append(f"answer to {message_id} changed LogID/service/method/LogIDNew")
        sent_headers = [(h.key, h.value) for h in sent.headers]
        if headers[: len(sent_headers)] != sent_headers:
            self.problems.append(f"answer to {message_id} lost or reordered headers: {headers}")
        extra = headers[len(sent_headers) :]
        if [k for k, _ in extra] != ["biz_rt"] or not extra[0][1].isdigit():
            self.problems.append(f"answer to {message_id} should add exactly one biz_rt header: {extra}")
        try:
            answer = json.loads(frame.payload)
            assert isinstance(answer, dict) and isinstance(answer.get("code"), int)
            if answer.get("data") is not None:
                answer["data"] = json.loads(base64.b64decode(answer["data"], validate=True))
        except Exception as exc:  # noqa: BLE001
            self.problems.append(f"answer to {message_id} is not {{code, data: base64(json)}}: {exc}")
            return
        if lose:
            self.drop()
            return
        if answer["code"] != 200:
            return  # pushed again by the redelivery loop
        with self._lock:
            if item.done.is_set():
                return
            item.answer = answer
            item.answered_after = time.monotonic() - item.last_sent
            item.done.set()

    # --- sending ---------------------------------------------------------------------------------

    def _data_frame(self, message_id: str, kind: str, total: int, seq: int, chunk: bytes) -> Frame:
        with self._lock:
            self._seq += 1
            frame = Frame(
                SeqID=self._seq,
                LogID=random.getrandbits(62),
                service=self.service_id,
                method=1,
                payload=chunk,
                LogIDNew=f"{self._seq:08d}-{message_id[:8]}",
            )
            for key, value in (
                ("type", kind),
                ("message_id", message_id),
                ("sum", str(total)),
                ("seq", str(seq)),
                ("trace_id", uuid.uuid4().hex[:16]),
                ("timestamp", str(int(time.time() * 1000))),
            ):
                h = frame.headers.add()
                h.key, h.value = key, value
            self._sent_frames[(message_id, frame.SeqID)] = frame
        return frame

    def _deliver(self, item: Pushed, only: ServerConnection | None = None) -> None:
        size = -(-len(item.payload) // item.parts)
        chunks = [item.payload[i * size : (i + 1) * size] for i in range(item.parts)]
        frames = [self._data_frame(item.message_id, "event", item.parts, i, c) for i, c in enumerate(chunks)]
        frames.reverse()  # parts may arrive in any order; the client must join them by seq
        with self._lock:
            item.deliveries += 1
            item.last_sent = time.monotonic()
            item.first_sent = item.first_sent or item.last_sent
        for frame in frames:
            if only is not None:
                self._send(only, frame.SerializeToString())
            else:
                self._send_any(frame)

    def _send_any(self, frame: Frame) -> None:
        with self._lock:
            conns = list(self.connections)
        if conns:  # cluster mode: one random connection of the app gets it
            self._send(random.choice(conns), frame.SerializeToString())

    def _send(self, conn: ServerConnection, data: bytes) -> None:
        try:
            conn.send(data)
        except ConnectionClosed:
            pass

    def _redeliver_loop(self) -> None:
        while not self._stopping.wait(0.1):
            now = time.monotonic()
            with self._lock:
                late = [
                    p
                    for p in self.pushed.values()
                    if not p.done.is_set() and p.deliveries and now - p.last_sent > self.answer_budget
                ]
            for item in late:
                self._deliver(item)
