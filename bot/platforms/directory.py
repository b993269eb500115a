"""The organisation directory of a bot's tenant: every member with the id the bot messages them by.

``read_directory(bot, http, adapter)`` walks the departments and lists each one's members, with the
app's own access token (the adapter's cache). Nothing outside this module sees the platforms' JSON:
it returns ``Member`` rows, or raises ``DirectoryError`` with a sentence for the admin.

Facts, from the platforms' documentation and SDK sources (docs/admin/directory.md names them):

- Feishu / Lark contact v3, with ``Authorization: Bearer <tenant_access_token>``:
  ``GET /open-apis/contact/v3/departments/0/children?fetch_child=true&page_size=50
  &department_id_type=open_department_id`` (``data.items[].open_department_id, name``; paged by
  ``has_more`` / ``page_token``) and, per department including the root ``0``,
  ``GET /open-apis/contact/v3/users/find_by_department?department_id=…&user_id_type=open_id
  &page_size=50`` (direct members only: ``data.items[].open_id, name, department_ids,
  status.{is_resigned, is_frozen, is_exited}``). Errors come as ``code`` ≠ 0, often with an HTTP
  4xx: 99991663 / 99991661 a stale token, 40004 / 41050 / 99991672 outside the contacts scope,
  99991400 (HTTP 429) too many calls. Page size at most 50.
- DingTalk server API, ``access_token`` in the query: ``POST /topapi/v2/department/listsub``
  ``{dept_id}`` (one level; root 1; ``result[].dept_id, name``) walked breadth-first, and per
  department ``POST /topapi/v2/user/list`` ``{dept_id, cursor, size ≤ 100}`` (that department only;
  ``result.list[].userid, unionid, name, dept_id_list``, ``result.has_more / next_cursor``). There is
  no "resigned" flag: a leaver is simply no longer listed. ``errcode`` 40014 / 42001 / 40001 / 33001
  a stale token; 88 a TOP auth error, tried once with a fresh token and then, with sub_code 60011,
  no permission; 90002 / 90018 too many calls.
- WeCom: ``GET /cgi-bin/department/list`` (the whole tree within the app's visible range;
  ``department[].id, name``) and per department ``GET /cgi-bin/user/list?department_id=…``
  (``userlist[].userid, name, department, status``: 1 active, 2 disabled, 4 not yet activated,
  5 left). ``errcode`` 40014 / 42001 / 40001 a stale token, 60011 / 48002 no permission, 60020 an
  untrusted IP, 45009 too many calls; HTTP 200 throughout.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import requests

from bot.config import BotConfig
from bot.platforms.base import DeliveryError
from bot.platforms.feishu import TOKEN_INVALID as FEISHU_TOKEN_INVALID
from bot.platforms.tokens import DINGTALK_STALE_TOKEN, AppToken, adapter_token, with_fresh_token
from bot.platforms.wecom import TOKEN_ERRORS as WECOM_TOKEN_ERRORS
from handlers.directory import Member

TIMEOUT = 10.0
MAX_PAGES = 2000  # a directory of 100,000 people at 50 a page: far beyond a small shop; stops a loop

FEISHU_DENIED = frozenset({40004, 41050, 99991672})
FEISHU_LIMITED = frozenset({99991400, 99991403})
DINGTALK_LIMITED = frozenset({90002, 90018, 90020})
WECOM_DENIED = frozenset({60011, 48002, 60020})
WECOM_LIMITED = frozenset({45009})
WECOM_INACTIVE = frozenset({2, 5})  # disabled, left the company


class DirectoryError(Exception):
    """The directory could not be read; ``text`` says why in words an admin can act on (zh-CN)."""

    def __init__(self, text: str, detail: str = ""):
        super().__init__(detail or text)
        self.text = text


PLATFORMS = ("feishu", "dingtalk", "wecom")


def directory_bots(bots: Iterable[BotConfig]) -> list[str]:
    """The ids of the bots whose tenant has a directory to read (not the simulator)."""
    return [b.id for b in bots if b.platform in PLATFORMS]


def read_directory(bot: BotConfig, http: requests.Session, adapter: Any) -> list[Member]:
    """Every member of ``bot``'s tenant the app may see, each once (their departments merged)."""
    token = _token_of(adapter)
    if bot.platform == "feishu":
        reader: _Reader = _Feishu(bot, http, token)
    elif bot.platform == "dingtalk":
        reader = _DingTalk(bot, http, token)
    elif bot.platform == "wecom" and bot.get("corp_id"):
        reader = _WeCom(bot, http, token)
    else:
        raise DirectoryError(f"{bot.id} 没有可读取的通讯录（只支持飞书、钉钉和企业微信自建应用）。")
    merged: dict[str, Member] = {}
    try:
        for member in reader.members():
            seen = merged.get(member.external_id)
            if seen is not None:
                depts = seen.departments + tuple(d for d in member.departments if d not in seen.departments)
                member = Member(
                    seen.external_id, seen.name, depts, seen.active and member.active, seen.union_id
                )
            merged[member.external_id] = member
    except (TypeError, AttributeError, KeyError, ValueError) as exc:  # a shape the documents do not give
        raise DirectoryError(
            "平台返回了无法识别的通讯录数据，请稍后再试。", f"{bot.id}: {exc!r}"[:300]
        ) from None
    if not merged:  # stored, an empty pull would flag everyone as gone
        raise DirectoryError("通讯录里没有任何人：请检查应用的通讯录权限范围（可见范围）是否包含需要的部门。")
    return sorted(merged.values(), key=lambda m: (m.departments[:1], m.name, m.external_id))


def _token_of(adapter: Any) -> AppToken:
    token = adapter_token(adapter)
    if token is None:
        raise DirectoryError("这个机器人还没有配置应用凭证，无法读取通讯录。")
    return token


class _Reader:
    def __init__(self, bot: BotConfig, http: requests.Session, token: AppToken, default_base: str):
        self.bot_id = bot.id
        self.http = http
        self.token = token
        self.base = str(bot.get("api_base") or default_base).rstrip("/")

    def members(self) -> Iterator[Member]:
        raise NotImplementedError

    def _send(self, method: str, url: str, what: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        try:
            resp = self.http.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise DirectoryError("暂时连不上平台，请稍后再试。", f"{what}: {type(exc).__name__}") from None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise DirectoryError(
                "平台返回了无法识别的应答，请稍后再试。",
                f"{what}: HTTP {resp.status_code}, not a JSON object",
            )
        return resp.status_code, data

    def _app_token(self, stale: str | None) -> str:
        try:
            return self.token(stale)
        except DeliveryError as exc:
            raise DirectoryError("应用凭证无效，请检查机器人的配置（planloop doctor）。", str(exc)) from None


def _refusal(platform: str, code: object, message: object, denied: bool, limited: bool) -> DirectoryError:
    detail = f"{platform}: code={code} {str(message)[:200]}"
    if denied:
        return DirectoryError(
            f"{platform}拒绝了读取通讯录：请在开放平台给应用开通通讯录读取权限，并把可见范围设为需要的部门（错误码 {code}）。",
            detail,
        )
    if limited:
        return DirectoryError(f"{platform}限制了调用频率，请过几分钟再拉取（错误码 {code}）。", detail)
    return DirectoryError(f"{platform}没有返回通讯录（错误码 {code}）：{str(message)[:100]}", detail)


class _Feishu(_Reader):
    def __init__(self, bot: BotConfig, http: requests.Session, token: AppToken):
        super().__init__(bot, http, token, "https://open.feishu.cn")

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        status, data = with_fresh_token(
            self._app_token,
            lambda token: self._send(
                "GET", self.base + path, path, params=params, headers={"Authorization": f"Bearer {token}"}
            ),
            lambda answer: answer[1].get("code") in FEISHU_TOKEN_INVALID,
        )
        code = data.get("code")
        if code != 0:
            limited = code in FEISHU_LIMITED or status == 429
            raise _refusal("飞书", code, data.get("msg"), code in FEISHU_DENIED, limited)
        body = data.get("data")
        return body if isinstance(body, dict) else {}

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page_token = ""
        for _ in range(MAX_PAGES):
            body = self._get(
                path, {**params, "page_size": 50, **({"page_token": page_token} if page_token else {})}
            )
            yield from (i for i in body.get("items") or [] if isinstance(i, dict))
            page_token = str(body.get("page_token") or "")
            if not body.get("has_more") or not page_token:
                return

    def members(self) -> Iterator[Member]:
        names: dict[str, str] = {}
        for dept in self._pages(
            "/open-apis/contact/v3/departments/0/children",
            {"fetch_child": "true", "department_id_type": "open_department_id"},
        ):
            if isinstance(dept.get("open_department_id"), str):
                names[dept["open_department_id"]] = str(dept.get("name", ""))
        for dept_id in ["0", *names]:
            for user in self._pages(
                "/open-apis/contact/v3/users/find_by_department",
                {
                    "department_id": dept_id,
                    "department_id_type": "open_department_id",
                    "user_id_type": "open_id",
                },
            ):
                open_id = user.get("open_id")
                if not isinstance(open_id, str) or not open_id:
                    continue
                status = user.get("status")
                status = status if isinstance(status, dict) else {}
                gone = any(status.get(k) is True for k in ("is_resigned", "is_frozen", "is_exited"))
                depts = tuple(names[d] for d in user.get("department_ids") or [] if d in names)
                yield Member(open_id, str(user.get("name") or open_id), depts, not gone)


class _DingTalk(_Reader):
    def __init__(self, bot: BotConfig, http: requests.Session, token: AppToken):
        super().__init__(bot, http, token, "https://oapi.dingtalk.com")
        self.base = str(bot.get("oapi_base") or "https://oapi.dingtalk.com").rstrip("/")

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        _, data = with_fresh_token(
            self._app_token,
            lambda token: self._send(
                "POST", self.base + path, path, params={"access_token": token}, json=body
            ),
            lambda answer: answer[1].get("errcode") in DINGTALK_STALE_TOKEN,
        )
        code = data.get("errcode")
        if code != 0:
            denied = code == 88 or str(data.get("sub_code", "")) == "60011" or code == 60011
            raise _refusal("钉钉", code, data.get("errmsg"), denied, code in DINGTALK_LIMITED)
        return data.get("result")

    def members(self) -> Iterator[Member]:
        names: dict[int, str] = {}
        todo, order = [1], [1]
        while todo and len(order) < MAX_PAGES:
            parent = todo.pop(0)
            for dept in self._post("/topapi/v2/department/listsub", {"dept_id": parent}) or []:
                dept_id = dept.get("dept_id") if isinstance(dept, dict) else None
                if isinstance(dept_id, int) and dept_id not in names and dept_id != 1:
                    names[dept_id] = str(dept.get("name", ""))
                    todo.append(dept_id)
                    order.append(dept_id)
        for dept_id in order:
            cursor = 0
            for _ in range(MAX_PAGES):
                result = self._post(
                    "/topapi/v2/user/list", {"dept_id": dept_id, "cursor": cursor, "size": 100}
                )
                result = result if isinstance(result, dict) else {}
                for user in result.get("list") or []:
                    userid = user.get("userid") if isinstance(user, dict) else None
                    if not isinstance(userid, str) or not userid:
                        continue
                    depts = tuple(names[d] for d in user.get("dept_id_list") or [] if d in names)
                    union = user.get("unionid") if isinstance(user.get("unionid"), str) else None
                    yield Member(userid, str(user.get("name") or userid), depts, True, union)
                if not result.get("has_more") or not isinstance(result.get("next_cursor"), int):
                    break
                cursor = result["next_cursor"]


class _WeCom(_Reader):
    def __init__(self, bot: BotConfig, http: requests.Session, token: AppToken):
        super().__init__(bot, http, token, "https://qyapi.weixin.qq.com")

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        _, data = with_fresh_token(
            self._app_token,
            lambda token: self._send("GET", self.base + path, path, params={"access_token": token, **params}),
            lambda answer: answer[1].get("errcode") in WECOM_TOKEN_ERRORS,
        )
        code = data.get("errcode")
        if code != 0:
            raise _refusal("企业微信", code, data.get("errmsg"), code in WECOM_DENIED, code in WECOM_LIMITED)
        return data

    def members(self) -> Iterator[Member]:
        names: dict[int, str] = {}
        for dept in self._get("/cgi-bin/department/list", {}).get("department") or []:
            if isinstance(dept, dict) and isinstance(dept.get("id"), int):
                names[dept["id"]] = str(dept.get("name", ""))
        for dept_id in list(names)[:MAX_PAGES]:
            for user in self._get("/cgi-bin/user/list", {"department_id": dept_id}).get("userlist") or []:
                userid = user.get("userid") if isinstance(user, dict) else None
                if not isinstance(userid, str) or not userid:
                    continue
                depts = tuple(names[d] for d in user.get("department") or [] if d in names)
                yield Member(
                    userid, str(user.get("name") or userid), depts, user.get("status") not in WECOM_INACTIVE
                )
