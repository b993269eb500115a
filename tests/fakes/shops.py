"""Fake TOP, JOS, POP and Doudian gateways: real HTTP on 127.0.0.1, checking requests the platform's way.

Each fake recomputes the signature with its own code (never the connector's), rejects a wrong
signature or a stale timestamp with the platform's error shape, pages its orders, expires and
refreshes tokens, and answers rate-limit errors when told to (``rate_limited = n``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, Request, jsonify, request
from werkzeug.serving import make_server

BEIJING = ZoneInfo("Asia/Shanghai")


@dataclass
class FakeOrder:
    id: str
    created_at: datetime
    amount: Decimal
    paid_at: datetime | None = None
    buyer: str = ""
    shipped_at: datetime | None = None
    refunded: bool = False


@dataclass
class FakeRefund:
    id: str
    order_id: str
    amount: Decimal
    modified: datetime
    status: str = "SUCCESS"


def bj(dt: datetime | None) -> str:
    return dt.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if dt else ""


def parse_bj(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)


class ShopGateway:
    """What the four fakes share: a thread-served Flask app, tokens with expiry, a call log."""

    def __init__(self, clock: Callable[[], datetime], app_key: str = "app-1", app_secret: str = "s3cret"):
        self.clock = clock
        self.app_key = app_key
        self.app_secret = app_secret
        self.orders: list[FakeOrder] = []
        self.refunds: list[FakeRefund] = []
        self.access: dict[str, datetime] = {}
        self.refresh: dict[str, datetime] = {}
        self.rate_limited = 0  # answer the next n data calls with the platform's rate-limit error
        self.ban_seconds = 3
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.refreshes = 0
        self.app = Flask(type(self).__name__)
        self.routes()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()

    def routes(self) -> None:
        raise NotImplementedError

    def grant(self, ttl: timedelta = timedelta(hours=24)) -> tuple[str, str]:
        access, refresh = "at-" + secrets.token_hex(6), "rt-" + secrets.token_hex(6)
        self.access[access] = self.clock() + ttl
        self.refresh[refresh] = self.clock() + timedelta(days=30)
        return access, refresh

    def token_ok(self, token: str | None) -> bool:
        expires = self.access.get(token or "")
        return expires is not None and self.clock() < expires

    def use_refresh(self, refresh: str) -> tuple[str, str] | None:
        expires = self.refresh.pop(refresh, None)  # a refresh token is spent when used
        if expires is None or self.clock() >= expires:
            return None
        self.refreshes += 1
        return self.grant()

    def take_rate_limit(self) -> bool:
        if self.rate_limited > 0:
            self.rate_limited -= 1
            return True
        return False

    def paid(self) -> list[FakeOrder]:
        return sorted(self.orders, key=lambda o: o.created_at)

    @staticmethod
    def page(items: list[Any], page: int, size: int) -> tuple[list[Any], bool]:
        chunk = items[(page - 1) * size : page * size]
        return chunk, page * size < len(items)


def params_of(req: Request) -> dict[str, str]:
    merged = dict(req.args.items())
    merged.update(req.form.items())
    return merged


# ---------------------------------------------------------------- Taobao TOP


class FakeTop(ShopGateway):
    def top_sign(self, p: dict[str, str], method: str) -> str:
        pairs = sorted((k, v) for k, v in p.items() if k != "sign" and v)
        joined = "".join(k + v for k, v in pairs).encode()
        key = self.app_secret.encode()
        if method == "md5":
            return hashlib.md5(key + joined + key).hexdigest().upper()
        algo = hashlib.md5 if method == "hmac" else hashlib.sha256
        return hmac.new(key, joined, algo).hexdigest().upper()

    def error(self, code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> Any:
        body: dict[str, Any] = {"code": code, "msg": msg, "request_id": secrets.token_hex(6)}
        if sub_code:
            body.update(sub_code=sub_code, sub_msg=sub_msg)
        return jsonify({"error_response": body})

    def routes(self) -> None:
        @self.app.post("/router/rest")
        def rest() -> Any:
            p = params_of(request)
            method = p.get("method", "")
            self.calls.append((method, p))
            if not method:
                return self.error(21, "Missing method")
            if p.get("app_key") != self.app_key:
                return self.error(29, "Invalid app Key")
            if "sign" not in p:
                return self.error(24, "Missing signature")
            try:
                sent_at = parse_bj(p.get("timestamp", ""))
            except ValueError:
                return self.error(31, "Invalid timestamp")
            if abs(sent_at - self.clock()) > timedelta(minutes=10):
                return self.error(31, "Invalid timestamp")
            if not hmac.compare_digest(self.top_sign(p, p.get("sign_method", "md5")), p["sign"]):
                return self.error(25, "Invalid signature")
            if method == "taobao.top.auth.token.refresh":
                fresh = self.use_refresh(p.get("refresh_token", ""))
                if fresh is None:
                    return self.error(
                        15, "Remote service error", "isv.refresh-token-invalid", "refresh_token无效"
                    )
                result = {
                    "access_token": fresh[0],
                    "refresh_token": fresh[1],
                    "expires_in": 86400,
                    "re_expires_in": 2592000,
                    "token_type": "Bearer",
                }
                return jsonify({"top_auth_token_refresh_response": {"token_result": json.dumps(result)}})
            if "session" not in p:
                return self.error(26, "Missing session")
            if not self.token_ok(p["session"]):
                return self.error(27, "Invalid session", "invalid-sessionkey", "SessionKey非法")
            if self.take_rate_limit():
                return self.error(
                    7,
                    "App Call Limited",
                    "accesscontrol.limited-by-app-access-count",
                    f"This ban will last for {self.ban_seconds} more seconds",
                )
            page, size = int(p.get("page_no", 1)), int(p.get("page_size", 40))
            if method == "taobao.trades.sold.get":
                lo, hi = parse_bj(p["start_created"]), parse_bj(p["end_created"])
                rows = [o for o in self.paid() if lo <= o.created_at < hi]
                chunk, more = self.page(rows, page, size)
                trades = [
                    {
                        "tid": int(o.id),
                        "status": "TRADE_FINISHED" if o.paid_at else "WAIT_BUYER_PAY",
                        "payment": f"{o.amount:.2f}",
                        "pay_time": bj(o.paid_at),
                        "consign_time": bj(o.shipped_at),
                        "buyer_open_uid": o.buyer,
                        "orders": {"order": [{"refund_status": "SUCCESS" if o.refunded else "NO_REFUND"}]},
                    }
                    for o in chunk
                ]
                for t in trades:  # TOP leaves empty fields out
                    for k in ("pay_time", "consign_time"):
                        if not t[k]:
                            del t[k]
                return jsonify(
                    {
                        "trades_sold_get_response": {
                            "trades": {"trade": trades},
                            "has_next": more,
                            "request_id": "r",
                        }
                    }
                )
            if method == "taobao.refunds.receive.get":
                lo, hi = parse_bj(p["start_modified"]), parse_bj(p["end_modified"])
                rows = [r for r in self.refunds if lo <= r.modified < hi]
                chunk, more = self.page(rows, page, size)
                refunds = [
                    {
                        "refund_id": int(r.id),
                        "tid": int(r.order_id),
                        "refund_fee": f"{r.amount:.2f}",
                        "status": r.status,
                        "modified": bj(r.modified),
                    }
                    for r in chunk
                ]
                return jsonify(
                    {"refunds_receive_get_response": {"refunds": {"refund": refunds}, "has_next": more}}
                )
            return self.error(22, "Invalid method")


# ---------------------------------------------------------------- JD JOS


class FakeJos(ShopGateway):
    def jos_sign(self, p: dict[str, str]) -> str:
        body = self.app_secret
        for k in sorted(p):
            if k != "sign":
                body += k + p[k]
        body += self.app_secret
        return hashlib.md5(body.encode("utf-8")).hexdigest().upper()

    @staticmethod
    def error(code: str, zh: str, en: str) -> Any:
        return jsonify({"error_response": {"code": code, "zh_desc": zh, "en_desc": en}})

    def routes(self) -> None:
        @self.app.post("/routerjson")
        def router() -> Any:
            p = params_of(request)
            method = p.get("method", "")
            self.calls.append((method, p))
            if p.get("app_key") != self.app_key:
                return self.error("20", "app_key无效", "Invalid app_key")
            if "sign" not in p:
                return self.error("11", "缺少签名", "Missing Signature")
            try:
                sent_at = datetime.strptime(p.get("timestamp", ""), "%Y-%m-%d %H:%M:%S.%f%z")
            except ValueError:
                return self.error("8", "时间戳格式错误", "Invalid Timestamp")
            if abs(sent_at - self.clock()) > timedelta(minutes=6):
                return self.error("8", "时间戳错误，允许客户端请求时间误差为6分钟", "Invalid Timestamp")
            if not hmac.compare_digest(self.jos_sign(p), p["sign"]):
                return self.error("12", "签名无效", "Invalid Signature")
            if not p.get("access_token"):
                return self.error("18", "缺少access_token参数", "Missing access_token")
            if not self.token_ok(p["access_token"]):
                return self.error("19", "无效access_token", "Invalid access_token")
            if self.take_rate_limit():
                return self.error("2", "调用次数超过限制", "App Call Limited")
            if method != "jingdong.pop.order.search":
                return self.error("15", "无效方法", "Invalid Method")
            q = json.loads(p["360buy_param_json"])
            lo, hi = parse_bj(q["start_date"]), parse_bj(q["end_date"])
            rows = [o for o in self.paid() if lo <= o.created_at < hi]
            chunk, _ = self.page(rows, int(q["page"]), int(q["page_size"]))
            infos = [
                {
                    "orderId": o.id,
                    "orderPayment": f"{o.amount:.2f}",
                    "paymentConfirmTime": bj(o.paid_at) if o.paid_at else "0001-01-01 00:00:00",
                    "orderState": "FINISHED_L" if o.paid_at else "WAIT_PAY",
                    "pin": o.buyer,
                }
                for o in chunk
            ]
            return jsonify(
                {
                    "jingdong_pop_order_search_responce": {
                        "code": "0",
                        "searchorderinfo_result": {
                            "apiResult": {"success": True, "code": "0", "chineseErr": "", "englishErr": ""},
                            "orderTotal": len(rows),
                            "orderInfoList": infos,
                        },
                    }
                }
            )

        @self.app.get("/oauth2/refresh_token")
        def refresh() -> Any:
            a = request.args
            self.calls.append(("oauth2/refresh_token", dict(a.items())))
            if a.get("app_key") != self.app_key or not hmac.compare_digest(
                a.get("app_secret", ""), self.app_secret
            ):
                return jsonify({"code": 2001, "msg": "app_key或app_secret错误"})
            if a.get("grant_type") != "refresh_token":
                return jsonify({"code": 2002, "msg": "grant_type错误"})
            fresh = self.use_refresh(a.get("refresh_token", ""))
            if fresh is None:
                return jsonify({"code": 2003, "msg": "refresh_token无效或已过期"})
            return jsonify(
                {
                    "access_token": fresh[0],
                    "expires_in": 86400,
                    "refresh_token": fresh[1],
                    "scope": "snsapi_base",
                    "time": int(self.clock().timestamp() * 1000),
                    "token_type": "bearer",
                    "code": 0,
                }
            )


# ---------------------------------------------------------------- Pinduoduo POP


class FakePop(ShopGateway):
    def pop_sign(self, p: dict[str, str]) -> str:
        inner = "".join(f"{k}{v}" for k, v in sorted(p.items()) if k != "sign")
        return hashlib.md5(f"{self.app_secret}{inner}{self.app_secret}".encode()).hexdigest().upper()

    @staticmethod
    def error(code: int, msg: str, sub_code: str = "", sub_msg: str = "") -> Any:
        return jsonify(
            {
                "error_response": {
                    "error_code": code,
                    "error_msg": msg,
                    "sub_code": sub_code,
                    "sub_msg": sub_msg,
                    "request_id": secrets.token_hex(8),
                }
            }
        )

    def routes(self) -> None:
        @self.app.post("/api/router")
        def router() -> Any:
            p = params_of(request)
            method = p.get("type", "")
            self.calls.append((method, p))
            if p.get("client_id") != self.app_key:
                return self.error(10016, "client_id不存在")
            ts = p.get("timestamp", "")
            # the exact code for a stale timestamp is not in the public table; the shape is
            if not ts.isdigit() or abs(int(ts) - self.clock().timestamp()) > 600:
                return self.error(20002, "timestamp已过期或格式错误")
            if not hmac.compare_digest(self.pop_sign(p), p.get("sign", "")):
                return self.error(20004, "签名校验失败")
            if method == "pdd.pop.auth.token.refresh":
                fresh = self.use_refresh(p.get("refresh_token", ""))
                if fresh is None:
                    return self.error(10019, "refresh_token已过期")
                now = int(self.clock().timestamp())
                return jsonify(
                    {
                        "pop_auth_token_refresh_response": {
                            "access_token": fresh[0],
                            "expires_at": now + 86400,
                            "expires_in": 86400,
                            "refresh_token": fresh[1],
                            "refresh_token_expires_at": now + 30 * 86400,
                            "owner_id": "1",
                            "owner_name": "小店",
                        }
                    }
                )
            if not self.token_ok(p.get("access_token")):
                return self.error(10019, "access_token已过期")
            if self.take_rate_limit():
                return self.error(52101, "当前接口已被限流，请稍后重试", "52101", "rate limited")
            if method != "pdd.order.list.get":
                return self.error(10000, "参数错误：type")
            lo, hi = int(p["start_confirm_at"]), int(p["end_confirm_at"])
            if hi - lo > 86400:
                return self.error(10000, "参数错误：时间跨度不能超过24小时")
            rows = [o for o in self.paid() if o.paid_at and lo <= o.paid_at.timestamp() < hi]
            chunk, _ = self.page(rows, int(p["page"]), int(p["page_size"]))
            orders = [
                {
                    "order_sn": f"2611{o.id}",
                    "pay_amount": float(o.amount),
                    "confirm_time": bj(o.paid_at),
                    "shipping_time": bj(o.shipped_at),
                    "refund_status": 4 if o.refunded else 1,
                }
                for o in chunk
            ]
            return jsonify({"order_list_get_response": {"order_list": orders, "total_count": len(rows)}})


# ---------------------------------------------------------------- Doudian
# The envelope (code 10000 / msg / sub_code / sub_msg / data / log_id) follows public clients;
# the error codes below are this fake's, the connector reads the sub_code words.


class FakeDoudian(ShopGateway):
    shop_id = "77001"

    @staticmethod
    def sorted_json(text: str) -> str:
        def order(v: Any) -> Any:
            if isinstance(v, dict):
                return dict(sorted((k, order(x)) for k, x in v.items()))
            if isinstance(v, list):
                return [order(x) for x in v]
            return v

        return json.dumps(order(json.loads(text or "{}")), ensure_ascii=False, separators=(",", ":"))

    def dd_sign(self, q: dict[str, str], body: str) -> str:
        s = self.app_secret
        plain = (
            s + "app_key" + q.get("app_key", "") + "method" + q.get("method", "") + "param_json" + body
            + "timestamp" + q.get("timestamp", "") + "v" + q.get("v", "") + s
        )  # fmt: skip
        if q.get("sign_method") == "hmac-sha256":
            return hmac.new(s.encode(), plain.encode(), hashlib.sha256).hexdigest()
        return hashlib.md5(plain.encode()).hexdigest()

    def answer(self, code: int, msg: str, sub_code: str = "", sub_msg: str = "", data: Any = None) -> Any:
        return jsonify(
            {
                "code": code,
                "msg": msg,
                "sub_code": sub_code,
                "sub_msg": sub_msg,
                "data": data if data is not None else {},
                "log_id": secrets.token_hex(10),
            }
        )

    def token_data(self, fresh: tuple[str, str]) -> dict[str, Any]:
        return {
            "access_token": fresh[0],
            "expires_in": 7 * 86400,
            "refresh_token": fresh[1],
            "scope": "SCOPE",
            "shop_id": self.shop_id,
            "shop_name": "小店",
        }

    def routes(self) -> None:
        @self.app.post("/<path:path>")
        def api(path: str) -> Any:
            q = dict(request.args.items())
            method = q.get("method", "")
            raw = request.get_data(as_text=True)
            self.calls.append((method, {**q, "param_json": raw}))
            if path != method.replace(".", "/"):
                return self.answer(40001, "方法与路径不一致", "isv.method-path-mismatch")
            if q.get("app_key") != self.app_key:
                return self.answer(40002, "app_key无效", "isv.app-key-invalid")
            ts = q.get("timestamp", "")
            if not ts.isdigit() or abs(int(ts) - self.clock().timestamp()) > 600:
                return self.answer(40003, "时间戳已过期", "isv.timestamp-expired")
            try:
                body = self.sorted_json(raw)
            except ValueError:
                return self.answer(40004, "param_json不是合法JSON", "isv.param-json-invalid")
            if not hmac.compare_digest(self.dd_sign(q, body), q.get("sign", "")):
                return self.answer(40005, "签名校验失败", "isv.signature-invalid", "sign不匹配")
            params = json.loads(body)
            if method == "token.create":
                if params.get("grant_type") != "authorization_self" or params.get("shop_id") != self.shop_id:
                    return self.answer(40006, "店铺未授权", "isv.shop-not-authorized")
                return self.answer(10000, "success", data=self.token_data(self.grant()))
            if method == "token.refresh":
                fresh = self.use_refresh(params.get("refresh_token", ""))
                if fresh is None:
                    return self.answer(40007, "refresh_token已过期", "isv.refresh-token-expired")
                return self.answer(10000, "success", data=self.token_data(fresh))
            if not self.token_ok(q.get("access_token")):
                return self.answer(
                    30001, "access_token已过期", "isv.access-token-expired", "access_token已过期"
                )
            if self.take_rate_limit():
                return self.answer(50001, "调用频率超限", "dev.rate-limit", "请稍后重试")
            if method != "order.searchList":
                return self.answer(40008, "方法不存在", "isv.method-not-found")
            lo, hi = params["create_time_start"], params["create_time_end"]
            rows = [o for o in self.paid() if lo <= o.created_at.timestamp() < hi]
            chunk, _ = self.page(rows, params["page"] + 1, params["size"])
            data = {
                "shop_order_list": [
                    {
                        "order_id": f"49{o.id}",
                        "pay_amount": int(o.amount * 100),
                        "pay_time": int(o.paid_at.timestamp()) if o.paid_at else 0,
                        "ship_time": int(o.shipped_at.timestamp()) if o.shipped_at else 0,
                        "create_time": int(o.created_at.timestamp()),
                        "doudian_open_id": o.buyer,
                        "order_status": 3,
                    }
                    for o in chunk
                ],
                "total": len(rows),
                "page": params["page"],
                "size": params["size"],
            }
            return self.answer(10000, "success", data=data)


FAKES: dict[str, type[ShopGateway]] = {
    "taobao": FakeTop,
    "jd": FakeJos,
    "pdd": FakePop,
    "doudian": FakeDoudian,
}
API_PATH = {"taobao": "/router/rest", "jd": "/routerjson", "pdd": "/api/router", "doudian": ""}
