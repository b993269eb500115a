"""Pinduoduo Open Platform (POP router): ``type``/``client_id``/unix ``timestamp``, MD5 signing, orders.

Signing (open.pinduoduo.com 签名说明 and its official example): every parameter except
``sign`` (common and business), sorted by key, concatenated ``key1value1…``,
UPPER(MD5(client_secret + s + client_secret)). There is no ``sign_method`` parameter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sources.base import SourceConfigLike, SourceDeps, Window
from sources.platform import MAX_PAGES, Order, PlatformError, PlatformSource, Refund, Token, money

# Response keys cannot be derived from the method name on POP: register each one.
RESPONSE_KEYS = {
    "pdd.order.list.get": "order_list_get_response",
    "pdd.pop.auth.token.refresh": "pop_auth_token_refresh_response",
    "pdd.refund.list.increment.get": "refund_increment_get_response",
}
RATE_CODES = {52101, 70031}
BUSY_CODES = {52102, 52103, 70033}
AUTH_CODES = {10019}
REFUND_SUCCESS = 4  # refund_status: 1 none, 2 in progress, 3 refunding, 4 refunded


def sign_pop(params: Mapping[str, str], client_secret: str) -> str:
    text = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign")
    return (
        hashlib.md5((client_secret + text + client_secret).encode(), usedforsecurity=False)
        .hexdigest()
        .upper()
    )


def classify_error(err: Mapping[str, Any]) -> PlatformError:
    try:
        code = int(err.get("error_code") or 0)
    except (TypeError, ValueError):
        code = 0
    kind: str
    if code in RATE_CODES:
        kind = "rate"
    elif code in BUSY_CODES or 50000 <= code <= 52002:
        kind = "busy"
    elif code in AUTH_CODES:
        kind = "auth"
    else:
        kind = "admin"  # 20004 signature, 20005 IP whitelist, 20031 permission package, 7003x risk …
    return PlatformError(
        kind,  # type: ignore[arg-type]
        str(code or err.get("error_code", "")),
        str(err.get("error_msg", "")),
        sub_code=str(err.get("sub_code", "") or ""),
        sub_message=str(err.get("sub_msg", "") or ""),
    )


class PddSource(PlatformSource):
    kind = "pdd"
    label = "拼多多开放平台"
    default_api_base = "https://gw-api.pinduoduo.com/api/router"
    has_buyers = False  # order lists carry no buyer id, so no buyers and no 客单价

    def __init__(self, config: SourceConfigLike, deps: SourceDeps):
        super().__init__(config, deps)
        # the order list's confirm-time range is limited; ask one slice at a time
        self.span = timedelta(hours=float(config.get("span_hours", 24)))

    def _send(self, method: str, params: dict[str, Any], token: Token | None, now: datetime) -> Any:
        sent = {
            "type": method,
            "client_id": self.app_key,
            "timestamp": str(int(now.timestamp())),
            "data_type": "JSON",
            **{k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()},
        }
        if token is not None:
            sent["access_token"] = token.access_token
        sent["sign"] = sign_pop(sent, self.app_secret)
        data = self.http_json(self.deps.http.post(self.api_base, data=sent, timeout=self.timeout))
        if not isinstance(data, dict):
            raise PlatformError("busy", "format", "返回的 JSON 不是对象")
        if "error_response" in data:
            raise classify_error(data["error_response"])
        return data.get(RESPONSE_KEYS.get(method, ""), {})

    def _refresh(self, token: Token, now: datetime) -> Token:
        body = self._send("pdd.pop.auth.token.refresh", {"refresh_token": token.refresh_token}, None, now)
        if not body.get("access_token"):
            raise PlatformError("admin", "refresh", "续期结果里没有 access_token")

        def at(key: str) -> datetime | None:
            v = body.get(key)
            return datetime.fromtimestamp(int(v), UTC) if v else None

        return Token(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or token.refresh_token),
            expires_at=at("expires_at"),
            refresh_expires_at=at("refresh_token_expires_at"),
        )

    def collect(self, window: Window, now: datetime) -> tuple[list[Order], list[Refund] | None]:
        start, end = self.day_bounds(window, lead_days=0)  # filtered by payment confirm time
        rows: list[dict[str, Any]] = []
        slice_start = start
        while slice_start < end:
            slice_end = min(slice_start + self.span, end)
            for page in range(1, MAX_PAGES + 1):
                body = self.call(
                    "pdd.order.list.get",
                    {
                        "order_status": 5,
                        "refund_status": 5,
                        "start_confirm_at": int(slice_start.timestamp()),
                        "end_confirm_at": int(slice_end.timestamp()),
                        "page": page,
                        "page_size": self.page_size,
                    },
                    now,
                )
                batch = body.get("order_list") or []
                rows.extend(batch)
                total = int(body.get("total_count") or 0)
                if not batch or page * self.page_size >= total:
                    break
            slice_start = slice_end
        seen: set[str] = set()
        orders = []
        for r in rows:
            sn = str(r.get("order_sn"))
            if sn in seen:
                continue
            seen.add(sn)
            orders.append(
                Order(
                    id=sn,
                    paid_at=self.local(r.get("confirm_time")),
                    amount=money(r.get("pay_amount")),
                    shipped_at=self.local(r.get("shipping_time")),
                    refunded=r.get("refund_status") == REFUND_SUCCESS,
                )
            )
        return orders, None
