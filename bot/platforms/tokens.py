"""An app access token shared by one bot's threads (Feishu tenant token, DingTalk and WeCom access tokens).

Fetched one at a time under a lock, refreshed ``early`` before it expires (never later than
half its lifetime), and fetched again when the platform refused the cached one (``stale``),
unless another thread already replaced it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

T = TypeVar("T")


class TokenCache:
    def __init__(
        self,
        fetch: Callable[[], tuple[str, float]],
        clock: Callable[[], datetime],
        early: timedelta,
    ):
        """``fetch`` returns (token, lifetime in seconds) or raises the adapter's DeliveryError."""
        self._fetch = fetch
        self._clock = clock
        self._early = early
        self._lock = threading.Lock()
        self._current: tuple[str, datetime] | None = None

    def _fresh(self, stale: str | None) -> str | None:
        current = self._current
        if current is not None and current[0] != stale and self._clock() < current[1]:
            return current[0]
        return None

    def get(self, stale: str | None = None) -> str:
        token = self._fresh(stale)
        if token is not None:
            return token
        with self._lock:
            token = self._fresh(stale)  # another thread may have refreshed while we waited
            if token is not None:
                return token
            started = self._clock()
            token, seconds = self._fetch()
            lifetime = timedelta(seconds=seconds)
            self._current = (token, started + max(lifetime - self._early, lifetime / 2))
            return token


AppToken = Callable[[str | None], str]  # (stale token or None) -> the app's access token
# oapi errcodes that say DingTalk refused the app token (invalid, expired, or a TOP auth error)
DINGTALK_STALE_TOKEN = frozenset({40014, 42001, 40001, 33001, 88})


def adapter_token(adapter: Any) -> AppToken | None:
    """The app token of a bot's adapter (its cache), or None when the adapter keeps none."""
    method = getattr(adapter, "access_token", None)
    if method is None:
        return None
    if getattr(adapter, "name", "") == "wecom":
        return lambda stale: method(stale=stale)
    return lambda stale: method(stale)


def with_fresh_token(app_token: AppToken, call: Callable[[str], T], refused: Callable[[T], bool]) -> T:
    """``call`` with the app's token, and once more with a fresh one if ``refused`` says the
    platform turned that token down (revoked or expired before its time)."""
    token = app_token(None)
    answer = call(token)
    if refused(answer):
        answer = call(app_token(token))
    return answer
