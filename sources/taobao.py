"""Taobao/Tmall Open Platform (TOP router): signing, errors, session refresh, trades and refunds.

Signing (open.taobao.com docId=101617, and the official SDKs): every request parameter except
``sign`` (and empty ones), sorted by key in byte order, concatenated ``key1value1key2value2…``;
``md5`` = MD5(secret + s + secret), ``hmac`` = HMAC-MD5(secret, s), ``hmac-sha256`` =
HMAC-SHA256(secret, s); uppercase hex. Values are signed raw, before URL encoding.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sources import jsonlimits
from sources.base import NeedsAdmin, SourceConfigLike, SourceDeps, Window
from sources.platform import (
    MAX_PAGES,
    Order,
    PlatformError,
    PlatformSource,
    Refund,
    Token,
    money,
)

BEIJING = ZoneInfo("Asia/Shanghai")
SIGN_METHODS = ("md5", "hmac", "hmac-sha256")
TRADE_FIELDS = "tid,status,payment,pay_time,consign_time,buyer_open_uid,orders.refund_status"
REFUND_FIELDS = "refund_id,tid,refund_fee,status,modified"
_BAN = re.compile(r"ban will last for (\d+) more seconds", re.IGNORECASE)


def sign_top(params: Mapping[str, str], secret: str, sign_method: str = "md5") -> str:
    """The TOP ``sign`` of a request's parameters (system and business, without ``sign``)."""
    text = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign" and k and params[k] != "")
    if sign_method == "md5":
        digest = hashlib.md5((secret + text + secret).encode(), usedforsecurity=False).hexdigest()
    elif sign_method == "hmac":
        digest = hmac.new(secret.encode(), text.encode(), hashlib.md5).hexdigest()
    elif sign_method == "hmac-sha256":
        digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    else:
        raise ValueError(f"unknown TOP sign_method {sign_method!r}")
    return digest.upper()


def top_timestamp(now: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in GMT+8, as TOP documents it (the server allows 10 minutes of skew)."""
    return now.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def response_key(method: str) -> str:
    """``taobao.trades.sold.get`` → ``trades_sold_get_response``."""
    return method.removeprefix("taobao.").replace(".", "_") + "_response"


def classify_error(err: Mapping[str, Any]) -> PlatformError:
    """TOP's ``error_response`` as retry-later (flow control, isp.*) or needs-admin."""
    code = str(err.get("code", ""))
    msg = str(err.get("msg", ""))
    sub_code = str(err.get("sub_code", "") or "")
    sub_msg = str(err.get("sub_msg", "") or "")
    kind: str
    retry_after: float | None = None
    if code in ("4", "5", "6", "7", "8") or sub_code.startswith("accesscontrol."):
        kind = "rate"
        ban = _BAN.search(sub_msg) or _BAN.search(msg)
        retry_after = float(int(ban.group(1)) + 1) if ban else None
    elif code in ("26", "27") or "sessionkey" in sub_code or "session-expired" in sub_code:
        kind = "auth"
    elif code == "10" or sub_code.startswith("isp."):
        kind = "busy"
    else:
        kind = "admin"  # 11/12 permissions, 25 signature, 29 app key, 31 timestamp, isv.* …
    return PlatformError(
        kind,  # type: ignore[arg-type]
        code,
        msg,
        sub_code=sub_code,
        sub_message=sub_msg,
        retry_after=retry_after,
    )


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class TaobaoSource(PlatformSource):
    kind = "taobao"
    label = "淘宝/天猫开放平台"
    default_api_base = "https://eco.taobao.com/router/rest"
    access_config_key = "session"  # TOP calls the access token "session"

    def __init__(self, config: SourceConfigLike, deps: SourceDeps):
        super().__init__(config, deps)
        self.sign_method = str(config.get("sign_method", "md5"))
        if self.sign_method not in SIGN_METHODS:
            raise NeedsAdmin(f"sources.{config.id}.sign_method：应为 {', '.join(SIGN_METHODS)} 之一")
        self.with_refunds = bool(config.get("refunds", True))

    def _send(self, method: str, params: dict[str, Any], token: Token | None, now: datetime) -> Any:
        system = {
            "method": method,
            "app_key": self.app_key,
            "timestamp": top_timestamp(now),
            "format": "json",
            "v": "2.0",
            "sign_method": self.sign_method,
        }
        if token is not None:
            system["session"] = token.access_token
        business = {k: _text(v) for k, v in params.items() if v is not None}
        system["sign"] = sign_top({**system, **business}, self.app_secret, self.sign_method)
        response = self.deps.http.post(self.api_base, params=system, data=business, timeout=self.timeout)
        data = self.http_json(response)
        if not isinstance(data, dict):
            raise PlatformError("busy", "format", "返回的 JSON 不是对象")
        if "error_response" in data:
            raise classify_error(data["error_response"])
        return data.get(response_key(method), {})

    def _refresh(self, token: Token, now: datetime) -> Token:
        body = self._send("taobao.top.auth.token.refresh", {"refresh_token": token.refresh_token}, None, now)
        raw = body.get("token_result")
        result = jsonlimits.loads(raw) if isinstance(raw, str) else (raw or {})
        if not result.get("access_token"):
            raise PlatformError("admin", "refresh", "续期结果里没有 access_token")
        expires_in = int(result.get("expires_in") or 0)
        re_expires_in = int(result.get("re_expires_in") or 0)
        return Token(
            access_token=str(result["access_token"]),
            refresh_token=str(result.get("refresh_token") or token.refresh_token),
            expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
            refresh_expires_at=now + timedelta(seconds=re_expires_in) if re_expires_in else None,
        )

    def _pages(
        self, method: str, params: dict[str, Any], list_key: str, item_key: str, now: datetime
    ) -> list[Any]:
        items: list[Any] = []
        for page in range(1, MAX_PAGES + 1):
            body = self.call(method, {**params, "page_no": page, "page_size": self.page_size}, now)
            batch = (body.get(list_key) or {}).get(item_key) or []
            items.extend(batch)
            has_next = body.get("has_next")
            if has_next is None:  # an old-style answer: total_results
                has_next = len(items) < int(body.get("total_results") or 0)
            if not has_next or not batch:
                break
        return items

    def collect(self, window: Window, now: datetime) -> tuple[list[Order], list[Refund] | None]:
        start, end = self.day_bounds(window)
        trades = self._pages(
            "taobao.trades.sold.get",
            {
                "fields": TRADE_FIELDS,
                "start_created": top_timestamp(start),
                "end_created": top_timestamp(end),
                "use_has_next": True,
            },
            "trades",
            "trade",
            now,
        )
        orders = []
        for t in trades:
            subs = (t.get("orders") or {}).get("order") or []
            orders.append(
                Order(
                    id=str(t.get("tid")),
                    paid_at=self.local(t.get("pay_time")),
                    amount=money(t.get("payment")),
                    buyer=t.get("buyer_open_uid") or None,
                    shipped_at=self.local(t.get("consign_time")),
                    refunded=any(o.get("refund_status") == "SUCCESS" for o in subs),
                )
            )
        if not self.with_refunds:
            return orders, None
        rows = self._pages(
            "taobao.refunds.receive.get",
            {
                "fields": REFUND_FIELDS,
                "start_modified": top_timestamp(start),
                "end_modified": top_timestamp(end),
                "use_has_next": True,
            },
            "refunds",
            "refund",
            now,
        )
        refunds = [
            Refund(str(r.get("refund_id")), money(r.get("refund_fee")), done)
            for r in rows
            if r.get("status") == "SUCCESS" and (done := self.local(r.get("modified"))) is not None
        ]
        return orders, refunds
