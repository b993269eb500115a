"""Doudian (抖店) Open Platform: ``param_json`` with recursively sorted keys, fixed-order signature.

Signing (official Java SDK ``SignUtil``): ``secret + "app_key"+app_key + "method"+method +
"param_json"+param_json + "timestamp"+timestamp + "v"+v + secret`` (the access token is not
signed); ``md5`` = lowercase hex MD5 of that string, ``hmac-sha256`` = lowercase hex
HMAC-SHA256 keyed with the secret over the same, secret-wrapped string.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sources.base import FetchResult, NeedsAdmin, SourceConfigLike, SourceDeps, Window
from sources.platform import MAX_PAGES, Order, PlatformError, PlatformSource, Refund, Token

SIGN_METHODS = ("md5", "hmac-sha256")
SUCCESS = 10000


def sort_params(value: Any) -> Any:
    """Objects get their keys sorted, recursively (also inside arrays of objects)."""
    if isinstance(value, dict):
        return {k: sort_params(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_params(v) for v in value]
    return value


def param_json(params: dict[str, Any] | None) -> str:
    """Sorted, compact, with ``/`` and Chinese left unescaped; ``{}`` when there is nothing."""
    if not params:
        return "{}"
    return json.dumps(sort_params(params), ensure_ascii=False, separators=(",", ":"))


def sign_doudian(
    app_key: str,
    secret: str,
    method: str,
    param_json_text: str,
    timestamp: str,
    v: str = "2",
    sign_method: str = "md5",
) -> str:
    pattern = (
        f"{secret}app_key{app_key}method{method}param_json{param_json_text}timestamp{timestamp}v{v}{secret}"
    )
    if sign_method == "md5":
        return hashlib.md5(pattern.encode(), usedforsecurity=False).hexdigest()
    if sign_method == "hmac-sha256":
        return hmac.new(secret.encode(), pattern.encode(), hashlib.sha256).hexdigest()
    raise ValueError(f"unknown Doudian sign_method {sign_method!r}")


def classify_error(data: dict[str, Any]) -> PlatformError:
    """Doudian's envelope: ``code`` (10000 = success) with ``msg``/``sub_code``/``sub_msg``; older
    answers carry ``err_no``/``message``. The code table is not public; read the sub_code words."""
    code = str(data.get("code", data.get("err_no", "")))
    msg = str(data.get("msg", data.get("message", "")) or "")
    sub_code = str(data.get("sub_code", "") or "")
    sub_msg = str(data.get("sub_msg", "") or "")
    words = f"{sub_code} {msg} {sub_msg}".lower()
    kind: str
    if any(
        w in words for w in ("rate-limit", "ratelimit", "frequency", "too-many", "限流", "频繁", "超过调用")
    ):
        kind = "rate"
    elif "token" in words and any(w in words for w in ("expire", "invalid", "过期", "失效", "不存在")):
        kind = "auth"
    elif sub_code.startswith("isp.") or any(
        w in words for w in ("系统繁忙", "服务不可用", "timeout", "busy")
    ):
        kind = "busy"
    else:
        kind = "admin"
    return PlatformError(kind, code, msg, sub_code=sub_code, sub_message=sub_msg)  # type: ignore[arg-type]


class DoudianSource(PlatformSource):
    kind = "doudian"
    label = "抖店开放平台"
    default_api_base = "https://openapi-fxg.jinritemai.com"
    has_refund_flags = False  # refund state lives in after-sale APIs, not the order list

    def __init__(self, config: SourceConfigLike, deps: SourceDeps):
        super().__init__(config, deps)
        self.sign_method = str(config.get("sign_method", "hmac-sha256"))
        if self.sign_method not in SIGN_METHODS:
            raise NeedsAdmin(f"sources.{config.id}.sign_method：应为 {', '.join(SIGN_METHODS)} 之一")
        self.shop_id = str(config.get("shop_id", "") or "")

    def _send(self, method: str, params: dict[str, Any], token: Token | None, now: datetime) -> Any:
        body = param_json(params)
        ts = str(int(now.timestamp()))
        query = {
            "app_key": self.app_key,
            "method": method,
            "timestamp": ts,
            "v": "2",
            "sign_method": self.sign_method,
            "sign": sign_doudian(self.app_key, self.app_secret, method, body, ts, "2", self.sign_method),
        }
        if token is not None:
            query["access_token"] = token.access_token
        response = self.deps.http.post(
            f"{self.api_base}/{method.replace('.', '/')}",
            params=query,
            data=body.encode(),
            headers={"Content-Type": "application/json;charset=UTF-8", "Accept": "application/json"},
            timeout=self.timeout,
        )
        data = self.http_json(response)
        if not isinstance(data, dict):
            raise PlatformError("busy", "format", "返回的 JSON 不是对象")
        ok = data.get("code") == SUCCESS or ("code" not in data and data.get("err_no") == 0)
        if not ok:
            raise classify_error(data)
        return data.get("data") or {}

    def _token_from(self, data: dict[str, Any], now: datetime, old: Token | None) -> Token:
        if not data.get("access_token"):
            raise PlatformError("admin", "token", "返回里没有 access_token")
        expires_in = int(data.get("expires_in") or 0)
        return Token(
            access_token=str(data["access_token"]),
            refresh_token=str(data.get("refresh_token") or (old.refresh_token if old else "")),
            expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
            refresh_expires_at=now + timedelta(days=14),  # the refresh token lives 14 days
        )

    def _refresh(self, token: Token, now: datetime) -> Token:
        data = self._send(
            "token.refresh", {"grant_type": "refresh_token", "refresh_token": token.refresh_token}, None, now
        )
        return self._token_from(data, now, token)

    def fetch(self, window: Window, now: datetime) -> FetchResult:
        self.ensure_self_token(now)
        return super().fetch(window, now)

    def ensure_self_token(self, now: datetime) -> None:
        if self.tokens.current() is None and self.shop_id:
            # 自用型 apps create their own token from the shop id
            try:
                data = self._with_retries(
                    lambda: self._send(
                        "token.create",
                        {"code": "", "grant_type": "authorization_self", "shop_id": self.shop_id},
                        None,
                        now,
                    )
                )
            except PlatformError as exc:
                raise NeedsAdmin(
                    f"{self.label}：无法创建令牌",
                    code=exc.platform_code,
                    platform_message=exc.platform_message,
                ) from None
            self.tokens.save(self._token_from(data, now, None))

    def collect(self, window: Window, now: datetime) -> tuple[list[Order], list[Refund] | None]:
        start, end = self.day_bounds(window)
        rows: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):  # pages count from 0
            data = self.call(
                "order.searchList",
                {
                    "create_time_start": int(start.timestamp()),
                    "create_time_end": int(end.timestamp()),
                    "page": page,
                    "size": self.page_size,
                    "order_by": "create_time",
                    "order_asc": True,
                },
                now,
            )
            batch = data.get("shop_order_list") or []
            rows.extend(batch)
            total = int(data.get("total") or 0)
            if not batch or len(rows) >= total:
                break

        def when(v: object) -> datetime | None:
            return datetime.fromtimestamp(int(str(v)), UTC) if v else None

        orders = [
            Order(
                id=str(r.get("order_id")),
                paid_at=when(r.get("pay_time")),
                amount=Decimal(int(r.get("pay_amount") or 0)) / 100,  # 分 → 元
                buyer=r.get("doudian_open_id") or None,
                shipped_at=when(r.get("ship_time")),
            )
            for r in rows
        ]
        return orders, None
