"""JD Open Platform (JOS ``routerjson``): ``360buy_param_json``, MD5 signing, errors, orders.

Signing (open.jd.com dev-guide listId=2643 and the official SDK): every parameter that is
sent except ``sign`` — ``360buy_param_json`` being one string of JSON, signed byte for byte as
sent — sorted by key, concatenated ``key1value1…``, UPPER(MD5(secret + s + secret)), UTF-8.
The timestamp is signed exactly as sent (``2021-05-07 09:20:39.683+0800`` in the official vector).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sources.base import NeedsAdmin, SourceConfigLike, SourceDeps, Window
from sources.platform import MAX_PAGES, Order, PlatformError, PlatformSource, Refund, Token, money

BEIJING = ZoneInfo("Asia/Shanghai")
ORDER_STATES = "WAIT_SELLER_STOCK_OUT,WAIT_GOODS_RECEIVE_CONFIRM,WAIT_SELLER_DELIVERY,FINISHED_L"
ORDER_FIELDS = "orderId,orderPayment,paymentConfirmTime,orderState,pin"


def sign_jos(params: Mapping[str, str], secret: str) -> str:
    text = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return hashlib.md5((secret + text + secret).encode(), usedforsecurity=False).hexdigest().upper()


def jos_timestamp(now: datetime) -> str:
    """``2021-05-07 09:20:39.683+0800``: Beijing time with milliseconds and offset, like the SDK."""
    local = now.astimezone(BEIJING)
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def param_json(params: Mapping[str, Any]) -> str:
    """Business parameters as the one JSON string JOS signs (compact; Chinese kept as is)."""
    return json.dumps(params, ensure_ascii=False, separators=(",", ":"))


def classify_error(err: Mapping[str, Any]) -> PlatformError:
    code = str(err.get("code", ""))
    zh = str(err.get("zh_desc", "") or err.get("msg", ""))
    en = str(err.get("en_desc", "") or "")
    text = zh + en
    if code == "2" or any(w in text for w in ("限流", "频繁", "Call Limited", "limit")):
        kind = "rate"
    elif code in ("18", "19") or "access_token" in text.lower():
        kind = "auth"
    elif any(w in text for w in ("繁忙", "超时", "系统错误", "busy", "timeout")):
        kind = "busy"
    else:
        kind = "admin"  # 12 signature, 8 timestamp, 15 method, permissions …
    return PlatformError(kind, code, zh, sub_message=en)  # type: ignore[arg-type]


class JdSource(PlatformSource):
    kind = "jd"
    label = "京东开放平台"
    default_api_base = "https://api.jd.com/routerjson"
    has_ship_times = False  # pop.order.search gives no ship time without extra field packages
    has_refund_flags = False

    def __init__(self, config: SourceConfigLike, deps: SourceDeps):
        super().__init__(config, deps)
        self.oauth_base = str(config.get("oauth_base", "https://open-oauth.jd.com")).rstrip("/")

    def _send(self, method: str, params: dict[str, Any], token: Token | None, now: datetime) -> Any:
        sent = {
            "method": method,
            "app_key": self.app_key,
            "timestamp": jos_timestamp(now),
            "v": "2.0",
            "360buy_param_json": param_json(params),
        }
        if token is not None:
            sent["access_token"] = token.access_token
        sent["sign"] = sign_jos(sent, self.app_secret)
        data = self.http_json(self.deps.http.post(self.api_base, data=sent, timeout=self.timeout))
        if not isinstance(data, dict):
            raise PlatformError("busy", "format", "返回的 JSON 不是对象")
        if "error_response" in data:
            raise classify_error(data["error_response"])
        base = method.replace(".", "_")
        return data.get(base + "_responce") or data.get(base + "_response") or {}

    def _refresh(self, token: Token, now: datetime) -> Token:
        response = self.deps.http.get(
            self.oauth_base + "/oauth2/refresh_token",
            params={
                "app_key": self.app_key,
                "app_secret": self.app_secret,
                "grant_type": "refresh_token",
                "refresh_token": token.refresh_token,
            },
            timeout=self.timeout,
        )
        data = self.http_json(response)
        if not isinstance(data, dict) or not data.get("access_token"):
            code = str(data.get("code", "")) if isinstance(data, dict) else ""
            msg = str(data.get("msg", "")) if isinstance(data, dict) else ""
            raise PlatformError("admin", code or "refresh", msg or "续期结果里没有 access_token")
        expires_in = int(data.get("expires_in") or 0)
        return Token(
            access_token=str(data["access_token"]),
            refresh_token=str(data.get("refresh_token") or token.refresh_token),
            expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
        )

    def collect(self, window: Window, now: datetime) -> tuple[list[Order], list[Refund] | None]:
        start, end = self.day_bounds(window)
        fmt = "%Y-%m-%d %H:%M:%S"
        rows: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            body = self.call(
                "jingdong.pop.order.search",
                {
                    "start_date": start.astimezone(BEIJING).strftime(fmt),
                    "end_date": end.astimezone(BEIJING).strftime(fmt),
                    "order_state": ORDER_STATES,
                    "optional_fields": ORDER_FIELDS,
                    "page": str(page),
                    "page_size": str(self.page_size),
                },
                now,
            )
            result = body.get("searchorderinfo_result") or {}
            api = result.get("apiResult") or {}
            if api and api.get("success") is False:
                raise NeedsAdmin(
                    f"{self.label}：需要管理员处理（接口 jingdong.pop.order.search）",
                    code=str(api.get("code", "")),
                    platform_message=str(api.get("chineseErr") or api.get("englishErr") or ""),
                )
            batch = result.get("orderInfoList") or []
            rows.extend(batch)
            total = int(result.get("orderTotal") or 0)
            if not batch or len(rows) >= total:
                break
        orders = [
            Order(
                id=str(r.get("orderId")),
                paid_at=self.local(r.get("paymentConfirmTime")),
                amount=money(r.get("orderPayment")),
                buyer=r.get("pin") or r.get("open_id_buyer") or None,
            )
            for r in rows
        ]
        return orders, None
