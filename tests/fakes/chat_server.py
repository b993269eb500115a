"""A tiny chat platform on 127.0.0.1 for delivery fault tests, and the adapter that talks to it.

The server behaves like Feishu's message API in the ways the relay depends on: a
request carries a ``uuid`` and a repeated uuid is accepted but not shown twice
(``delivered`` holds what a person would see); answers can be scripted per call:
``500``, ``429`` with ``Retry-After``, ``slow`` (answers after the client gave up, but
still delivers, as a real server that was merely slow would), or ``400`` (final).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import requests
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from bot.platforms.base import DeliveryError, Outbound, RateLimit, SendResult
from cards.render import text as text_render


@dataclass
class ChatServer:
    script: deque[str] = field(default_factory=deque)  # per call: ok | 500 | 429:<secs> | slow | 400
    slow_seconds: float = 0.6
    received: list[dict[str, Any]] = field(default_factory=list)  # every request, retries included
    delivered: dict[str, dict[str, Any]] = field(default_factory=dict)  # uuid -> message, once
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Flask:
        app = Flask("fake-chat")

        @app.post("/send")
        def send():  # noqa: ANN202
            body = request.get_json(force=True)
            with self.lock:
                self.received.append(body)
                step = self.script.popleft() if self.script else "ok"
            if step == "500":
                return jsonify({"code": 500, "msg": "internal error"}), 500
            if step.startswith("429"):
                wait = step.partition(":")[2] or "1"
                return jsonify({"code": 99991400, "msg": "too many requests"}), 429, {"Retry-After": wait}
            if step == "400":
                return jsonify({"code": 230001, "msg": "invalid receive_id"}), 400
            if step == "slow":
                time.sleep(self.slow_seconds)
            with self.lock:
                first = self.delivered.setdefault(
                    body["uuid"], {**body, "message_id": f"om_{len(self.delivered) + 1}"}
                )
            return jsonify({"code": 0, "data": {"message_id": first["message_id"]}})

        return app

    def start(self) -> ChatServer:
        server = make_server("127.0.0.1", 0, self.app(), threaded=True)
        self.url = f"http://127.0.0.1:{server.server_port}"
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()


class HttpFakePlatform:
    """An adapter for ChatServer, mapping its answers to DeliveryError the way real adapters do."""

    name = "fakechat"

    def __init__(
        self, bot_id: str, base_url: str, *, timeout: float = 0.25, limits: list[RateLimit] | None = None
    ):
        self.bot_id = bot_id
        self.base_url = base_url
        self.timeout = timeout
        self._limits = limits or []
        self.http = requests.Session()

    def send(self, message: Outbound) -> SendResult:
        body = {"uuid": message.id, "to": message.target, "text": text_render.render(message.card)}
        try:
            resp = self.http.post(f"{self.base_url}/send", json=body, timeout=self.timeout)
        except requests.Timeout as exc:
            raise DeliveryError(f"timed out after {self.timeout}s", retry=True, code="timeout") from exc
        if resp.status_code == 429:
            raise DeliveryError(
                "rate limited",
                retry=True,
                retry_after=float(resp.headers.get("Retry-After", "1")),
                code="429",
            )
        if resp.status_code >= 500:
            raise DeliveryError(f"server error {resp.status_code}", retry=True, code=str(resp.status_code))
        if resp.status_code >= 400:
            raise DeliveryError(resp.json().get("msg", ""), retry=False, code=str(resp.json().get("code")))
        return SendResult(platform_message_id=resp.json()["data"]["message_id"])

    def limits(self, message: Outbound) -> list[RateLimit]:
        return list(self._limits)

    # the inbound half is not used by delivery tests
    def parse(self, request, now):  # noqa: ANN001, ANN201
        raise NotImplementedError

    def answer(self, inbound, card):  # noqa: ANN001, ANN201
        raise NotImplementedError

    def ack_duplicate(self, inbound):  # noqa: ANN001, ANN201
        raise NotImplementedError
