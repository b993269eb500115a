"""TokenCache: one fetch at a time, early refresh, refetch of a refused token."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.platforms.tokens import TokenCache

T0 = datetime(2026, 11, 23, tzinfo=UTC)


class Fetcher:
    def __init__(self, lifetime: float = 7200, delay: float = 0.0):
        self.calls = 0
        self.lifetime = lifetime
        self.delay = delay

    def __call__(self) -> tuple[str, float]:
        self.calls += 1
        time.sleep(self.delay)
        return f"t{self.calls}", self.lifetime


@pytest.mark.parametrize(
    "lifetime, early, later, stale, token, calls",
    [
        (7200, timedelta(minutes=10), timedelta(minutes=49), None, "t1", 1),  # well before expiry: cached
        (7200, timedelta(minutes=10), timedelta(minutes=110), None, "t2", 2),  # inside the early window
        (7200, timedelta(minutes=10), timedelta(minutes=1), "t1", "t2", 2),  # the platform refused t1
        (7200, timedelta(minutes=10), timedelta(minutes=1), "t0", "t1", 1),  # someone else's stale token
        (600, timedelta(minutes=30), timedelta(minutes=4), None, "t1", 1),  # short life: half of it
        (600, timedelta(minutes=30), timedelta(minutes=6), None, "t2", 2),
    ],
)
def test_cache(lifetime, early, later, stale, token, calls):
    now = [T0]
    fetch = Fetcher(lifetime)
    cache = TokenCache(fetch, lambda: now[0], early)
    assert cache.get() == "t1"
    now[0] = T0 + later
    assert cache.get(stale) == token
    assert fetch.calls == calls


def test_concurrent_callers_share_one_fetch():
    fetch = Fetcher(delay=0.05)
    cache = TokenCache(fetch, lambda: T0, timedelta(minutes=5))
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["t1"] * 8 and fetch.calls == 1
