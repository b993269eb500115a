"""The contacts APIs of Feishu, DingTalk and WeCom, added to each platform's fake (same host, same tokens).

``serve_directory(fake, org)`` adds the directory routes to a FakeFeishu, FakeDingTalk or FakeWeCom
before it starts. Each answers from one ``Org`` the way its platform documents it, and refuses what
the platform refuses:

- Feishu contact v3 (open.feishu.cn docs: department/children, user/find_by_department; generic error
  codes): a Bearer tenant token (99991663 when stale); ``page_size`` 1–50 (40011), default 10,
  ``page_token`` paging; ``department_id`` required on find_by_department (root ``0``) and of the
  ``department_id_type`` asked for; ``fetch_child`` for every level; direct members only; a department
  outside the app's contacts scope 40004 with HTTP 403; too many calls 99991400 with HTTP 429.
- DingTalk topapi (TOP Java SDK OapiV2DepartmentListsubRequest / OapiV2UserListRequest; the docs'
  form-encoded example): ``access_token`` in the query (40014); the body JSON, with numbers or numeric
  strings, or form-encoded; listsub one level (root 1); user/list that department only, ``size``
  1–100 and ``cursor`` required, ``has_more`` / ``next_cursor``; leavers are not listed; no permission
  errcode 88 with sub_code 60011; HTTP 200 throughout.
- WeCom (developer.work.weixin.qq.com path/90208, path/90201, 90455): ``department/list`` the whole
  tree, ``user/list?department_id`` that department only with ``status`` (1, 2, 4, 5); 40014 / 42001
  for a bad or stale token, 60011 outside the app's visible range; HTTP 200 throughout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask import Response, request


@dataclass
class OrgPerson:
    ids: dict[str, str]  # platform -> the id the bot messages: feishu open_id, dingtalk userid, wecom userid
    name: str
    departments: list[str]  # Dept keys
    status: str = "active"  # active | resigned | disabled | left | inactive (not yet activated)
    union_id: str = ""  # DingTalk unionId


@dataclass
class Dept:
    key: str
    name: str
    parent: str = ""  # "" = under the root


@dataclass
class Org:
    departments: list[Dept] = field(default_factory=list)
    people: list[OrgPerson] = field(default_factory=list)
    denied: bool = False  # the app lacks the contacts permission / visible range
    limited: int = 0  # answer this many calls with the platform's rate-limit error first
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def children(self, parent: str, every_level: bool) -> list[Dept]:
        direct = [d for d in self.departments if d.parent == parent]
        if not every_level:
            return direct
        out: list[Dept] = []
        for dept in direct:
            out += [dept, *self.children(dept.key, True)]
        return out

    def members(self, dept: str) -> list[OrgPerson]:
        return [p for p in self.people if dept in p.departments or (dept == "" and not p.departments)]

    def take_limit(self) -> bool:
        if self.limited > 0:
            self.limited -= 1
            return True
        return False


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status, content_type="application/json")


def serve_directory(fake: Any, org: Org) -> Org:
    """Add the platform's contacts routes to ``fake`` (before it starts); the calls land in ``org.calls``."""
    kind = type(fake).__name__
    if kind == "FakeFeishu":
        _feishu(fake, org)
    elif kind == "FakeDingTalk":
        _dingtalk(fake, org)
    elif kind == "FakeWeCom":
        _wecom(fake, org)
    else:
        raise TypeError(kind)
    return org


# --- Feishu -------------------------------------------------------------------------------------

FEISHU_ROOT = "0"


def _feishu(fake: Any, org: Org) -> None:
    def open_dept_id(key: str) -> str:
        return f"od-{key}"

    def guard() -> Response | None:
        org.calls.append((request.path, dict(request.args)))
        if (denied := fake._authorised()) is not None:
            return denied
        if org.take_limit():
            return fake._answer(
                429, 99991400, "request trigger frequency limit", headers={"x-ogw-ratelimit-limit": "50"}
            )
        if org.denied:
            return fake._answer(403, 40004, "no dept authority error")
        return None

    def page(items: list[dict[str, Any]]) -> Response:
        raw = request.args.get("page_size", "10")
        if not raw.isdigit() or not 1 <= int(raw) <= 50:
            return fake._answer(400, 40011, "page size is invalid")
        token = request.args.get("page_token", "")
        if token and not (token.startswith("pt-") and token[3:].isdigit()):
            return fake._answer(400, 40012, "page token is invalid error")
        start, size = (int(token[3:]) if token else 0), int(raw)
        chunk = items[start : start + size]
        more = start + size < len(items)
        data: dict[str, Any] = {"has_more": more, "items": chunk}
        if more:
            data["page_token"] = f"pt-{start + size}"
        return fake._answer(200, 0, "success", data)

    def dept_key(raw: str) -> str | None:
        """The Dept key of a department id given as ``department_id_type`` says (None: no such)."""
        if raw == FEISHU_ROOT:
            return ""
        if request.args.get("department_id_type", "open_department_id") != "open_department_id":
            return None  # planloop asks for open ids; a custom department_id would not match these
        return next((d.key for d in org.departments if open_dept_id(d.key) == raw), None)

    @fake.app.get("/open-apis/contact/v3/departments/<department_id>/children")
    def children(department_id: str) -> Response:
        if (refused := guard()) is not None:
            return refused
        parent = dept_key(department_id)
        if parent is None:
            return fake._answer(400, 40003, "department not found")
        # lark-oapi sends Python's spelling (True): a boolean, in either case
        every = request.args.get("fetch_child", "false").lower() == "true"
        items = [
            {"name": d.name, "open_department_id": open_dept_id(d.key),
             "parent_department_id": open_dept_id(d.parent) if d.parent else FEISHU_ROOT,
             "status": {"is_deleted": False}}
            for d in org.children(parent, every)
        ]  # fmt: skip
        return page(items)

    @fake.app.get("/open-apis/contact/v3/users/find_by_department")
    def users() -> Response:
        if (refused := guard()) is not None:
            return refused
        raw = request.args.get("department_id")
        if raw is None:
            return fake._answer(400, 99992402, "field validation failed: department_id is required")
        dept = dept_key(raw)
        if dept is None:
            return fake._answer(400, 40003, "department not found")
        if request.args.get("user_id_type", "open_id") != "open_id":
            return fake._answer(400, 99992402, "this fake answers open_id only")
        items = [
            {"open_id": p.ids["feishu"], "union_id": f"on_{p.ids['feishu']}", "name": p.name,
             "department_ids": [open_dept_id(k) for k in p.departments],
             "status": {"is_resigned": p.status in ("resigned", "left"), "is_frozen": p.status == "disabled",
                        "is_activated": p.status != "inactive", "is_exited": False, "is_unjoin": False}}
            for p in org.members(dept) if "feishu" in p.ids
        ]  # fmt: skip
        return page(items)


# --- DingTalk -----------------------------------------------------------------------------------

DINGTALK_ROOT = 1


def _dingtalk(fake: Any, org: Org) -> None:
    numbers = {d.key: n for n, d in enumerate(org.departments, start=2)}  # 1 is the root

    def error(code: int, msg: str, **extra: Any) -> Response:
        return _json({"errcode": code, "errmsg": msg, **extra})

    def params() -> dict[str, Any] | None:
        """The business parameters: a JSON body (numbers or numeric strings), or a form."""
        if request.form:
            return dict(request.form)
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else None

    def number(value: Any) -> int | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        return int(value) if isinstance(value, str) and value.isdigit() else None

    def guard() -> tuple[dict[str, Any] | None, Response | None]:
        org.calls.append((request.path, dict(request.args)))
        token = request.args.get("access_token", "")
        with fake.lock:
            expires = fake.tokens.get(token)
        if expires is None or expires <= fake.clock():
            return None, error(40014, "不合法的access_token")
        if org.take_limit():
            return None, error(90002, "您的服务器调用钉钉开放平台当前接口的所有请求都被暂时禁用了")
        if org.denied:
            return None, error(88, "ding talk error[subcode=60011,submsg=没有调用该接口的权限]",
                               sub_code="60011", sub_msg="没有调用该接口的权限")  # fmt: skip
        data = params()
        if data is None:
            return None, error(400002, "无效的参数")
        return data, None

    def key_of(dept_id: int | None) -> str | None:
        if dept_id == DINGTALK_ROOT:
            return ""
        return next((k for k, n in numbers.items() if n == dept_id), None)

    @fake.app.post("/topapi/v2/department/listsub")
    def listsub() -> Response:
        data, refused = guard()
        if refused is not None:
            return refused
        assert data is not None
        parent = key_of(number(data.get("dept_id", DINGTALK_ROOT)))
        if parent is None:
            return error(60003, "部门不存在")
        result = [
            {"dept_id": numbers[d.key], "name": d.name,
             "parent_id": numbers[d.parent] if d.parent else DINGTALK_ROOT,
             "create_dept_group": False, "auto_add_user": False}
            for d in org.children(parent, False)
        ]  # fmt: skip
        return _json({"errcode": 0, "errmsg": "ok", "result": result, "request_id": "fake"})

    @fake.app.post("/topapi/v2/user/list")
    def user_list() -> Response:
        data, refused = guard()
        if refused is not None:
            return refused
        assert data is not None
        dept, cursor, size = (number(data.get(k)) for k in ("dept_id", "cursor", "size"))
        if dept is None or cursor is None or size is None or not 1 <= size <= 100:
            return error(400002, "无效的参数: dept_id, cursor and size (1-100) are required")
        key = key_of(dept)
        if key is None:
            return error(60003, "部门不存在")
        listed = [p for p in org.members(key) if "dingtalk" in p.ids and p.status not in ("resigned", "left")]
        chunk = listed[cursor : cursor + size]
        more = cursor + size < len(listed)
        rows = [
            {"userid": p.ids["dingtalk"], "unionid": p.union_id or f"u-{p.ids['dingtalk']}", "name": p.name,
             "dept_id_list": [numbers[k] for k in p.departments] or [DINGTALK_ROOT],
             "active": p.status != "inactive", "admin": False, "leader": False}
            for p in chunk
        ]  # fmt: skip
        result: dict[str, Any] = {"has_more": more, "list": rows}
        if more:
            result["next_cursor"] = cursor + size
        return _json({"errcode": 0, "errmsg": "ok", "result": result, "request_id": "fake"})


# --- WeCom --------------------------------------------------------------------------------------

WECOM_ROOT = 1
WECOM_STATUS = {"active": 1, "disabled": 2, "inactive": 4, "left": 5, "resigned": 5}


def _wecom(fake: Any, org: Org) -> None:
    numbers = {d.key: n for n, d in enumerate(org.departments, start=2)}

    def refusal() -> dict[str, Any] | None:
        org.calls.append((request.path, dict(request.args)))
        token = request.args.get("access_token", "")
        with fake.lock:
            until = fake.tokens.get(token)
        if until is None:
            return {"errcode": 40014, "errmsg": "invalid access_token"}
        if until <= fake.clock():
            return {"errcode": 42001, "errmsg": "access_token expired"}
        if org.take_limit():
            return {"errcode": 45009, "errmsg": "api freq out of limit"}
        if org.denied:
            return {"errcode": 60011, "errmsg": "no privilege to access/modify contact/party/agent"}
        return None

    @fake.app.get("/cgi-bin/department/list")
    def department_list() -> Response:
        if (refused := refusal()) is not None:
            return _json(refused)
        tree = [{"id": WECOM_ROOT, "name": "公司", "parentid": 0, "order": 100000000}] + [
            {"id": numbers[d.key], "name": d.name, "parentid": numbers[d.parent] if d.parent else WECOM_ROOT,
             "order": 100000000 - n}
            for n, d in enumerate(org.departments)
        ]  # fmt: skip
        return _json({"errcode": 0, "errmsg": "ok", "department": tree})

    @fake.app.get("/cgi-bin/user/list")
    def user_list() -> Response:
        if (refused := refusal()) is not None:
            return _json({**refused, "userlist": []})  # WeCom keeps the empty list on an error
        raw = request.args.get("department_id", "")
        dept = int(raw) if raw.isdigit() else None
        key = "" if dept == WECOM_ROOT else next((k for k, n in numbers.items() if n == dept), None)
        if key is None:
            return _json({"errcode": 60003, "errmsg": "department not found", "userlist": []})
        rows = [
            {"userid": p.ids["wecom"], "name": p.name,
             "department": [numbers[k] for k in p.departments] or [WECOM_ROOT],
             "main_department": numbers[p.departments[0]] if p.departments else WECOM_ROOT,
             "status": WECOM_STATUS[p.status]}
            for p in org.members(key) if "wecom" in p.ids
        ]  # fmt: skip
        return _json({"errcode": 0, "errmsg": "ok", "userlist": rows})
