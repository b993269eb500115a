"""What `planloop doctor` asks of a tenant, layered over the existing fakes without changing them.

Each ``*Tenant`` wraps a running fake (``FakeFeishu``, ``FakeDingTalk``, ``FakeWeCom``) with a WSGI
``Overlay``: the paths below are answered here, everything else goes to the fake unchanged, so
the fakes' own endpoints (tokens, sends) keep their behaviour. Knobs plant one misconfiguration
each: a scope not granted, an untrusted IP, a visible range without someone, an unknown group, a
bot not in a group, an unknown person. Built from the platforms' documentation (the paths,
parameters and error codes are cited in bot/doctor/*.py docstrings and docs/doctor.md), not from
the doctor's code: each fake checks the token and the parameters the way the platform does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.feishu import FakeFeishu
from tests.fakes.wecom import FakeWeCom

Gate = Callable[[dict[str, Any]], Response | None]


class Overlay:
    """A WSGI layer in front of a fake's Flask app: ``gate`` may answer any request first (a
    permission the platform checks before the endpoint runs); routes of ``extra`` are answered
    there; everything else goes to the fake's own app."""

    def __init__(self, base: Callable, extra: Flask, gate: Gate | None = None):
        self.base = base
        self.extra = extra
        self.gate = gate

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if self.gate is not None:
            answer = self.gate(environ)
            if answer is not None:
                return answer(environ, start_response)
        try:
            self.extra.url_map.bind_to_environ(environ).match()
        except HTTPException:
            return self.base(environ, start_response)
        return self.extra.wsgi_app(environ, start_response)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status, content_type="application/json")


def _install(app: Flask, extra: Flask, gate: Gate | None = None) -> None:
    app.wsgi_app = Overlay(app.wsgi_app, extra, gate)  # type: ignore[method-assign]


# ---------------------------------------------------------------- Feishu


# Scopes granted by default: what the doctor checks, plus one that lets it read contacts and
# one that lets it ask about group membership (the docs list "any one of" for each API).
FEISHU_SCOPES = (
    "im:message",
    "im:message:send_as_bot",
    "contact:user.id:readonly",
    "contact:contact.base:readonly",
    "im:chat:readonly",
)
CONTACT_READ = (
    "contact:contact.base:readonly",
    "contact:contact:access_as_app",
    "contact:contact:readonly",
    "contact:contact:readonly_as_app",
)
CHAT_READ = ("im:chat", "im:chat:readonly", "im:chat.members:read", "im:chat.group_info:readonly")


class FeishuTenant:
    """``application/v6/scopes``, ``im/v1/chats/:id/members/is_in_chat``, ``contact/v3/users/:id``."""

    def __init__(self, fake: FakeFeishu):
        self.fake = fake
        self.scopes: dict[str, int] = dict.fromkeys(FEISHU_SCOPES, 1)  # name -> 1 granted, 2 not granted
        self.chats: dict[str, bool] = {}  # chat_id -> the bot is a member
        self.bot_ability = True
        self.users: set[str] = set()  # open_ids in the tenant
        self.outside_range: set[str] = set()  # open_ids outside the app's contact range
        extra = Flask("feishu-tenant")

        def answer(code: int, msg: str, data: Any = None, status: int = 400) -> Response:
            body: dict[str, Any] = {"code": code, "msg": msg}
            if data is not None:
                body["data"] = data
            return _json(body, status)

        def authorised() -> Response | None:
            auth = request.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
            expires = self.fake.tokens.get(token)
            if not token:
                return answer(99991661, "Missing access token for authorization")
            if expires is None or expires <= self.fake.clock():
                return answer(99991663, "Invalid access token for authorization")
            return None

        def needs(any_of: tuple[str, ...]) -> Response | None:
            if any(self.scopes.get(s) == 1 for s in any_of):
                return None
            body = {
                "code": 99991672,
                "msg": f"Access denied. One of the following scopes is required: [{', '.join(any_of)}]",
                "error": {
                    "permission_violations": [{"type": "action_scope_required", "subject": s} for s in any_of]
                },
            }
            return _json(body, 400)

        @extra.get("/open-apis/application/v6/scopes")
        def scopes() -> Response:
            if (denied := authorised()) is not None:
                return denied
            items = [
                {"scope_name": n, "grant_status": g, "scope_type": "tenant"} for n, g in self.scopes.items()
            ]
            return answer(0, "success", {"scopes": items}, 200)

        @extra.get("/open-apis/im/v1/chats/<chat_id>/members/is_in_chat")
        def is_in_chat(chat_id: str) -> Response:
            if (denied := authorised() or needs(CHAT_READ)) is not None:
                return denied
            if not self.bot_ability:
                return answer(232025, "Bot ability is not activated.")
            if chat_id not in self.chats:
                return answer(232006, "Your request specifies a chat_id which is invalid.")
            return answer(0, "success", {"is_in_chat": self.chats[chat_id]}, 200)

        @extra.get("/open-apis/contact/v3/users/<user_id>")
        def user(user_id: str) -> Response:
            if (denied := authorised() or needs(CONTACT_READ)) is not None:
                return denied
            if request.args.get("user_id_type", "open_id") != "open_id":
                return answer(99992402, "field validation failed: user_id_type")
            if user_id in self.outside_range:
                return answer(41050, "no user authority error")
            if user_id not in self.users:
                return answer(41012, "user id invalid error")
            return answer(0, "success", {"user": {"open_id": user_id}}, 200)

        _install(fake.app, extra)


# ---------------------------------------------------------------- DingTalk

DINGTALK_PERMISSION = {  # (method, path) -> the permission DingTalk's gateway asks for
    ("POST", "/v1.0/robot/groupMessages/query"): "qyapi_robot_sendmsg",
    ("POST", "/v1.0/robot/groupMessages/send"): "qyapi_robot_sendmsg",
    ("POST", "/v1.0/robot/oToMessages/batchSend"): "qyapi_robot_sendmsg",
    ("POST", "/v1.0/robot/groups/robots/query"): "qyapi_robot_sendmsg",
    ("PUT", "/v1.0/card/instances"): "Card.Instance.Write",
    ("POST", "/v1.0/card/instances/createAndDeliver"): "Card.Instance.Write",
    ("PUT", "/v1.0/card/streaming"): "Card.Streaming.Write",
}


class DingTalkTenant:
    """Permissions (403 AccessTokenPermissionDenied), the robot probe, a group's robots, card
    streaming, the card callback registration, ``topapi/v2/user/get`` and the Stream gateway's
    ``connections/open``."""

    def __init__(self, fake: FakeDingTalk):
        self.fake = fake
        self.granted: set[str] = set(DINGTALK_PERMISSION.values())
        self.groups: dict[str, list[str]] = {}  # openConversationId -> robotCodes in the group
        self.users: set[str] = set()
        self.registrations: dict[str, dict[str, str]] = {}  # callbackRouteKey -> {url, secret}
        self.register_calls = 0
        self.gateway_refusal: tuple[int, str, str] | None = None  # (status, code, message)
        self.gateway_delay = 0.0
        extra = Flask("dingtalk-tenant")

        def error(status: int, code: str, message: str) -> Response:
            return _json({"code": code, "message": message, "requestid": "fake"}, status)

        def token_ok(token: str) -> bool:
            expires = self.fake.tokens.get(token)
            return expires is not None and expires > self.fake.clock()

        def authorised() -> Response | None:
            if not token_ok(request.headers.get("x-acs-dingtalk-access-token", "")):
                return error(401, "InvalidAuthentication", "不合法的access_token")
            return None

        def gate(environ: dict[str, Any]) -> Response | None:
            scope = DINGTALK_PERMISSION.get((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
            token = environ.get("HTTP_X_ACS_DINGTALK_ACCESS_TOKEN", "")
            if scope is None or scope in self.granted or not token_ok(token):
                return None
            body = {
                "code": "Forbidden.AccessDenied.AccessTokenPermissionDenied",
                "requestid": "fake",
                "message": "没有调用该接口的权限，接口权限申请参考：https://open.dingtalk.com/document/orgapp-server/add-api-permission",
                "accessdenieddetail": {"requiredScopes": [scope]},
            }
            return _json(body, 403)

        def body() -> dict[str, Any]:
            data = request.get_json(silent=True)
            return data if isinstance(data, dict) else {}

        @extra.post("/v1.0/robot/groupMessages/query")
        def message_query() -> Response:
            if (denied := authorised()) is not None:
                return denied
            data = body()
            if data.get("robotCode") != self.fake.robot_code:
                return error(400, "invalidParameter.robotCode.invalid", "无效的robotCode")
            return error(400, "invalid.processQueryKey", "无效的processQueryKey")

        @extra.post("/v1.0/robot/groups/robots/query")
        def robots_in_group() -> Response:
            if (denied := authorised()) is not None:
                return denied
            cid = body().get("openConversationId")
            if cid not in self.groups:
                return error(400, "invalid.openConversationId", "无效的openConversationId")
            robots = [
                {"robotCode": code, "name": "planloop", "openRobotType": 1} for code in self.groups[cid]
            ]
            return _json({"chatbotInstanceVOList": robots})

        @extra.put("/v1.0/card/streaming")
        def streaming() -> Response:
            if (denied := authorised()) is not None:
                return denied
            data = body()
            if not data.get("outTrackId") or not data.get("guid") or "key" not in data:
                return error(400, "param.invalid", "outTrackId、guid、key 必填")
            if data["outTrackId"] not in self.fake.cards:
                return error(400, "param.outTrackId.notExist", "卡片不存在")
            return _json({"success": True, "result": True})

        @extra.post("/v1.0/card/callbacks/register")
        def register() -> Response:
            if (denied := authorised()) is not None:
                return denied
            data = body()
            key, url = data.get("callbackRouteKey"), data.get("callbackUrl")
            if not key or not url:
                return error(400, "param.invalid", "callbackRouteKey 和 callbackUrl 必填")
            self.register_calls += 1
            if key in self.registrations and not data.get("forceUpdate"):
                # [?] the documented flag: without it an existing route key is not overwritten
                return error(400, "callbackRouteKey.exist", "callbackRouteKey 已存在，需要 forceUpdate")
            self.registrations[key] = {"url": url, "secret": str(data.get("apiSecret", ""))}
            return _json(
                {"success": True, "result": {"callbackUrl": url, "apiSecret": data.get("apiSecret", "")}}
            )

        @extra.post("/topapi/v2/user/get")
        def user_get() -> Response:
            if not token_ok(request.args.get("access_token", "")):
                return _json({"errcode": 40014, "errmsg": "不合法的access_token"})
            userid = body().get("userid")
            if userid not in self.users:
                return _json({"errcode": 60121, "errmsg": "找不到该用户", "request_id": "fake"})
            return _json({"errcode": 0, "errmsg": "ok", "result": {"userid": userid, "name": userid}})

        @extra.post("/v1.0/gateway/connections/open")
        def open_connection() -> Response:
            if self.gateway_delay:
                time.sleep(self.gateway_delay)
            if self.gateway_refusal is not None:
                return error(*self.gateway_refusal)
            data = body()
            if self.fake.gateway is not None:  # the fake's Stream gateway runs: it answers (real client)
                status, answer = self.fake.gateway.open_connection(data)
                return _json(answer, status)
            if data.get("clientId") != self.fake.app_key or data.get("clientSecret") != self.fake.app_secret:
                return error(401, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
            return _json({"endpoint": "ws://127.0.0.1:9/connect", "ticket": "fake-ticket"})

        _install(fake.app, extra, gate)


# ---------------------------------------------------------------- WeCom


class WeComTenant:
    """``agent/get`` (visible range), ``user/get``, ``appchat/get`` and the trusted-IP rule (60020 on
    every API but gettoken once the server's IP is not among the app's trusted IPs)."""

    def __init__(self, fake: FakeWeCom):
        self.fake = fake
        self.trusted = True
        self.visible: set[str] | None = None  # userids in the visible range; None = everybody
        self.foreign_chats: set[str] = set()  # chats that exist but were not created by the app
        extra = Flask("wecom-tenant")

        def answer(data: dict[str, Any]) -> Response:
            return _json(data)

        def token_state(token: str) -> int:
            until = self.fake.tokens.get(token)
            if until is None:
                return 40014
            return 42001 if until <= self.fake.clock() else 0

        def gate(environ: dict[str, Any]) -> Response | None:
            path = environ["PATH_INFO"]
            if self.trusted or not path.startswith("/cgi-bin/") or path == "/cgi-bin/gettoken":
                return None
            query = parse_qs(environ.get("QUERY_STRING", ""))
            if token_state((query.get("access_token") or [""])[0]) != 0:
                return None
            ip = environ.get("REMOTE_ADDR", "")
            msg = f"not allow to access from your ip, hint: [fake], from ip: {ip}, more info at https://open.work.weixin.qq.com/devtool/query?e=60020"
            return answer({"errcode": 60020, "errmsg": msg})

        def refused() -> Response | None:
            state = token_state(request.args.get("access_token", ""))
            if state:
                return answer({"errcode": state, "errmsg": "invalid access_token"})
            return None

        @extra.get("/cgi-bin/agent/get")
        def agent_get() -> Response:
            if (denied := refused()) is not None:
                return denied
            if request.args.get("agentid") != str(self.fake.agent_id):
                return answer({"errcode": 40056, "errmsg": "invalid agentid"})
            users = sorted(self.fake.users if self.visible is None else self.visible)
            return answer(
                {
                    "errcode": 0,
                    "errmsg": "ok",
                    "agentid": self.fake.agent_id,
                    "name": "planloop",
                    "allow_userinfos": {"user": [{"userid": u} for u in users]},
                    "allow_partys": {"partyid": []},
                    "allow_tags": {"tagid": []},
                    "close": 0,
                }
            )

        @extra.get("/cgi-bin/user/get")
        def user_get() -> Response:
            if (denied := refused()) is not None:
                return denied
            userid = request.args.get("userid", "")
            if userid not in self.fake.users:
                return answer({"errcode": 60111, "errmsg": "userid not found"})
            if self.visible is not None and userid not in self.visible:
                return answer(
                    {"errcode": 60011, "errmsg": "no privilege to access/modify contact/party/agent"}
                )
            return answer({"errcode": 0, "errmsg": "ok", "userid": userid})

        @extra.get("/cgi-bin/appchat/get")
        def appchat_get() -> Response:
            if (denied := refused()) is not None:
                return denied
            chatid = request.args.get("chatid", "")
            if chatid in self.foreign_chats:
                return answer({"errcode": 86008, "errmsg": "can not operate chat not created by this app"})
            if chatid not in self.fake.chats:
                return answer({"errcode": 86003, "errmsg": "chat not exist"})
            return answer({"errcode": 0, "errmsg": "ok", "chat_info": {"chatid": chatid, "userlist": []}})

        _install(fake.app, extra, gate)
