"""After-sales lists on the fake TOP, JOS, POP and Doudian gateways (tests/fakes/shops.py).

Each subclass answers its platform's after-sales list before the order routes see the request,
after checking the request the platform's way with the gateway's own signing code (never the
connector's): app key, timestamp window, signature, token, then rate limits. Field names come from
the SDK sources each section of docs/admin/aftersales.md names (bububa/opentaobao for TOP,
Cherrs/pdd-rs and open-pdd-net-sdk for POP, …); the JD list's wrapper (``pageResult``) is not
public and is this fake's own assumption, as that page says.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import request

from tests.fakes.shops import FakeDoudian, FakeJos, FakePop, FakeTop, ShopGateway, bj, params_of, parse_bj


@dataclass
class FakeCase:
    id: str
    opened: datetime
    closed: datetime | None
    reason: str
    updated: datetime | None = None  # defaults to closed, else opened

    @property
    def modified(self) -> datetime:
        return self.updated or self.closed or self.opened


def _in(cases: list[FakeCase], lo: float, hi: float) -> list[FakeCase]:
    return sorted((c for c in cases if lo <= c.modified.timestamp() < hi), key=lambda c: c.modified)


Params = dict[str, str]
Check = tuple[Callable[[Any, Params], bool], Callable[[Any, Params], Any]]  # (refused?, the gateway's answer)


@dataclass(frozen=True)
class ListRoute:
    """One platform's after-sales list, as data: which request it is, the checks in the
    platform's order (the first refusal answers), the window and page asked for, the answer."""

    params: Callable[[], Params | None]  # this request's parameters, or None: not the list
    checks: tuple[Check, ...]
    window: Callable[[Params], tuple[float, float]]  # [lo, hi) in epoch seconds
    page: Callable[[Params], tuple[int, int]]  # 1-based page, size
    answer: Callable[[Any, list[FakeCase], bool, int, Params], Any]  # gw, chunk, more, total, params


class AftersalesList(ShopGateway):
    """A gateway that answers its after-sales list (``LIST``) before the order routes see the request."""

    LIST: ListRoute
    cases: list[FakeCase]

    def routes(self) -> None:
        super().routes()
        self.cases = []
        spec = type(self).LIST

        @self.app.before_request
        def aftersales() -> Any:
            p = spec.params()
            if p is None:
                return None  # not the after-sales list: the order routes answer
            self.calls.append(("aftersales", p))
            for refused, answer in spec.checks:
                if refused(self, p):
                    return answer(self, p)
            rows = _in(self.cases, *spec.window(p))
            chunk, more = self.page(rows, *spec.page(p))
            return spec.answer(self, chunk, more, len(rows), p)


def _bad_bj(text: str, now: datetime, within: timedelta, fmt: str | None = None) -> bool:
    try:
        sent_at = datetime.strptime(text, fmt) if fmt else parse_bj(text)
    except ValueError:
        return True
    return abs(sent_at - now) > within


def _bad_epoch(text: str, now: datetime) -> bool:
    return not text.isdigit() or abs(int(text) - now.timestamp()) > 600


def _bj_window(lo: str, hi: str) -> tuple[float, float]:
    return parse_bj(lo).timestamp(), parse_bj(hi).timestamp()


def _top_params() -> Params | None:
    p = params_of(request)
    if p.get("method") != "taobao.refunds.receive.get" or "reason" not in p.get("fields", "").split(","):
        return None  # the order connector's refund amounts
    return p


def _top_answer(gw: Any, chunk: list[FakeCase], more: bool, total: int, p: Params) -> Any:
    refunds = [
        {
            "refund_id": int(c.id),
            "status": "SUCCESS" if c.closed else "WAIT_SELLER_AGREE",
            "created": bj(c.opened),
            "modified": bj(c.modified),
            "reason": c.reason,
        }
        for c in chunk
    ]
    return {"refunds_receive_get_response": {"refunds": {"refund": refunds}, "has_next": more}}


TOP_LIST = ListRoute(
    params=_top_params,
    checks=(
        (lambda gw, p: p.get("app_key") != gw.app_key, lambda gw, p: gw.error(29, "Invalid app Key")),
        (
            lambda gw, p: _bad_bj(p.get("timestamp", ""), gw.clock(), timedelta(minutes=10)),
            lambda gw, p: gw.error(31, "Invalid timestamp"),
        ),
        (
            lambda gw, p: (
                not hmac.compare_digest(gw.top_sign(p, p.get("sign_method", "md5")), p.get("sign", ""))
            ),
            lambda gw, p: gw.error(25, "Invalid signature"),
        ),
        (
            lambda gw, p: not gw.token_ok(p.get("session")),
            lambda gw, p: gw.error(27, "Invalid session", "invalid-sessionkey", "SessionKey非法"),
        ),
        (
            lambda gw, p: gw.take_rate_limit(),
            lambda gw, p: gw.error(
                7,
                "App Call Limited",
                "accesscontrol.limited-by-app-access-count",
                f"This ban will last for {gw.ban_seconds} more seconds",
            ),  # fmt: skip
        ),
    ),
    window=lambda p: _bj_window(p["start_modified"], p["end_modified"]),
    page=lambda p: (int(p.get("page_no", 1)), int(p.get("page_size", 40))),
    answer=_top_answer,
)


def _pop_params() -> Params | None:
    p = params_of(request)
    return p if p.get("type") == "pdd.refund.list.increment.get" else None


_POP_REQUIRED = ("after_sales_status", "after_sales_type", "start_updated_at", "end_updated_at")


def _pop_answer(gw: Any, chunk: list[FakeCase], more: bool, total: int, p: Params) -> Any:
    refund_list = [
        {
            "id": int(c.id),
            "order_sn": f"2611-{c.id}",
            "after_sale_reason": c.reason,
            "after_sales_status": 10 if c.closed else 2,
            "after_sales_type": 2,
            "created_time": bj(c.opened),
            "updated_time": bj(c.modified),
        }
        for c in chunk
    ]
    return {"refund_increment_get_response": {"refund_list": refund_list, "total_count": total}}


POP_LIST = ListRoute(
    params=_pop_params,
    checks=(
        (lambda gw, p: p.get("client_id") != gw.app_key, lambda gw, p: gw.error(10016, "client_id不存在")),
        (
            lambda gw, p: _bad_epoch(p.get("timestamp", ""), gw.clock()),
            lambda gw, p: gw.error(20002, "timestamp已过期或格式错误"),
        ),
        (
            lambda gw, p: not hmac.compare_digest(gw.pop_sign(p), p.get("sign", "")),
            lambda gw, p: gw.error(20004, "签名校验失败"),
        ),
        (
            lambda gw, p: not gw.token_ok(p.get("access_token")),
            lambda gw, p: gw.error(10019, "access_token已过期"),
        ),
        (
            lambda gw, p: gw.take_rate_limit(),
            lambda gw, p: gw.error(52101, "当前接口已被限流，请稍后重试", "52101", "rate limited"),
        ),
        (
            lambda gw, p: any(key not in p for key in _POP_REQUIRED),
            lambda gw, p: gw.error(10000, f"参数错误：缺少 {next(k for k in _POP_REQUIRED if k not in p)}"),
        ),
        (
            lambda gw, p: int(p["end_updated_at"]) - int(p["start_updated_at"]) > 1800,
            lambda gw, p: gw.error(10000, "参数错误：开始时间结束时间间距不超过 30 分钟"),
        ),
    ),
    window=lambda p: (int(p["start_updated_at"]), int(p["end_updated_at"])),
    page=lambda p: (int(p.get("page", 1)), int(p.get("page_size", 100))),
    answer=_pop_answer,
)


def _jos_params() -> Params | None:
    if request.path != "/routerjson":
        return None
    p = params_of(request)
    return p if p.get("method") == "jingdong.asc.query.list" else None


def _jos_query(p: Params) -> dict[str, Any]:
    return dict(json.loads(p["360buy_param_json"]))


def _jos_answer(gw: Any, chunk: list[FakeCase], more: bool, total: int, p: Params) -> Any:
    data = [
        {
            "serviceId": int(c.id),
            "orderId": 88000 + int(c.id),
            "applyTime": bj(c.opened),
            "finishTime": bj(c.closed) if c.closed else "",
            "serviceStatusName": "完成" if c.closed else "待审核",
            "questionDesc": c.reason,
        }
        for c in chunk
    ]
    return {"jingdong_asc_query_list_responce": {"code": "0", "pageResult": {"data": data, "total": total}}}


JOS_LIST = ListRoute(
    params=_jos_params,
    checks=(
        (
            lambda gw, p: p.get("app_key") != gw.app_key,
            lambda gw, p: gw.error("20", "app_key无效", "Invalid app_key"),
        ),
        (
            lambda gw, p: _bad_bj(
                p.get("timestamp", ""), gw.clock(), timedelta(minutes=6), "%Y-%m-%d %H:%M:%S.%f%z"
            ),
            lambda gw, p: gw.error("8", "时间戳错误", "Invalid Timestamp"),
        ),
        (
            lambda gw, p: not hmac.compare_digest(gw.jos_sign(p), p.get("sign", "")),
            lambda gw, p: gw.error("12", "签名无效", "Invalid Signature"),
        ),
        (
            lambda gw, p: not gw.token_ok(p.get("access_token")),
            lambda gw, p: gw.error("19", "无效access_token", "Invalid access_token"),
        ),
        (
            lambda gw, p: gw.take_rate_limit(),
            lambda gw, p: gw.error("2", "调用次数超过限制", "App Call Limited"),
        ),
    ),
    window=lambda p: _bj_window(_jos_query(p)["updateTimeBegin"], _jos_query(p)["updateTimeEnd"]),
    page=lambda p: (int(_jos_query(p)["pageNumber"]), int(_jos_query(p)["pageSize"])),
    answer=_jos_answer,
)


def _dd_params() -> Params | None:
    if request.path != "/afterSale/List":
        return None
    return {**dict(request.args.items()), "param_json": request.get_data(as_text=True)}


def _dd_body(p: Params) -> dict[str, Any]:
    return dict(json.loads(p["param_json"] or "{}"))


def _dd_answer(gw: Any, chunk: list[FakeCase], more: bool, total: int, p: Params) -> Any:
    items = [
        {
            "aftersale_info": {
                "aftersale_id": c.id,
                "aftersale_type": 1,
                "aftersale_status": 12 if c.closed else 6,
                "apply_time": int(c.opened.timestamp()),
                "update_time": int(c.modified.timestamp()),
                "aftersale_status_to_final_time": int(c.closed.timestamp()) if c.closed else 0,
            },
            "text_part": {
                "reason_text": c.reason,
                "aftersale_status_text": "售后成功" if c.closed else "待商家同意",
            },
        }
        for c in chunk
    ]
    page, size = int(_dd_body(p)["page"]), int(_dd_body(p)["size"])
    data = {"items": items, "has_more": more, "total": total, "page": page, "size": size}
    return gw.answer(10000, "success", data=data)


DOUDIAN_LIST = ListRoute(
    params=_dd_params,
    checks=(
        (
            lambda gw, p: p.get("method") != "afterSale.List",
            lambda gw, p: gw.answer(40001, "方法与路径不一致", "isv.method-path-mismatch"),
        ),
        (
            lambda gw, p: p.get("app_key") != gw.app_key,
            lambda gw, p: gw.answer(40002, "app_key无效", "isv.app-key-invalid"),
        ),
        (
            lambda gw, p: _bad_epoch(p.get("timestamp", ""), gw.clock()),
            lambda gw, p: gw.answer(40003, "时间戳已过期", "isv.timestamp-expired"),
        ),
        (
            lambda gw, p: (
                not hmac.compare_digest(gw.dd_sign(p, gw.sorted_json(p["param_json"])), p.get("sign", ""))
            ),
            lambda gw, p: gw.answer(40005, "签名校验失败", "isv.signature-invalid", "sign不匹配"),
        ),
        (
            lambda gw, p: not gw.token_ok(p.get("access_token")),
            lambda gw, p: gw.answer(
                30001, "access_token已过期", "isv.access-token-expired", "access_token已过期"
            ),
        ),
        (
            lambda gw, p: gw.take_rate_limit(),
            lambda gw, p: gw.answer(50001, "调用频率超限", "dev.rate-limit", "请稍后重试"),
        ),
        (
            # "当使用 update_start_time 和 update_end_time 时，请配合传入 order_by=update_time"
            lambda gw, p: _dd_body(p).get("order_by") != ["update_time asc"],
            lambda gw, p: gw.answer(40004, "非法的参数", "isv.parameter-invalid:11000", "order_by"),
        ),
    ),
    window=lambda p: (_dd_body(p)["update_start_time"], _dd_body(p)["update_end_time"] + 1),
    page=lambda p: (int(_dd_body(p)["page"]) + 1, int(_dd_body(p)["size"])),  # Doudian counts pages from 0
    answer=_dd_answer,
)


class TopAftersales(AftersalesList, FakeTop):
    LIST = TOP_LIST


class PopAftersales(AftersalesList, FakePop):
    LIST = POP_LIST


class JosAftersales(AftersalesList, FakeJos):
    LIST = JOS_LIST


class DoudianAftersales(AftersalesList, FakeDoudian):
    LIST = DOUDIAN_LIST


AFTERSALES_FAKES: dict[str, type[ShopGateway]] = {
    "taobao": TopAftersales,
    "jd": JosAftersales,
    "pdd": PopAftersales,
    "doudian": DoudianAftersales,
}
