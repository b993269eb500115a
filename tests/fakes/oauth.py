"""Sign-in servers of Feishu, DingTalk and WeCom on 127.0.0.1, as their documentation describes them.

One fake per platform serves both the sign-in host (``oauth_base``: the authorize page, which here
"consents" at once for ``user`` and redirects back with a code and the ``state`` untouched) and
the API host (``api_base``, ``oapi_base``). Codes are single-use and expire after 5 minutes (all
three platforms say so); every request is recorded, so tests check what planloop sent.

Sources (not our code): Feishu 获取授权码 / 获取 user_access_token (authen/v2/oauth/token, JSON
``grant_type, client_id, client_secret, code, redirect_uri``; errors 20003 used code, 20002 bad
secret) / 获取用户信息 (authen/v1/user_info, ``data.open_id``); DingTalk developerpedia
浏览器内获取用户委托的访问凭证 (login.dingtalk.com/oauth2/auth redirects with ``authCode`` and
``state``; v1.0/oauth2/userAccessToken ``{clientId, clientSecret, code, grantType}`` →
``{accessToken, refreshToken, expireIn, corpId}``; v1.0/contact/users/me → ``unionId``) and
topapi/user/getbyunionid (``{unionid}`` → ``{errcode, result: {contact_type, userid}}``); WeCom
构造网页授权链接 (path/91022), 企业微信 Web 登录 (path/98152: wwlogin/sso/login with ``login_type=CorpApp,
appid, agentid, redirect_uri, state``) and 获取访问用户身份 (path/98177: ``{errcode, errmsg, userid}``,
``openid`` for a non-member, 40029 invalid code), gettoken.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from werkzeug.serving import make_server

CODE_SECONDS = 300


@dataclass
class FakeOAuth:
    platform: str  # feishu | dingtalk | wecom
    client_id: str
    client_secret: str
    user: str = ""  # who is "signed in" at the platform: open_id / unionId / userid
    union_to_userid: dict[str, str] = field(default_factory=dict)  # DingTalk directory
    outsiders: set[str] = field(default_factory=set)  # WeCom: people outside the company (openid)
    deny: bool = False  # Feishu: the person presses 拒绝 (error=access_denied, state kept)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""
    _codes: dict[str, tuple[str, str, float]] = field(default_factory=dict)  # code -> (user, redirect, at)
    _user_tokens: dict[str, str] = field(default_factory=dict)
    app_token: str = "app-token-1"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _issue(self, redirect_uri: str) -> str:
        code = secrets.token_hex(16)
        with self.lock:
            self._codes[code] = (self.user, redirect_uri, time.monotonic())
        return code

    def _redeem(self, code: str, redirect_uri: str | None) -> str | None:
        with self.lock:
            found = self._codes.pop(code, None)  # single use
        if found is None or time.monotonic() - found[2] > CODE_SECONDS:
            return None
        if redirect_uri is not None and redirect_uri != found[1]:
            return None
        return found[0]

    def _user_token(self, user: str) -> str:
        token = secrets.token_hex(16)
        with self.lock:
            self._user_tokens[token] = user
        return token

    def _record(self, what: str) -> None:
        body = request.get_json(silent=True) if request.method == "POST" else None
        self.requests.append(
            (what, {"args": dict(request.args), "json": body, "headers": dict(request.headers)})
        )

    def app(self) -> Flask:
        app = Flask(f"fake-{self.platform}-oauth")
        getattr(self, f"_{self.platform}")(app)
        return app

    # ---------------------------------------------------------------- Feishu

    def _feishu(self, app: Flask) -> None:
        @app.get("/open-apis/authen/v1/authorize")
        def authorize():  # noqa: ANN202
            self._record("authorize")
            if request.args.get("client_id") != self.client_id:
                return "unknown app", 400
            uri = request.args["redirect_uri"]
            if self.deny:
                return redirect(
                    f"{uri}?{urlencode({'error': 'access_denied', 'state': request.args.get('state', '')})}"
                )
            query = {"code": self._issue(uri), "state": request.args.get("state", "")}
            return redirect(f"{uri}?{urlencode(query)}")

        @app.post("/open-apis/authen/v2/oauth/token")
        def token():  # noqa: ANN202
            self._record("token")
            body = request.get_json(force=True)
            if body.get("grant_type") != "authorization_code":
                return jsonify({"code": 20036, "error": "unsupported_grant_type"}), 400
            if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
                return jsonify(
                    {"code": 20002, "error": "invalid_client", "error_description": "bad secret"}
                ), 400
            user = self._redeem(str(body.get("code", "")), body.get("redirect_uri"))
            if user is None:
                return jsonify(
                    {"code": 20003, "error": "invalid_grant", "error_description": "code not found"}
                ), 400
            return jsonify(
                {
                    "code": 0,
                    "access_token": self._user_token(user),
                    "expires_in": 7200,
                    "token_type": "Bearer",
                    "scope": "",
                }
            )

        @app.get("/open-apis/authen/v1/user_info")
        def user_info():  # noqa: ANN202
            self._record("user_info")
            auth = request.headers.get("Authorization", "")
            user = self._user_tokens.get(auth.removeprefix("Bearer "))
            if not auth.startswith("Bearer ") or user is None:
                return jsonify({"code": 99991668, "msg": "invalid access token"}), 400
            return jsonify(
                {
                    "code": 0,
                    "msg": "success",
                    "data": {
                        "name": "someone",
                        "open_id": user,
                        "union_id": f"on_{user}",
                        "tenant_key": "t1",
                    },
                }
            )

    # ---------------------------------------------------------------- DingTalk

    def _dingtalk(self, app: Flask) -> None:
        @app.get("/oauth2/auth")
        def authorize():  # noqa: ANN202
            self._record("authorize")
            if request.args.get("client_id") != self.client_id or request.args.get("response_type") != "code":
                return "bad request", 400
            uri = request.args["redirect_uri"]
            query = {"authCode": self._issue(uri), "state": request.args.get("state", "")}
            return redirect(f"{uri}?{urlencode(query)}")

        @app.post("/v1.0/oauth2/userAccessToken")
        def user_token():  # noqa: ANN202
            self._record("userAccessToken")
            body = request.get_json(force=True)
            if body.get("clientId") != self.client_id or body.get("clientSecret") != self.client_secret:
                return jsonify({"code": "invalidClientSecret", "message": "bad secret"}), 400
            if body.get("grantType") != "authorization_code":
                return jsonify({"code": "invalidGrantType", "message": "bad grant"}), 400
            user = self._redeem(str(body.get("code", "")), None)
            if user is None:
                return jsonify({"code": "invalidAuthCode", "message": "code not found"}), 400
            return jsonify(
                {
                    "accessToken": self._user_token(user),
                    "refreshToken": "r",
                    "expireIn": 7200,
                    "corpId": "ding",
                }
            )

        @app.get("/v1.0/contact/users/me")
        def me():  # noqa: ANN202
            self._record("users/me")
            user = self._user_tokens.get(request.headers.get("x-acs-dingtalk-access-token", ""))
            if user is None:
                return jsonify({"code": "InvalidAuthentication", "message": "bad token"}), 401
            return jsonify({"nick": "someone", "unionId": user, "openId": f"open-{user}"})

        @app.post("/v1.0/oauth2/accessToken")
        def app_token():  # noqa: ANN202
            self._record("accessToken")
            body = request.get_json(force=True)
            if body.get("appKey") != self.client_id or body.get("appSecret") != self.client_secret:
                return jsonify({"code": "invalidClientSecret", "message": "bad secret"}), 400
            return jsonify({"accessToken": self.app_token, "expireIn": 7200})

        @app.post("/topapi/user/getbyunionid")
        def by_union():  # noqa: ANN202
            self._record("getbyunionid")
            if request.args.get("access_token") != self.app_token:
                return jsonify({"errcode": 40014, "errmsg": "不合法的access_token"})
            union = str((request.get_json(force=True) or {}).get("unionid", ""))
            userid = self.union_to_userid.get(union)
            if userid is None:
                return jsonify({"errcode": 60121, "errmsg": "找不到该用户"})
            return jsonify(
                {
                    "errcode": 0,
                    "errmsg": "ok",
                    "result": {"contact_type": 0, "userid": userid},
                    "request_id": "r1",
                }
            )

    # ---------------------------------------------------------------- WeCom

    def _wecom(self, app: Flask) -> None:
        @app.get("/connect/oauth2/authorize")
        def authorize():  # noqa: ANN202
            self._record("authorize")
            if request.args.get("appid") != self.client_id or request.args.get("scope") != "snsapi_base":
                return "bad request", 400
            uri = request.args["redirect_uri"]
            query = {"code": self._issue(uri), "state": request.args.get("state", "")}
            return redirect(f"{uri}?{urlencode(query)}")

        @app.get("/wwlogin/sso/login")
        def web_login():  # noqa: ANN202
            # [DOC path/98152] the QR page; here the person scans and confirms at once
            self._record("web_login")
            args = request.args
            if (
                args.get("login_type") != "CorpApp"
                or args.get("appid") != self.client_id
                or not args.get("agentid")
            ):
                return "该链接无法访问", 400
            uri = args["redirect_uri"]
            query = {"code": self._issue(uri), "state": args.get("state", "")}
            return redirect(f"{uri}?{urlencode(query)}")

        @app.get("/cgi-bin/gettoken")
        def gettoken():  # noqa: ANN202
            self._record("gettoken")
            if (
                request.args.get("corpid") != self.client_id
                or request.args.get("corpsecret") != self.client_secret
            ):
                return jsonify({"errcode": 40001, "errmsg": "invalid credential"})
            return jsonify({"errcode": 0, "errmsg": "ok", "access_token": self.app_token, "expires_in": 7200})

        @app.get("/cgi-bin/auth/getuserinfo")
        def getuserinfo():  # noqa: ANN202
            self._record("getuserinfo")
            if request.args.get("access_token") != self.app_token:
                return jsonify({"errcode": 40014, "errmsg": "invalid access_token"})
            user = self._redeem(request.args.get("code", ""), None)
            if user is None:
                return jsonify({"errcode": 40029, "errmsg": "invalid code"})
            if user in self.outsiders:
                return jsonify({"errcode": 0, "errmsg": "ok", "openid": user, "external_userid": f"wm{user}"})
            return jsonify({"errcode": 0, "errmsg": "ok", "userid": user})

    # ---------------------------------------------------------------- serving

    def start(self) -> FakeOAuth:
        server = make_server("127.0.0.1", 0, self.app(), threaded=True)
        self.url = f"http://127.0.0.1:{server.server_port}"
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()

    def calls(self) -> list[str]:
        return [what for what, _ in self.requests]
