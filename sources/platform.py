"""What the shop-platform connectors share: OAuth tokens, error classes, retries, daily metrics.

Each platform module (taobao, jd, pdd, doudian) supplies its signing, its request/response
shapes, its error table and how it pages orders; this module turns orders and refunds into
daily samples and decides, from an error's class, whether to wait and retry, refresh the
token, or stop and ask the admin.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import requests

from sources import jsonlimits
from sources.base import (
    FetchResult,
    MetricSample,
    NeedsAdmin,
    RetryLater,
    SourceConfigLike,
    SourceDeps,
    Window,
)

ErrorKind = Literal["rate", "busy", "auth", "admin"]
TOKEN_KEY = "oauth"  # noqa: S105 - a state key, not a secret
REFRESH_MARGIN = timedelta(minutes=10)  # refresh a token this long before it expires
MAX_PAGES = 1000
SHOP_MAX_BYTES = 20 * 1024 * 1024  # one page of a shop platform's answer; far above any real page
T = TypeVar("T")


class PlatformError(Exception):
    """An error answer from a platform, with what it said and how we read it."""

    def __init__(
        self,
        kind: ErrorKind,
        code: str,
        message: str,
        *,
        sub_code: str = "",
        sub_message: str = "",
        retry_after: float | None = None,
    ):
        super().__init__(f"{code} {message} {sub_code} {sub_message}".strip())
        self.kind = kind
        self.code = code
        self.message = message
        self.sub_code = sub_code
        self.sub_message = sub_message
        self.retry_after = retry_after

    @property
    def platform_code(self) -> str:
        return f"{self.code}/{self.sub_code}" if self.sub_code else self.code

    @property
    def platform_message(self) -> str:
        return " ".join(x for x in (self.message, self.sub_message) if x)


# ---------------------------------------------------------------- tokens


@dataclass
class Token:
    access_token: str
    refresh_token: str = ""
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    origin: str = ""  # fingerprint of the configured token this one descends from

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "refresh_expires_at": self.refresh_expires_at.isoformat()
                if self.refresh_expires_at
                else None,
                "origin": self.origin,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Token:
        d = json.loads(text)

        def when(v: str | None) -> datetime | None:
            return datetime.fromisoformat(v) if v else None

        return cls(
            d["access_token"],
            d.get("refresh_token", ""),
            when(d.get("expires_at")),
            when(d.get("refresh_expires_at")),
            d.get("origin", ""),
        )

    def expires_soon(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at - now <= REFRESH_MARGIN


def fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TokenStore:
    """The current token: the newest refreshed one (kept as a secret in the source's state), or the
    one in the config. When the admin puts a new token in the config (re-authorised), it wins."""

    def __init__(self, deps: SourceDeps, configured: Token | None):
        self.state = deps.state
        self.configured = configured
        if configured is not None:
            configured.origin = fingerprint(configured.access_token + configured.refresh_token)

    def current(self) -> Token | None:
        raw = self.state.get_secret(TOKEN_KEY)
        stored = Token.from_json(raw) if raw else None
        if stored is not None and (self.configured is None or stored.origin == self.configured.origin):
            return stored
        return self.configured

    def save(self, token: Token) -> None:
        if self.configured is not None:
            token.origin = self.configured.origin
        self.state.set_secret(TOKEN_KEY, token.to_json())


def configured_token(config: SourceConfigLike, access_key: str = "access_token") -> Token | None:
    access = config.secret(access_key) or config.secret("access_token")
    refresh = config.secret("refresh_token")
    if not access and not refresh:
        return None
    expires = config.get("token_expires_at")
    return Token(access, refresh, datetime.fromisoformat(str(expires)) if expires else None)


# ---------------------------------------------------------------- orders → daily samples


@dataclass(frozen=True)
class Order:
    """One paid order as the connectors need it; None = the platform does not say."""

    id: str
    paid_at: datetime | None
    amount: Decimal
    buyer: str | None = None
    shipped_at: datetime | None = None
    refunded: bool | None = None


@dataclass(frozen=True)
class Refund:
    id: str
    amount: Decimal
    done_at: datetime


def _pct(part: int, whole: int) -> Decimal:
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def derive_daily(
    orders: Iterable[Order],
    refunds: Iterable[Refund] | None,
    window: Window,
    *,
    tz: ZoneInfo,
    now: datetime,
    source: str,
    scope: str,
    has_buyers: bool,
    has_ship_times: bool,
    has_refund_flags: bool,
) -> list[MetricSample]:
    """Daily metrics from orders paid that day (team timezone):

    - ``pay_amount``: sum paid; ``pay_buyers``: distinct buyers; ``avg_order_value`` = pay_amount /
      pay_buyers (as 生意参谋 defines 客单价);
    - ``refund_rate`` (%): orders paid that day that are refunded by now ÷ orders paid that day;
    - ``ship_within_24h_rate`` (%): orders paid that day shipped within 24 h of payment ÷ orders paid
      that day, only once the last of them has had its 24 h (so it does not rise and fall);
    - ``refund_amount``: refunds completed that day.
    A day with no paid orders has pay_amount 0 and pay_buyers 0 and no rates.
    """
    by_day: dict[date, list[Order]] = {d: [] for d in window.days()}
    for o in orders:
        if o.paid_at is None:
            continue
        d = o.paid_at.astimezone(tz).date()
        if d in by_day:
            by_day[d].append(o)
    refund_by_day: dict[date, Decimal] = {d: Decimal(0) for d in window.days()}
    for r in refunds or ():
        d = r.done_at.astimezone(tz).date()
        if d in refund_by_day:
            refund_by_day[d] += r.amount
    out: list[MetricSample] = []

    def add(metric: str, day: date, value: Decimal) -> None:
        out.append(MetricSample(metric, scope, day, value, source, now))

    for day, paid in by_day.items():
        if datetime.combine(day, time(0), tz) > now:
            continue  # a day that has not begun
        amount = sum((o.amount for o in paid), Decimal(0))
        add("pay_amount", day, amount)
        if has_buyers:
            buyers = len({o.buyer for o in paid if o.buyer})
            add("pay_buyers", day, Decimal(buyers))
            if buyers:
                add("avg_order_value", day, (amount / buyers).quantize(Decimal("0.01"), ROUND_HALF_UP))
        if paid and has_refund_flags:
            add("refund_rate", day, _pct(sum(1 for o in paid if o.refunded), len(paid)))
        day_end = datetime.combine(day + timedelta(days=1), time(0), tz)
        if paid and has_ship_times and now >= day_end + timedelta(hours=24):
            fast = sum(
                1
                for o in paid
                if o.shipped_at is not None
                and o.paid_at is not None
                and o.shipped_at - o.paid_at <= timedelta(hours=24)
            )
            add("ship_within_24h_rate", day, _pct(fast, len(paid)))
        if refunds is not None:
            add("refund_amount", day, refund_by_day[day])
    return out


# ---------------------------------------------------------------- the common connector


class PlatformSource:
    """A shop-platform connector. Subclasses implement ``_send``, ``_refresh`` and ``collect``."""

    kind = ""
    label = ""  # the platform's name in messages
    default_api_base = ""
    has_buyers = True
    has_ship_times = True
    has_refund_flags = True

    def __init__(self, config: SourceConfigLike, deps: SourceDeps):
        self.id = config.id
        self.config = config
        self.deps = deps
        self.tz = ZoneInfo(deps.timezone)
        self.app_key = str(config.get("app_key", "") or "")
        self.app_secret = config.secret("app_secret")
        if not self.app_key or not self.app_secret:
            raise NeedsAdmin(f"sources.{config.id}：{self.label}需要 app_key 和 app_secret")
        self.api_base = str(config.get("api_base", self.default_api_base)).rstrip("/")
        self.scope = str(config.get("scope", "shop"))
        self.timeout = float(config.get("timeout", 20))
        self.max_retries = int(config.get("retries", 3))
        self.max_wait = float(config.get("max_wait", 120))  # seconds of in-poll waiting, in total
        self.page_size = int(config.get("page_size", 100))
        self.tokens = TokenStore(deps, configured_token(config, self.access_config_key))
        self.calls = 0
        self._waited = 0.0

    access_config_key = "access_token"

    # -- what a platform module provides

    def _send(self, method: str, params: dict[str, Any], token: Token | None, now: datetime) -> Any:
        raise NotImplementedError

    def _refresh(self, token: Token, now: datetime) -> Token:
        raise NotImplementedError

    def collect(self, window: Window, now: datetime) -> tuple[list[Order], list[Refund] | None]:
        raise NotImplementedError

    # -- shared behaviour

    def fetch(self, window: Window, now: datetime) -> FetchResult:
        self._waited = 0.0
        token = self.tokens.current()
        if token is None:
            raise NeedsAdmin(
                f"{self.label}还没有授权：请在配置里填入 access_token（或 session）与 refresh_token"
            )
        if token.expires_soon(now):
            self._refresh_or_ask(token, now)
        orders, refunds = self.collect(window, now)
        samples = derive_daily(
            orders,
            refunds,
            window,
            tz=self.tz,
            now=now,
            source=self.id,
            scope=self.scope,
            has_buyers=self.has_buyers,
            has_ship_times=self.has_ship_times,
            has_refund_flags=self.has_refund_flags,
        )
        return FetchResult(
            samples=samples,
            rows_read=len(orders) + len(refunds or ()),
            detail={"orders": len(orders), "refunds": len(refunds or ()), "calls": self.calls},
        )

    def _refresh_or_ask(self, token: Token, now: datetime) -> Token:
        if not token.refresh_token or (
            token.refresh_expires_at is not None and token.refresh_expires_at <= now
        ):
            raise NeedsAdmin(f"{self.label}授权已过期且无法自动续期：请管理员重新授权并更新配置里的令牌")
        try:
            fresh = self._with_retries(lambda: self._refresh(token, now))
        except PlatformError as exc:
            raise NeedsAdmin(
                f"{self.label}令牌续期失败：请管理员重新授权",
                code=exc.platform_code,
                platform_message=exc.platform_message,
            ) from None
        self.tokens.save(fresh)
        return fresh

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        """Run one request; wait and retry rate limits, busy answers and network failures within
        the poll's waiting budget, else RetryLater. Other PlatformErrors go to the caller."""
        tries = 0
        while True:
            try:
                self.calls += 1
                return attempt()
            except (requests.Timeout, requests.ConnectionError) as exc:
                error = PlatformError("busy", "network", f"{type(exc).__name__}")
            except PlatformError as exc:
                if exc.kind not in ("rate", "busy"):
                    raise
                error = exc
            wait = error.retry_after if error.retry_after is not None else float(2 ** (tries + 1))
            if tries >= self.max_retries or self._waited + wait > self.max_wait:
                what = "限流" if error.kind == "rate" else "暂时不可用"
                raise RetryLater(
                    f"{self.label}{what}，稍后自动重试",
                    code=error.platform_code,
                    platform_message=error.platform_message,
                    retry_after=wait,
                )
            self.deps.sleep(wait)
            self._waited += wait
            tries += 1

    def call(self, method: str, params: dict[str, Any], now: datetime) -> Any:
        """One API call with the current token: retries, one token refresh on an expired session,
        NeedsAdmin for what a person must fix (the platform's code and message kept)."""
        refreshed = False
        while True:
            token = self.tokens.current()
            try:
                return self._with_retries(lambda t=token: self._send(method, params, t, now))  # type: ignore[misc]
            except PlatformError as exc:
                if exc.kind == "auth" and not refreshed and token is not None and token.refresh_token:
                    self._refresh_or_ask(token, now)
                    refreshed = True
                    continue
                hint = "授权已失效，请管理员重新授权" if exc.kind == "auth" else "需要管理员处理"
                raise NeedsAdmin(
                    f"{self.label}：{hint}（接口 {method}）",
                    code=exc.platform_code,
                    platform_message=exc.platform_message,
                ) from None

    def http_json(self, response: requests.Response) -> Any:
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = response.headers.get("Retry-After")
            raise PlatformError(
                "rate" if response.status_code == 429 else "busy",
                f"HTTP {response.status_code}",
                response.reason or "",
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        try:
            return jsonlimits.loads(response.content, max_bytes=SHOP_MAX_BYTES)
        except jsonlimits.JsonLimitError as exc:
            raise PlatformError(
                "admin", f"HTTP {response.status_code}", f"返回的 JSON 超出上限：{exc}"
            ) from None
        except ValueError:
            raise PlatformError("busy", f"HTTP {response.status_code}", "返回的不是 JSON") from None

    # -- helpers for the modules

    def day_bounds(self, window: Window, lead_days: int = 1) -> tuple[datetime, datetime]:
        """[start, end) of the window in the team's timezone, starting ``lead_days`` earlier:
        an order created before midnight may be paid after it."""
        start = datetime.combine(window.start - timedelta(days=lead_days), time(0), self.tz)
        end = datetime.combine(window.end + timedelta(days=1), time(0), self.tz)
        return start, end

    def local(self, text: object) -> datetime | None:
        """A platform's "yyyy-MM-dd HH:mm:ss" (Beijing time) as an aware datetime; None if empty."""
        if not text:
            return None
        try:
            return datetime.strptime(str(text)[:19], "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=ZoneInfo("Asia/Shanghai")
            )
        except ValueError:
            return None


def money(value: object) -> Decimal:
    """A platform amount in yuan (string or number) as an exact Decimal."""
    if value is None or value == "":
        return Decimal(0)
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
