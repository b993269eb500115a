"""After-sales lists on the fake TOP, JOS, POP and Doudian gateways (tests/fakes/shops.py).

Each subclass answers its platform's after-sales list before the order routes see the request,
after checking the request the platform's way with the gateway's own signing code (never the
connector's): app key, timestamp window, signature, token, then rate limits. Field names follow
docs/aftersales.md; the JD list's wrapper (``pageResult``) is not public and is this fake's.
"""

from __future__ import annotations

import hmac
import json
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


class TopAftersales(FakeTop):
    cases: list[FakeCase]

    def routes(self) -> None:
        super().routes()
        self.cases = []

        @self.app.before_request
        def refunds() -> Any:
            p = params_of(request)
            if p.get("method") != "taobao.refunds.receive.get" or "reason" not in p.get("fields", "").split(
                ","
            ):
                return None  # the order connector's refund amounts: the order routes answer
            self.calls.append(("aftersales", p))
            if p.get("app_key") != self.app_key:
                return self.error(29, "Invalid app Key")
            try:
                sent_at = parse_bj(p.get("timestamp", ""))
            except ValueError:
                return self.error(31, "Invalid timestamp")
            if abs(sent_at - self.clock()) > timedelta(minutes=10):
                return self.error(31, "Invalid timestamp")
            if not hmac.compare_digest(self.top_sign(p, p.get("sign_method", "md5")), p.get("sign", "")):
                return self.error(25, "Invalid signature")
            if not self.token_ok(p.get("session")):
                return self.error(27, "Invalid session", "invalid-sessionkey", "SessionKey非法")
            if self.take_rate_limit():
                return self.error(7, "App Call Limited", "accesscontrol.limited-by-app-access-count",
                                  f"This ban will last for {self.ban_seconds} more seconds")  # fmt: skip
            lo, hi = parse_bj(p["start_modified"]), parse_bj(p["end_modified"])
            rows = _in(self.cases, lo.timestamp(), hi.timestamp())
            chunk, more = self.page(rows, int(p.get("page_no", 1)), int(p.get("page_size", 40)))
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


class PopAftersales(FakePop):
    cases: list[FakeCase]

    def routes(self) -> None:
        super().routes()
        self.cases = []

        @self.app.before_request
        def refunds() -> Any:
            p = params_of(request)
            if p.get("type") != "pdd.refund.list.increment.get":
                return None
            self.calls.append(("aftersales", p))
            if p.get("client_id") != self.app_key:
                return self.error(10016, "client_id不存在")
            ts = p.get("timestamp", "")
            if not ts.isdigit() or abs(int(ts) - self.clock().timestamp()) > 600:
                return self.error(20002, "timestamp已过期或格式错误")
            if not hmac.compare_digest(self.pop_sign(p), p.get("sign", "")):
                return self.error(20004, "签名校验失败")
            if not self.token_ok(p.get("access_token")):
                return self.error(10019, "access_token已过期")
            if self.take_rate_limit():
                return self.error(52101, "当前接口已被限流，请稍后重试", "52101", "rate limited")
            for key in ("after_sales_status", "after_sales_type", "start_updated_at", "end_updated_at"):
                if key not in p:
                    return self.error(10000, f"参数错误：缺少 {key}")
            lo, hi = int(p["start_updated_at"]), int(p["end_updated_at"])
            if hi - lo > 1800:
                return self.error(10000, "参数错误：开始时间结束时间间距不超过 30 分钟")
            rows = _in(self.cases, lo, hi)
            chunk, _ = self.page(rows, int(p.get("page", 1)), int(p.get("page_size", 100)))
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
            return {"refund_increment_get_response": {"refund_list": refund_list, "total_count": len(rows)}}


class JosAftersales(FakeJos):
    cases: list[FakeCase]

    def routes(self) -> None:
        super().routes()
        self.cases = []

        @self.app.before_request
        def services() -> Any:
            if request.path != "/routerjson":
                return None
            p = params_of(request)
            if p.get("method") != "jingdong.asc.query.list":
                return None
            self.calls.append(("aftersales", p))
            if p.get("app_key") != self.app_key:
                return self.error("20", "app_key无效", "Invalid app_key")
            try:
                sent_at = datetime.strptime(p.get("timestamp", ""), "%Y-%m-%d %H:%M:%S.%f%z")
            except ValueError:
                return self.error("8", "时间戳格式错误", "Invalid Timestamp")
            if abs(sent_at - self.clock()) > timedelta(minutes=6):
                return self.error("8", "时间戳错误", "Invalid Timestamp")
            if not hmac.compare_digest(self.jos_sign(p), p.get("sign", "")):
                return self.error("12", "签名无效", "Invalid Signature")
            if not self.token_ok(p.get("access_token")):
                return self.error("19", "无效access_token", "Invalid access_token")
            if self.take_rate_limit():
                return self.error("2", "调用次数超过限制", "App Call Limited")
            q = json.loads(p["360buy_param_json"])
            lo, hi = parse_bj(q["updateTimeBegin"]), parse_bj(q["updateTimeEnd"])
            rows = _in(self.cases, lo.timestamp(), hi.timestamp())
            chunk, _ = self.page(rows, int(q["pageNumber"]), int(q["pageSize"]))
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
            return {
                "jingdong_asc_query_list_responce": {
                    "code": "0",
                    "pageResult": {"data": data, "total": len(rows)},
                }
            }


class DoudianAftersales(FakeDoudian):
    cases: list[FakeCase]

    def routes(self) -> None:
        super().routes()
        self.cases = []

        @self.app.before_request
        def aftersales() -> Any:
            if request.path != "/afterSale/List":
                return None
            q = dict(request.args.items())
            raw = request.get_data(as_text=True)
            self.calls.append(("aftersales", {**q, "param_json": raw}))
            if q.get("method") != "afterSale.List":
                return self.answer(40001, "方法与路径不一致", "isv.method-path-mismatch")
            if q.get("app_key") != self.app_key:
                return self.answer(40002, "app_key无效", "isv.app-key-invalid")
            ts = q.get("timestamp", "")
            if not ts.isdigit() or abs(int(ts) - self.clock().timestamp()) > 600:
                return self.answer(40003, "时间戳已过期", "isv.timestamp-expired")
            body = self.sorted_json(raw)
            if not hmac.compare_digest(self.dd_sign(q, body), q.get("sign", "")):
                return self.answer(40005, "签名校验失败", "isv.signature-invalid", "sign不匹配")
            if not self.token_ok(q.get("access_token")):
                return self.answer(
                    30001, "access_token已过期", "isv.access-token-expired", "access_token已过期"
                )
            if self.take_rate_limit():
                return self.answer(50001, "调用频率超限", "dev.rate-limit", "请稍后重试")
            params = json.loads(body)
            if params.get("order_by") != ["update_time asc"]:
                # "当使用 update_start_time 和 update_end_time 时，请配合传入 order_by=update_time"
                return self.answer(40004, "非法的参数", "isv.parameter-invalid:11000", "order_by")
            rows = _in(self.cases, params["update_start_time"], params["update_end_time"] + 1)
            page, size = int(params["page"]), int(params["size"])
            chunk, more = self.page(rows, page + 1, size)
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
            return self.answer(10000, "success", data={"items": items, "has_more": more, "total": len(rows),
                                                        "page": page, "size": size})  # fmt: skip


AFTERSALES_FAKES: dict[str, type[ShopGateway]] = {
    "taobao": TopAftersales,
    "jd": JosAftersales,
    "pdd": PopAftersales,
    "doudian": DoudianAftersales,
}
