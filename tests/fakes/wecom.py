"""A fake WeCom server on 127.0.0.1: qyapi endpoints that check what we send the way WeCom does,
and callbacks encrypted the way WeCom encrypts them (with wechatpy, an independent implementation).

Endpoints: ``GET /cgi-bin/gettoken``, ``POST /cgi-bin/message/send``,
``POST /cgi-bin/message/update_template_card``, ``POST /cgi-bin/appchat/send``,
``POST /cgi-bin/webhook/send?key=…`` (20 messages a minute per robot, then 45009).
Knobs: ``expire_tokens()``, ``fail_next(path, errcode=…|status=…|delay=…)``, ``users``, ``chats``.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import make_server

TASK_ID = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")
INTERACTIVE = ("button_interaction", "vote_interaction", "multiple_interaction")
CARD_TYPES = ("text_notice", "news_notice", *INTERACTIVE)


class Refused(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


def _bytes(text: Any) -> int:
    return len(str(text).encode("utf-8"))


def check_template_card(tc: Any, *, robot: bool = False) -> None:
    """The template-card rules from the docs (path/90372, 91770), strict: the "建议" lengths too."""
    if not isinstance(tc, dict):
        raise Refused(40058, "template_card must be an object")
    card_type = tc.get("card_type")
    allowed = ("text_notice", "news_notice") if robot else CARD_TYPES
    if card_type not in allowed:
        raise Refused(40058, f"card_type {card_type!r} not allowed here")
    title_max, sub_max, value_max, jump_max = (26, 112, 26, 13) if robot else (36, 160, 30, 18)
    title = (tc.get("main_title") or {}).get("title", "")
    if len(title) > title_max:
        raise Refused(40058, f"main_title.title longer than {title_max}")
    if len(tc.get("sub_title_text", "")) > sub_max:
        raise Refused(40058, f"sub_title_text longer than {sub_max}")
    if card_type == "text_notice" and not (title or tc.get("sub_title_text")):
        raise Refused(40058, "text_notice needs main_title.title or sub_title_text")
    rows = tc.get("horizontal_content_list", [])
    if len(rows) > 6 or any(not r.get("keyname") or len(r["keyname"]) > 5 for r in rows):
        raise Refused(40058, "horizontal_content_list: at most 6 rows, keyname 1-5 chars")
    if any(len(r.get("value", "")) > value_max for r in rows):
        raise Refused(40058, f"horizontal_content_list.value longer than {value_max}")
    jumps = tc.get("jump_list", [])
    if len(jumps) > 3 or any(len(j.get("title", "")) > jump_max or not j.get("title") for j in jumps):
        raise Refused(40058, f"jump_list: at most 3, title 1-{jump_max} chars")
    if any(j.get("type") == 1 and not str(j.get("url", "")).startswith("http") for j in jumps):
        raise Refused(40058, "jump_list url required for type 1")
    if card_type in ("text_notice", "news_notice"):
        action = tc.get("card_action") or {}
        if action.get("type") not in (1, 2) or (action.get("type") == 1 and not action.get("url")):
            raise Refused(40058, "card_action required for text_notice")
    if card_type in INTERACTIVE:
        task_id = tc.get("task_id", "")
        if not isinstance(task_id, str) or not TASK_ID.match(task_id):
            raise Refused(40058, "task_id required: 1-128 of [0-9A-Za-z_-@]")
    if card_type == "button_interaction":
        buttons = tc.get("button_list") or []
        if not 1 <= len(buttons) <= 6:
            raise Refused(40058, "button_list: 1-6 buttons")
        keys = [b.get("key") for b in buttons if b.get("type", 0) == 0]
        for b in buttons:
            if not b.get("text") or len(b["text"]) > 10:
                raise Refused(40058, "button text 1-10 chars")
            if b.get("type", 0) == 0 and (not b.get("key") or _bytes(b["key"]) > 1024):
                raise Refused(40058, "button key 1-1024 bytes")
            if b.get("type") == 1 and not str(b.get("url", "")).startswith("http"):
                raise Refused(40058, "button url required for type 1")
        if len(set(keys)) != len(keys):
            raise Refused(40058, "button keys must be unique")
    if card_type == "multiple_interaction":
        selects = tc.get("select_list") or []
        if not 1 <= len(selects) <= 3:
            raise Refused(40058, "select_list: 1-3 selects")
        for s in selects:
            options = s.get("option_list") or []
            if not s.get("question_key") or _bytes(s["question_key"]) > 1024 or not 1 <= len(options) <= 10:
                raise Refused(40058, "select: question_key 1-1024 bytes, 1-10 options")
            if any(not o.get("id") or _bytes(o["id"]) > 128 or len(o.get("text", "")) > 16 for o in options):
                raise Refused(40058, "option id 1-128 bytes, text up to 16 chars")
        submit = tc.get("submit_button") or {}
        if not submit.get("key") or _bytes(submit["key"]) > 1024:
            raise Refused(40058, "submit_button.key 1-1024 bytes")


class FakeWeCom:
    def __init__(
        self,
        *,
        corp_id: str = "ww0123456789abcdef",
        secret: str = "app-secret",
        agent_id: int = 1000002,
        token: str = "QDG6eK",
        aes_key: str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        users: tuple[str, ...] = ("LiLei", "HanMeimei", "ZhangWei"),
    ):
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.token = token
        self.aes_key = aes_key
        self.users = set(users)
        self.chats: set[str] = set()
        self.robot_keys: set[str] = set()
        self.clock = time.time  # for token and response-code expiry, robot windows; tests may replace
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}
        self.token_calls = 0
        self.sent: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.chat_messages: list[dict[str, Any]] = []
        self.robot: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.robot_times: dict[str, deque[float]] = defaultdict(deque)
        self.robot_at: dict[str, list[float]] = defaultdict(list)  # when each accepted message came
        self.task_ids: set[str] = set()
        self.response_codes: dict[str, dict[str, Any]] = {}
        self.failures: list[tuple[str, dict[str, Any]]] = []
        self.requests: list[tuple[str, str]] = []  # (path, query) of every request
        self.content_seen: dict[str, float] = {}  # message/send content -> when (duplicate check)
        self.duplicates = 0  # repeats the duplicate check kept from the user
        self._seq = itertools.count(1)
        self.app = self._build()
        self.server: Any = None
        self.url = ""

    # ------------------------------------------------------------ lifecycle and knobs

    def start(self) -> FakeWeCom:
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def expire_tokens(self) -> None:
        """Every issued access token expires now (the next API call answers 42001)."""
        with self.lock:
            for t in self.tokens:
                self.tokens[t] = 0.0

    def fail_next(
        self,
        path: str,
        *,
        errcode: int | None = None,
        status: int | None = None,
        delay: float | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Make the next ``times`` calls to ``path`` (e.g. "message/send") fail, after letting
        ``after`` calls through: an errcode, an HTTP status, or a delay (a timeout on our side)."""
        for _ in range(times):
            self.failures.append(
                (path, {"errcode": errcode, "status": status, "delay": delay, "after": after})
            )

    def add_robot(self, key: str | None = None) -> str:
        key = key or secrets.token_hex(8)
        self.robot_keys.add(key)
        return f"{self.url}/cgi-bin/webhook/send?key={key}"

    # ------------------------------------------------------------ callbacks, as WeCom builds them

    def encrypt(self, plaintext: str) -> str:
        from wechatpy.enterprise.crypto import PrpCrypto

        return PrpCrypto(base64.b64decode(self.aes_key + "=")).encrypt(plaintext, self.corp_id).decode()

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        from wechatpy.crypto import _get_signature

        return _get_signature(self.token, timestamp, nonce, encrypt)

    def callback(
        self, plaintext: str, *, timestamp: int | None = None, nonce: str | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The query arguments and body of a POST callback carrying ``plaintext``."""
        ts = str(int(timestamp if timestamp is not None else self.clock()))
        nonce = nonce or secrets.token_hex(5)
        encrypt = self.encrypt(plaintext)
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>"
        )
        return {
            "msg_signature": self.sign(ts, nonce, encrypt),
            "timestamp": ts,
            "nonce": nonce,
        }, body.encode()

    def verify_url(
        self, *, timestamp: int | None = None, echo: str | None = None
    ) -> tuple[dict[str, str], str]:
        """GET verification arguments and the plaintext echo WeCom expects back."""
        ts = str(int(timestamp if timestamp is not None else self.clock()))
        nonce = secrets.token_hex(5)
        echo = echo or secrets.token_hex(10)
        encrypt = self.encrypt(echo)
        return {
            "msg_signature": self.sign(ts, nonce, encrypt),
            "timestamp": ts,
            "nonce": nonce,
            "echostr": encrypt,
        }, echo

    def text_xml(self, user: str, content: str, msg_id: str, create_time: int | None = None) -> str:
        ts = int(create_time if create_time is not None else self.clock())
        return (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{ts}</CreateTime>"
            f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
            f"<MsgId>{msg_id}</MsgId><AgentID>{self.agent_id}</AgentID></xml>"
        )

    def click_xml(
        self,
        user: str,
        event_key: str,
        *,
        task_id: str = "task-1",
        card_type: str = "button_interaction",
        selected: dict[str, list[str]] | None = None,
        event: str = "template_card_event",
        spelling: str = "OptionId",
        create_time: int | None = None,
    ) -> tuple[str, str]:
        """A template-card click; returns the XML and the fresh ResponseCode WeCom put into it."""
        code = self._new_code(user)
        ts = int(create_time if create_time is not None else self.clock())
        items = ""
        if selected:
            inner = "".join(
                f"<SelectedItem><QuestionKey><![CDATA[{q}]]></QuestionKey><{spelling}s>"
                + "".join(f"<{spelling}><![CDATA[{i}]]></{spelling}>" for i in ids)
                + f"</{spelling}s></SelectedItem>"
                for q, ids in selected.items()
            )
            items = f"<SelectedItems>{inner}</SelectedItems>"
        xml = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{ts}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
            f"<EventKey><![CDATA[{event_key}]]></EventKey><TaskId><![CDATA[{task_id}]]></TaskId>"
            f"<CardType><![CDATA[{card_type}]]></CardType><ResponseCode><![CDATA[{code}]]></ResponseCode>"
            f"<AgentID>{self.agent_id}</AgentID>{items}</xml>"
        )
        return xml, code

    def open_reply(self, body: bytes, *, timestamp: str | None = None) -> str:
        """Check a passive reply's signature and decrypt it, as WeCom would (wechatpy)."""
        import xmltodict
        from wechatpy.enterprise.crypto import WeChatCrypto

        doc = xmltodict.parse(body.decode("utf-8"))["xml"]
        crypto = WeChatCrypto(self.token, self.aes_key, self.corp_id)
        return crypto.decrypt_message(
            body.decode("utf-8"), doc["MsgSignature"], doc["TimeStamp"], doc["Nonce"]
        )

    def _new_code(self, user: str) -> str:
        code = "rc-" + secrets.token_hex(12)
        with self.lock:
            self.response_codes[code] = {"user": user, "issued": self.clock(), "used": False}
        return code

    # ------------------------------------------------------------ the HTTP face

    def _build(self) -> Flask:
        app = Flask("fake_wecom")

        def answer(data: dict[str, Any], status: int = 200) -> Response:
            return Response(
                json.dumps(data, ensure_ascii=False), status=status, content_type="application/json"
            )

        def injected(path: str) -> Response | None:
            with self.lock:
                for n, (p, what) in enumerate(self.failures):
                    if p == path:
                        if what["after"] > 0:
                            what["after"] -= 1
                            return None
                        del self.failures[n]
                        break
                else:
                    return None
            if what["delay"]:
                time.sleep(what["delay"])
            if what["status"]:
                return Response("<html>bad gateway</html>", status=what["status"], content_type="text/html")
            if what["errcode"] is not None:
                return answer({"errcode": what["errcode"], "errmsg": "injected failure"})
            return None

        def body() -> dict[str, Any]:
            data = json.loads(request.get_data().decode("utf-8"))
            if not isinstance(data, dict):
                raise Refused(40058, "body must be a JSON object")
            return data

        def check_token() -> None:
            token = request.args.get("access_token", "")
            with self.lock:
                until = self.tokens.get(token)
            if until is None:
                raise Refused(40014, "invalid access_token")
            if until <= self.clock():
                raise Refused(42001, "access_token expired")

        @app.before_request
        def record() -> None:
            self.requests.append((request.path, request.query_string.decode()))

        @app.errorhandler(Refused)
        def refused(exc: Refused) -> Response:
            return answer({"errcode": exc.errcode, "errmsg": exc.errmsg})

        @app.get("/cgi-bin/gettoken")
        def gettoken() -> Response:
            if (r := injected("gettoken")) is not None:
                return r
            if request.args.get("corpid") != self.corp_id:
                raise Refused(40013, "invalid corpid")
            if request.args.get("corpsecret") != self.secret:
                raise Refused(40001, "invalid credential")
            token = f"tok-{next(self._seq)}-{secrets.token_hex(6)}"
            with self.lock:
                self.tokens[token] = self.clock() + 7200
                self.token_calls += 1
            return answer({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

        @app.post("/cgi-bin/message/send")
        def message_send() -> Response:
            check_token()
            if (r := injected("message/send")) is not None:
                return r
            data = body()
            if data.get("agentid") != self.agent_id:
                raise Refused(40056, "invalid agentid")
            users = [u for u in str(data.get("touser", "")).split("|") if u]
            if not users:
                raise Refused(40058, "touser required")
            bad = [u for u in users if u not in self.users]
            if len(bad) == len(users):
                return answer(
                    {
                        "errcode": 81013,
                        "errmsg": "user & party & tag all invalid",
                        "invaliduser": "|".join(bad),
                    }
                )
            msgtype = data.get("msgtype")
            out: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "msgid": f"msg-{next(self._seq)}"}
            # path/90236: enable_duplicate_check 0|1, duplicate_check_interval default 1800 s, ≤ 4 h;
            # a repeat of the same content to the same people inside it is not shown again
            interval = data.get("duplicate_check_interval", 1800)
            if not isinstance(interval, int) or not 0 < interval <= 4 * 3600:
                raise Refused(40058, "duplicate_check_interval must be at most 4 hours")
            same = json.dumps(
                {
                    k: v
                    for k, v in data.items()
                    if k not in ("enable_duplicate_check", "duplicate_check_interval")
                },
                sort_keys=True,
                ensure_ascii=False,
            )
            now = self.clock()
            if data.get("enable_duplicate_check") == 1:
                with self.lock:
                    seen = self.content_seen.get(same)
                    if seen is not None and now - seen < interval:
                        self.duplicates += 1
                        return answer(out)
            if msgtype == "template_card":
                tc = data.get("template_card")
                check_template_card(tc)
                if tc["card_type"] in INTERACTIVE or tc.get("action_menu"):
                    with self.lock:
                        if tc["task_id"] in self.task_ids:
                            raise Refused(40058, "task_id already used")
                        self.task_ids.add(tc["task_id"])
                    out["response_code"] = self._new_code(users[0])
            elif msgtype == "markdown":
                content = (data.get("markdown") or {}).get("content", "")
                if not content or _bytes(content) > 2048:
                    raise Refused(40058, "markdown.content 1-2048 bytes")
            elif msgtype == "text":
                content = (data.get("text") or {}).get("content", "")
                if not content or _bytes(content) > 2048:
                    raise Refused(40058, "text.content 1-2048 bytes")
            else:
                raise Refused(40008, "invalid message type")
            if bad:
                out["invaliduser"] = "|".join(bad)
            with self.lock:
                self.sent.append(data)
                self.content_seen[same] = now
            return answer(out)

        @app.post("/cgi-bin/message/update_template_card")
        def update_card() -> Response:
            check_token()
            if (r := injected("update_template_card")) is not None:
                return r
            data = body()
            if data.get("agentid") != self.agent_id:
                raise Refused(40056, "invalid agentid")
            code = data.get("response_code", "")
            with self.lock:
                entry = self.response_codes.get(code)
                if entry is None or entry["used"] or self.clock() - entry["issued"] > 72 * 3600:
                    raise Refused(40058, "invalid response_code (unknown, used or older than 72 h)")
            if not data.get("userids") and not data.get("atall"):
                raise Refused(40058, "userids or atall required")
            if "button" in data:
                name = (data["button"] or {}).get("replace_name", "")
                if not name or len(name) > 10:
                    raise Refused(40058, "button.replace_name 1-10 chars")
            elif "template_card" in data:
                check_template_card(data["template_card"])
            else:
                raise Refused(40058, "button or template_card required")
            with self.lock:
                entry["used"] = True
                self.updates.append(data)
            return answer({"errcode": 0, "errmsg": "ok", "invaliduser": []})

        @app.post("/cgi-bin/appchat/send")
        def appchat_send() -> Response:
            check_token()
            if (r := injected("appchat/send")) is not None:
                return r
            data = body()
            if data.get("chatid") not in self.chats:
                raise Refused(86003, "chat not exist")
            if data.get("msgtype") != "markdown":
                raise Refused(40008, "invalid message type")
            content = (data.get("markdown") or {}).get("content", "")
            if not content or _bytes(content) > 2048:
                raise Refused(40058, "markdown.content 1-2048 bytes")
            with self.lock:
                self.chat_messages.append(data)
            return answer({"errcode": 0, "errmsg": "ok"})

        @app.post("/cgi-bin/webhook/send")
        def webhook_send() -> Response:
            key = request.args.get("key", "")
            if key not in self.robot_keys:
                raise Refused(93000, "invalid webhook url")
            if (r := injected("webhook/send")) is not None:
                return r
            now = self.clock()
            with self.lock:
                window = self.robot_times[key]
                while window and window[0] <= now - 60:
                    window.popleft()
                if len(window) >= 20:
                    raise Refused(45009, "api freq out of limit")
                window.append(now)
            data = body()
            msgtype = data.get("msgtype")
            if msgtype == "markdown":
                content = (data.get("markdown") or {}).get("content", "")
                if not content or _bytes(content) > 4096:
                    raise Refused(40058, "markdown.content 1-4096 bytes")
            elif msgtype == "text":
                text = data.get("text") or {}
                if not text.get("content") or _bytes(text["content"]) > 2048:
                    raise Refused(40058, "text.content 1-2048 bytes")
                if not isinstance(text.get("mentioned_list", []), list):
                    raise Refused(40058, "mentioned_list must be a list")
            elif msgtype == "template_card":
                check_template_card(data.get("template_card"), robot=True)
            else:
                raise Refused(40008, "invalid message type")
            with self.lock:
                self.robot[key].append(data)
                self.robot_at[key].append(now)
            return answer({"errcode": 0, "errmsg": "ok"})

        return app
