"""A fake DingTalk on 127.0.0.1: the token, robot, card and custom-robot endpoints, checked the way
DingTalk checks them, plus DingTalk's side of the callbacks (encrypted events, signed robot
messages, card clicks) and, on demand (``stream()``), the Stream gateway (fakes/dingtalk_stream.py).

It runs for real (threaded werkzeug) and uses the test's clock, so its one-hour signature
window and its custom-robot limit (20 messages in any 60 s, then ``130101`` for ten
minutes) move with the frozen clock. Events are encrypted with dingtalk-sdk (an
independent oracle) and robot signatures are computed here, not with planloop's code.

Card clicks follow DingTalk's 互动卡片 事件回调 page (HTTP and Stream modes): a card is created with
``callbackType`` ``"HTTP"`` + a ``callbackRouteKey`` registered with
``POST /v1.0/card/callbacks/register {callbackRouteKey, callbackUrl, apiSecret, forceUpdate}``, or
``"STREAM"``. ``click`` then POSTs the documented plain JSON ``{type: "actionCallback", outTrackId,
corpId, userId, content: "<JSON string>"}`` to the route's URL with ``x-ddpaas-signature-timestamp``
(ms) and ``x-ddpaas-signature`` = Base64(HMAC-SHA256(key=apiSecret, msg=timestamp)), allowing 2 s
for the answer; or pushes the same JSON as a CALLBACK frame on topic
``/v1.0/card/instances/callback``. Either answer may carry ``cardData`` / ``userPrivateData`` /
``cardUpdateOptions``, which update the card in place. DingTalk never sends a click through the
encrypted event subscription.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import Flask, Response, request
from werkzeug.serving import make_server

MSG_KEYS = {
    "sampleText": {"content"},
    "sampleMarkdown": {"title", "text"},
    "sampleActionCard": {"title", "text", "singleTitle", "singleURL"},
    **{
        f"sampleActionCard{n}": {"title", "text"}
        | {f"actionTitle{i}" for i in range(1, n + 1)}
        | {f"actionURL{i}" for i in range(1, n + 1)}
        for n in range(2, 6)
    },
}
ROBOT_TYPES = {"text", "markdown", "actionCard", "link", "feedCard"}
ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
CARD_TOPIC = "/v1.0/card/instances/callback"
CALLBACK_SECONDS = 2.0  # a card callback's answer must arrive within 2 s


def card_signature(api_secret: str, timestamp: str) -> str:
    """x-ddpaas-signature as the 事件回调 page computes it: Base64(HMAC-SHA256(apiSecret, ts))."""
    return base64.b64encode(
        hmac.new(api_secret.encode(), timestamp.encode(), hashlib.sha256).digest()
    ).decode()


def robot_sign(secret: str, timestamp: str) -> str:
    """DingTalk's own computation, written independently of bot/platforms/dingtalk.py."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class Robot:
    access_token: str
    secret: str = ""  # "SEC…" when 加签 is on
    sends: deque[datetime] = field(default_factory=deque)
    blocked_until: datetime | None = None
    throttled: int = 0  # how many times 130101 was answered


class FakeDingTalk:
    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        app_key: str = "dingfakeappkey",
        app_secret: str = "fake-app-secret-0123456789",
        robot_code: str = "dingfakerobot",
        token: str = "faketoken",
        aes_key: str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        corp_id: str = "dingcorp",
    ):
        self.clock = clock
        self.app_key, self.app_secret, self.robot_code = app_key, app_secret, robot_code
        self.token, self.aes_key, self.corp_id = token, aes_key, corp_id
        self.lock = threading.Lock()
        self.tokens: dict[str, datetime] = {}
        self.tokens_issued = 0
        self.group_messages: list[dict[str, Any]] = []
        self.user_messages: list[dict[str, Any]] = []
        self.session_messages: list[dict[str, Any]] = []
        self.robot_messages: list[dict[str, Any]] = []  # accepted custom-robot messages
        self.cards: dict[str, dict[str, Any]] = {}  # outTrackId -> the createAndDeliver body, updated
        self.card_updates: list[dict[str, Any]] = []
        self.robots: dict[str, Robot] = {}
        self.callback_routes: dict[str, dict[str, str]] = {}  # callbackRouteKey -> url, apiSecret
        self.card_callbacks: list[dict[str, Any]] = []  # every click delivered, with its answer
        self.gateway: Any = None  # the Stream gateway, once stream() started it
        self.calls: defaultdict[str, int] = defaultdict(int)
        self.faults: defaultdict[str, deque[tuple[int, dict[str, Any], float]]] = defaultdict(deque)
        self.slow: defaultdict[str, deque[float]] = defaultdict(deque)  # answer late, after handling
        self.app = self._build()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # ------------------------------------------------------------ lifecycle and knobs

    def start(self) -> FakeDingTalk:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        self.server.shutdown()
        self.thread.join(5)

    def stream(self) -> Any:
        """The Stream gateway (started on first use); connections/open answers 503 without it."""
        if self.gateway is None:
            from tests.fakes.dingtalk_stream import FakeStreamGateway

            self.gateway = FakeStreamGateway(self.app_key, self.app_secret)
        return self.gateway

    def fail_next(
        self, path: str, status: int, body: dict[str, Any], *, times: int = 1, delay: float = 0
    ) -> None:
        """Answer the next ``times`` calls to ``path`` with ``status``/``body`` (after ``delay`` s)."""
        for _ in range(times):
            self.faults[path].append((status, body, delay))

    def slow_next(self, path: str, delay: float, *, times: int = 1) -> None:
        """Handle the next ``times`` calls to ``path`` as usual but answer ``delay`` s late (the
        caller's read timeout fires although the message arrived)."""
        for _ in range(times):
            self.slow[path].append(delay)

    def add_robot(self, secret: str = "") -> str:
        """A custom group robot; returns its webhook URL (the access_token is in the query)."""
        access_token = uuid.uuid4().hex
        self.robots[access_token] = Robot(access_token, secret)
        return f"{self.url}/robot/send?access_token={access_token}"

    def robot(self, url: str) -> Robot:
        return self.robots[url.split("access_token=")[1].split("&")[0]]

    def revoke_tokens(self) -> None:
        """Every access token stops working (DingTalk answers 401) before its expiry."""
        with self.lock:
            self.tokens.clear()

    def session_webhook(self) -> str:
        return f"{self.url}/robot/sendBySession?session={uuid.uuid4().hex}"

    # ------------------------------------------------------------ DingTalk's side of callbacks

    def event(
        self, plain: dict[str, Any], *, legacy: bool = False, at: datetime | None = None
    ) -> tuple[dict[str, str], bytes]:
        """``(query args, body)`` of an event push, encrypted and signed as DingTalk does."""
        from dingtalk.crypto import DingTalkCrypto

        when = at or self.clock()
        sealed = DingTalkCrypto(self.token, self.aes_key, self.app_key).encrypt_message(
            json.dumps(plain, ensure_ascii=False),
            nonce=uuid.uuid4().hex[:8],
            timestamp=str(int(when.timestamp() * 1000)),
        )
        if legacy:
            args = {
                "msg_signature": sealed["msg_signature"],
                "timeStamp": sealed["timeStamp"],
                "nonce": sealed["nonce"],
            }
        else:
            args = {
                "signature": sealed["msg_signature"],
                "timestamp": sealed["timeStamp"],
                "nonce": sealed["nonce"],
            }
        return args, json.dumps({"encrypt": sealed["encrypt"]}).encode()

    def open_reply(self, reply: dict[str, Any]) -> str:
        """What DingTalk does with our answer: check its signature and decrypt it (dingtalk-sdk)."""
        from dingtalk.crypto import DingTalkCrypto

        crypto = DingTalkCrypto(self.token, self.aes_key, self.app_key)
        return crypto.decrypt_encrypt_str(
            reply["msg_signature"], reply["timeStamp"], reply["nonce"], reply["encrypt"]
        )

    def robot_message(
        self,
        text: str,
        *,
        sender: str = "staff-lilei",
        conversation_type: str = "2",
        conversation_id: str = "cidTeamOps==",
        msg_id: str | None = None,
        session_valid_for: timedelta = timedelta(minutes=90),
        at: datetime | None = None,
        at_bot: bool = True,
    ) -> dict[str, Any]:
        """A robot message as DingTalk sends it (the HTTP body, or a Stream frame's data)."""
        when = at or self.clock()
        group = conversation_type == "2"
        return {
            "msgId": msg_id or f"msg{uuid.uuid4().hex}",
            "msgtype": "text",
            "text": {"content": text},
            "conversationType": conversation_type,
            "conversationId": conversation_id if group else f"cid{sender}",
            "conversationTitle": "运营组" if group else "",
            "senderStaffId": sender,
            "senderId": f"$:LWCP_v1:${sender}",
            "senderNick": "李雷",
            "senderCorpId": self.corp_id,
            "chatbotCorpId": self.corp_id,
            "chatbotUserId": "$:LWCP_v1:$bot",
            "robotCode": self.robot_code,
            "isAdmin": False,
            "isInAtList": group and at_bot,
            "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}] if group and at_bot else [],
            "createAt": int(when.timestamp() * 1000),
            "sessionWebhook": self.session_webhook(),
            "sessionWebhookExpiredTime": int((self.clock() + session_valid_for).timestamp() * 1000),
        }

    def robot_callback(
        self, text: str, *, at: datetime | None = None, **options: Any
    ) -> tuple[dict[str, str], bytes]:
        """``(headers, body)`` of a robot message as DingTalk posts it (HTTP mode)."""
        when = at or self.clock()
        msg = self.robot_message(text, at=at, **options)
        timestamp = str(int(when.timestamp() * 1000))
        headers = {
            "timestamp": timestamp,
            "sign": robot_sign(self.app_secret, timestamp),
            "Content-Type": "application/json",
        }
        return headers, json.dumps(msg, ensure_ascii=False).encode()

    def action_callback(self, out_track_id: str, button: int, user: str) -> dict[str, Any]:
        """The ``actionCallback`` body a click on a delivered card's button makes. The template
        (ours, see docs/dingtalk.md) sends the button's ``action`` and ``value`` as params."""
        params_map = self.cards[out_track_id]["cardData"]["cardParamMap"]
        spec = json.loads(params_map["buttons"])[button]
        content = {
            "cardPrivateData": {
                "actionIds": [f"btn_{button}"],
                "params": {"action": spec["action"], "value": spec["value"]},
            }
        }
        return {
            "type": "actionCallback",
            "outTrackId": out_track_id,
            "corpId": self.corp_id,
            "userId": user,
            "content": json.dumps(content, ensure_ascii=False),
        }

    def card_request(
        self, body: dict[str, Any], route_key: str, *, at: datetime | None = None, secret: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """``(headers, body)`` of an HTTP card callback on ``route_key``, signed with its apiSecret
        (or ``secret``), at ``at`` (default now)."""
        when = at or self.clock()
        timestamp = str(int(when.timestamp() * 1000))
        api_secret = secret if secret is not None else self.callback_routes[route_key]["apiSecret"]
        headers = {
            "Content-Type": "application/json",
            "x-ddpaas-signature-timestamp": timestamp,
            "x-ddpaas-signature": card_signature(api_secret, timestamp),
        }
        return headers, json.dumps(body, ensure_ascii=False).encode()

    def click(self, out_track_id: str, button: int, user: str) -> dict[str, Any] | None:
        """A person clicks button ``button`` of a delivered card: DingTalk calls back the way the card
        was created (HTTP route or Stream) and applies the answer's card update. Returns the answer
        (None when none came within 2 s: the card stays as it was)."""
        card = self.cards[out_track_id]
        body = self.action_callback(out_track_id, button, user)
        mode = card.get("callbackType")
        answer: dict[str, Any] | None = None
        if mode == "HTTP":
            route = self.callback_routes[card["callbackRouteKey"]]
            headers, raw = self.card_request(body, card["callbackRouteKey"])
            try:
                resp = requests.post(
                    route["callbackUrl"], data=raw, headers=headers, timeout=CALLBACK_SECONDS
                )
                answer = resp.json() if resp.status_code == 200 else None
            except (requests.RequestException, ValueError):
                answer = None
        elif mode == "STREAM":
            gateway = self.stream()
            message_id = gateway.push(CARD_TOPIC, body)
            ack = gateway.wait_ack(message_id, CALLBACK_SECONDS)
            if ack is not None and ack.get("code") == 200:
                answer = (json.loads(ack["data"] or "{}") or {}).get("response")
        else:
            raise AssertionError(f"card {out_track_id} was created without callbackType: clicks go nowhere")
        with self.lock:
            self.card_callbacks.append({"mode": mode, "body": body, "answer": answer})
            if isinstance(answer, dict):
                self._apply_update(card, answer)
        return answer

    @staticmethod
    def _apply_update(card: dict[str, Any], answer: dict[str, Any]) -> None:
        options = answer.get("cardUpdateOptions") or {}
        data = (answer.get("cardData") or {}).get("cardParamMap")
        if isinstance(data, dict):
            if not all(isinstance(v, str) for v in data.values()):
                raise AssertionError("cardParamMap values must be strings")
            params = card["cardData"]["cardParamMap"]
            if options.get("updateCardDataByKey"):
                params.update(data)
            else:
                card["cardData"]["cardParamMap"] = dict(data)

    # ------------------------------------------------------------ the server

    def _build(self) -> Flask:
        app = Flask("fake-dingtalk")

        def api_error(status: int, code: str, message: str) -> Response:
            return Response(
                json.dumps({"code": code, "message": message, "requestid": "fake"}),
                status,
                content_type="application/json",
            )

        def ok(body: dict[str, Any]) -> Response:
            return Response(json.dumps(body, ensure_ascii=False), 200, content_type="application/json")

        @app.after_request
        def late(response: Response) -> Response:
            with self.lock:
                queue = self.slow.get(request.path)
                delay = queue.popleft() if queue else 0.0
            if delay:
                time.sleep(delay)
            return response

        @app.before_request
        def faults() -> Response | None:
            with self.lock:
                self.calls[request.path] += 1
                queue = self.faults.get(request.path)
                fault = queue.popleft() if queue else None
            if fault is None:
                return None
            status, body, delay = fault
            if delay:
                time.sleep(delay)
            return Response(json.dumps(body), status, content_type="application/json")

        def authorised() -> Response | None:
            token = request.headers.get("x-acs-dingtalk-access-token", "")
            with self.lock:
                expires = self.tokens.get(token)
            if expires is None or expires <= self.clock():
                return api_error(401, "InvalidAuthentication", "不合法的access_token")
            return None

        def body_object() -> dict[str, Any] | Response:
            data = request.get_json(silent=True)
            if not isinstance(data, dict):
                return api_error(400, "InvalidParameter", "body must be a JSON object")
            return data

        def check_msg(data: dict[str, Any]) -> Response | None:
            if data.get("robotCode") != self.robot_code:
                return api_error(400, "invalidParameter.robotCode", "robotCode 不正确")
            keys = MSG_KEYS.get(data.get("msgKey", ""))
            if keys is None:
                return api_error(400, "invalidParameter.msgKey", "msgKey 不支持")
            if not isinstance(data.get("msgParam"), str):
                return api_error(400, "invalidParameter.msgParam", "msgParam 必须是 JSON 字符串")
            if len(data["msgParam"].encode()) > 15_000:
                return api_error(400, "invalidParameter.msgParam", "msgParam 最长 15000 字节")
            try:
                param = json.loads(data["msgParam"])
            except ValueError:
                return api_error(400, "invalidParameter.msgParam", "msgParam 不是合法 JSON")
            if (
                not isinstance(param, dict)
                or set(param) != keys
                or not all(isinstance(v, str) and v for v in param.values())
            ):
                return api_error(400, "invalidParameter.msgParam", f"msgParam 需要字段 {sorted(keys)}")
            return None

        @app.post("/v1.0/oauth2/accessToken")
        def access_token() -> Response:
            data = request.get_json(silent=True) or {}
            if data.get("appKey") != self.app_key or data.get("appSecret") != self.app_secret:
                return api_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
            token = uuid.uuid4().hex
            with self.lock:
                self.tokens[token] = self.clock() + timedelta(seconds=7200)
                self.tokens_issued += 1
            return ok({"accessToken": token, "expireIn": 7200})

        @app.post("/v1.0/gateway/connections/open")
        def open_stream() -> Response:
            if self.gateway is None:
                return api_error(503, "ServiceUnavailable", "stream gateway not started")
            status, answer = self.gateway.open_connection(request.get_json(silent=True))
            return Response(json.dumps(answer, ensure_ascii=False), status, content_type="application/json")

        @app.post("/v1.0/card/callbacks/register")
        def register_callback() -> Response:
            if (denied := authorised()) is not None:
                return denied
            data = body_object()
            if isinstance(data, Response):
                return data
            key, url = data.get("callbackRouteKey"), data.get("callbackUrl")
            if not isinstance(key, str) or not key or not isinstance(url, str) or not url.startswith("http"):
                return api_error(400, "param.invalid", "callbackRouteKey 和 callbackUrl 必填")
            with self.lock:
                known = self.callback_routes.get(key)
                if known is None or data.get("forceUpdate"):
                    known = {"callbackUrl": url, "apiSecret": str(data.get("apiSecret") or "")}
                    self.callback_routes[key] = known
            # the answer's shape is not documented; the registration's values are what matters
            return ok({"success": True, "result": {"callbackRouteKey": key, **known}})

        @app.post("/v1.0/robot/groupMessages/send")
        def group_send() -> Response:
            if (denied := authorised()) is not None:
                return denied
            data = body_object()
            if isinstance(data, Response):
                return data
            if (bad := check_msg(data)) is not None:
                return bad
            if not isinstance(data.get("openConversationId"), str) or not data["openConversationId"]:
                return api_error(400, "invalidParameter.openConversationId", "openConversationId 不能为空")
            with self.lock:
                self.group_messages.append(data)
            return ok({"processQueryKey": uuid.uuid4().hex})

        @app.post("/v1.0/robot/oToMessages/batchSend")
        def batch_send() -> Response:
            if (denied := authorised()) is not None:
                return denied
            data = body_object()
            if isinstance(data, Response):
                return data
            if (bad := check_msg(data)) is not None:
                return bad
            users = data.get("userIds")
            if (
                not isinstance(users, list)
                or not 1 <= len(users) <= 20
                or not all(isinstance(u, str) and u for u in users)
            ):
                return api_error(400, "invalidParameter.userIds", "userIds 需要 1-20 个 userId")
            with self.lock:
                self.user_messages.append(data)
            return ok(
                {
                    "processQueryKey": uuid.uuid4().hex,
                    "invalidStaffIdList": [],
                    "flowControlledStaffIdList": [],
                }
            )

        def check_params(data: dict[str, Any]) -> Response | None:
            params = (data.get("cardData") or {}).get("cardParamMap")
            if not isinstance(params, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in params.items()
            ):
                return api_error(400, "param.cardParamMap.invalid", "cardParamMap 的值必须是字符串")
            # create-and-deliver-cards, Limits: key at most 100 B, value at most 1 KB
            if any(len(k.encode()) > 100 or len(v.encode()) > 1024 for k, v in params.items()):
                return api_error(400, "param.cardParamMap.invalid", "cardParamMap 的 key ≤ 100B，value ≤ 1KB")
            return None

        @app.post("/v1.0/card/instances/createAndDeliver")
        def create_and_deliver() -> Response:
            if (denied := authorised()) is not None:
                return denied
            data = body_object()
            if isinstance(data, Response):
                return data
            if (
                not data.get("cardTemplateId")
                or not isinstance(data.get("outTrackId"), str)
                or not data["outTrackId"]
            ):
                return api_error(400, "param.invalid", "cardTemplateId 和 outTrackId 必填")
            if (bad := check_params(data)) is not None:
                return bad
            mode = data.get("callbackType")
            if mode not in (None, "STREAM", "HTTP"):
                return api_error(400, "param.callbackType.invalid", "callbackType 只能是 STREAM 或 HTTP")
            if mode == "HTTP" and data.get("callbackRouteKey") not in self.callback_routes:
                return api_error(400, "param.callbackRouteKey.invalid", "callbackRouteKey 未注册")
            space = str(data.get("openSpaceId", ""))
            if space.startswith("dtv1.card//IM_GROUP."):
                deliver = data.get("imGroupOpenDeliverModel")
                if (
                    not isinstance(deliver, dict)
                    or deliver.get("robotCode") != self.robot_code
                    or "imGroupOpenSpaceModel" not in data
                ):
                    return api_error(
                        400,
                        "param.invalid",
                        "群聊投放需要 imGroupOpenSpaceModel 和 imGroupOpenDeliverModel.robotCode",
                    )
                at_ids = deliver.get("atUserIds", {})
                if not isinstance(at_ids, dict):
                    return api_error(400, "param.invalid", "atUserIds 是 {userId: 昵称}")
            elif space.startswith("dtv1.card//IM_ROBOT."):
                if (
                    not isinstance(data.get("imRobotOpenDeliverModel"), dict)
                    or "imRobotOpenSpaceModel" not in data
                ):
                    return api_error(
                        400, "param.invalid", "单聊投放需要 imRobotOpenSpaceModel 和 imRobotOpenDeliverModel"
                    )
            else:
                return api_error(
                    400, "param.invalid", "openSpaceId 格式 dtv1.card//IM_GROUP.<cid> 或 IM_ROBOT.<userId>"
                )
            with self.lock:
                if data["outTrackId"] in self.cards:
                    return api_error(400, "param.outTrackId.duplicate", "outTrackId 已存在")
                self.cards[data["outTrackId"]] = data
            kind, _, space_id = space.removeprefix("dtv1.card//").partition(".")
            return ok(
                {
                    "success": True,
                    "result": {
                        "outTrackId": data["outTrackId"],
                        "deliverResults": [
                            {
                                "spaceType": kind,
                                "spaceId": space_id,
                                "success": True,
                                "carrierId": uuid.uuid4().hex,
                            }
                        ],
                    },
                }
            )

        @app.put("/v1.0/card/instances")
        def update_card() -> Response:
            if (denied := authorised()) is not None:
                return denied
            data = body_object()
            if isinstance(data, Response):
                return data
            if (bad := check_params(data)) is not None:
                return bad
            with self.lock:
                card = self.cards.get(str(data.get("outTrackId")))
                if card is None:
                    return api_error(400, "param.outTrackId.notExist", "卡片不存在")
                card["cardData"]["cardParamMap"] = dict(data["cardData"]["cardParamMap"])
                self.card_updates.append(data)
            return ok({"success": True, "result": True})

        def robot_payload_error(data: Any) -> str:
            if not isinstance(data, dict) or data.get("msgtype") not in ROBOT_TYPES:
                return "msgtype 不支持"
            content = data.get(data["msgtype"])
            if not isinstance(content, dict):
                return f"缺少 {data['msgtype']}"
            if data["msgtype"] == "markdown" and not (content.get("title") and content.get("text")):
                return "markdown 需要 title 和 text"
            if data["msgtype"] == "actionCard":
                if not (content.get("title") and content.get("text")):
                    return "actionCard 需要 title 和 text"
                single = bool(content.get("singleTitle") and content.get("singleURL"))
                btns = content.get("btns")
                if not single and not (
                    isinstance(btns, list) and all(b.get("title") and b.get("actionURL") for b in btns)
                ):
                    return "actionCard 需要 singleTitle/singleURL 或 btns"
            return ""

        @app.post("/robot/send")
        def custom_robot() -> Response:
            robot = self.robots.get(request.args.get("access_token", ""))
            if robot is None:
                return ok({"errcode": 300001, "errmsg": "token is not exist"})
            now = self.clock()
            if robot.secret.startswith("SEC"):
                ts, sign = request.args.get("timestamp", ""), request.args.get("sign", "")
                if not ts.isdigit() or abs(now.timestamp() * 1000 - int(ts)) > 3_600_000:
                    return ok(
                        {"errcode": 310000, "errmsg": "sign not match, more: [timestamp is not in 1 hour]"}
                    )
                if not hmac.compare_digest(robot_sign(robot.secret, ts), sign):
                    return ok({"errcode": 310000, "errmsg": "sign not match"})
            with self.lock:
                if robot.blocked_until is not None and now < robot.blocked_until:
                    robot.throttled += 1
                    return ok({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
                while robot.sends and robot.sends[0] <= now - timedelta(seconds=60):
                    robot.sends.popleft()
                if len(robot.sends) >= 20:
                    robot.blocked_until = now + timedelta(minutes=10)
                    robot.throttled += 1
                    return ok({"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
            data = request.get_json(silent=True)
            if problem := robot_payload_error(data):
                return ok({"errcode": 40035, "errmsg": f"缺少参数 json: {problem}"})
            content = data[data["msgtype"]]
            text = content.get("content", "") if data["msgtype"] == "text" else content.get("text", "")
            at_ids = (data.get("at") or {}).get("atUserIds", [])
            with self.lock:
                robot.sends.append(now)
                self.robot_messages.append(
                    {
                        "robot": robot.access_token,
                        "at": now,
                        "body": data,
                        "mentioned": [u for u in at_ids if f"@{u}" in text],
                    }
                )
            return ok({"errcode": 0, "errmsg": "ok"})

        @app.post("/robot/sendBySession")
        def session_send() -> Response:
            data = request.get_json(silent=True)
            if problem := robot_payload_error(data):
                return ok({"errcode": 40035, "errmsg": f"缺少参数 json: {problem}"})
            with self.lock:
                self.session_messages.append({"session": request.args.get("session", ""), "body": data})
            return ok({"errcode": 0, "errmsg": "ok"})

        return app
