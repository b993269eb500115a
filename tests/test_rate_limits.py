"""The database-held buckets (bot.worker.rate_limits): TokenBuckets' arithmetic, shared by processes.

Each "process" here is a SharedBuckets on an engine of its own, so state can only travel
through the database. The same cases run against the in-memory TokenBuckets, the reference.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.platforms.base import RateLimit
from bot.worker.delivery import Buckets, TokenBuckets
from bot.worker.rate_limits import SharedBuckets, window_wait
from storage.db import make_engine, make_sessionmaker

FEISHU_ROBOT = [RateLimit("robot", 5, 1.0), RateLimit("robot", 100, 60.0)]


@pytest.fixture
def processes(engine: Engine, clock: Any) -> Callable[[int], list[SharedBuckets]]:
    """``n`` SharedBuckets, each on its own engine (its own connections) to the test database."""
    engines: list[Engine] = []

    def make(n: int) -> list[SharedBuckets]:
        out = []
        for _ in range(n):
            own = make_engine(engine.url.render_as_string(hide_password=False))
            engines.append(own)
            out.append(SharedBuckets(make_sessionmaker(own), own, clock))
        return out

    yield make
    for own in engines:
        own.dispose()


@pytest.fixture(params=["memory", "shared"])
def two(
    request: pytest.FixtureRequest, processes: Callable[[int], list[SharedBuckets]]
) -> tuple[Buckets, Buckets]:
    """Two relays' buckets: one TokenBuckets both use, or two SharedBuckets on two engines."""
    if request.param == "memory":
        one = TokenBuckets()
        return one, one
    a, b = processes(2)
    return a, b


@pytest.mark.parametrize(
    ("spent", "limit", "now", "expected"),
    [
        ([], RateLimit("k", 2, 60), 0.0, 0.0),
        ([0.0], RateLimit("k", 2, 60), 1.0, 0.0),
        ([0.0, 10.0], RateLimit("k", 2, 60), 20.0, 40.0),  # the first token returns at 60
        ([0.0, 10.0, 20.0], RateLimit("k", 2, 60), 30.0, 40.0),  # the 2nd-newest counts: 10 + 60
        ([5.0], RateLimit("k", 0, 60), 6.0, 0.0),  # no count: no limit
    ],
)
def test_window_wait(spent: list[float], limit: RateLimit, now: float, expected: float) -> None:
    assert window_wait(spent, limit, now) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("sends", "at", "expected"),
    [
        ([0.0] * 5, 0.5, 0.5),  # 5 a second: the 6th waits for the first to age out
        ([i / 5 for i in range(100)], 20.0, 40.0),  # 100 a minute: the 101st waits until 60 s
        ([i / 5 for i in range(100)], 60.0, 0.0),
        ([i / 5 for i in range(99)], 20.0, 0.0),
    ],
)
def test_sends_through_either_process_count_in_both_windows(
    two: tuple[Buckets, Buckets], sends: list[float], at: float, expected: float
) -> None:
    for n, t in enumerate(sends):
        assert two[n % 2].acquire(FEISHU_ROBOT, t) == 0.0
    for buckets in two:
        assert buckets.wait(FEISHU_ROBOT, at) == pytest.approx(expected)  # type: ignore[attr-defined]


def test_acquire_takes_from_every_window_or_from_none(two: tuple[Buckets, Buckets]) -> None:
    robot, app = RateLimit("robot", 1, 60), RateLimit("app", 2, 1)
    a, b = two
    assert a.acquire([robot, app], 0.0) == 0.0
    assert b.acquire([robot, app], 0.1) == pytest.approx(59.9)  # the robot is spent ...
    assert b.acquire([app], 0.2) == 0.0  # ... so the app's token was not taken by the refusal
    assert a.acquire([app], 0.3) == pytest.approx(0.7)


def test_a_refusal_seen_by_one_process_blocks_the_key_for_the_other(two: tuple[Buckets, Buckets]) -> None:
    robot, other = RateLimit("robot", 20, 60), RateLimit("other", 20, 60)
    a, b = two
    assert a.acquire([robot], 0.0) == 0.0 and b.acquire([other], 0.0) == 0.0
    a.block([robot.key], 600.0)  # a saw 130101: ten minutes
    assert b.acquire([robot], 1.0) == pytest.approx(599.0)
    assert b.acquire([other], 1.0) == 0.0  # another robot is not paused
    a.block([robot.key], 300.0)  # a shorter block never shortens a longer one
    assert b.acquire([robot], 2.0) == pytest.approx(598.0)
    assert b.acquire([robot], 600.0) == 0.0


@pytest.mark.parametrize(("threads", "tries", "count"), [(4, 10, 5), (3, 8, 20)])
def test_concurrent_takers_never_lose_an_update(
    processes: Callable[[int], list[SharedBuckets]], threads: int, tries: int, count: int
) -> None:
    """Many processes at one instant: exactly ``count`` tokens are handed out, no more."""
    limit = RateLimit("contended", count, 60)
    granted: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)

    def take(buckets: SharedBuckets) -> None:
        barrier.wait()
        got = sum(1 for _ in range(tries) if buckets.acquire([limit], 100.0) == 0.0)
        with lock:
            granted.append(got)

    workers = [threading.Thread(target=take, args=(b,)) for b in processes(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    assert sum(granted) == min(count, threads * tries)


def test_a_wait_moves_the_whole_queue_of_that_target_in_one_go(services: Any, clock: Any) -> None:
    """A burst to one robot: the first row goes, the next one waits, and every other row for that
    target is moved to the same time at once (not claimed and deferred row by row)."""
    from sqlalchemy import select

    from bot.worker.delivery import Relay, RelayPolicy
    from cards.model import Card
    from storage import outbox
    from storage.db import transaction
    from storage.models import OutboxMessage
    from tests.fakes.chat_server import ChatServer, HttpFakePlatform

    chat = ChatServer().start()
    try:
        services.platforms["fake"] = HttpFakePlatform("fake", chat.url, limits=[RateLimit("robot", 1, 10.0)])
        with transaction(services.sessions) as session:
            for n in range(30):
                outbox.enqueue(
                    session,
                    outbox.Target("fake", "chat", "ops"),
                    Card(f"{n}"),
                    dedupe_key=f"q{n}",
                    now=clock(),
                )
            outbox.enqueue(
                session, outbox.Target("fake", "chat", "other"), Card("x"), dedupe_key="o", now=clock()
            )
        stats = Relay(services, name="r", policy=RelayPolicy(batch=5), rng=lambda: 0.5).run_once()
    finally:
        chat.stop()
    # one limit key: whatever the batch held, one went; how many of the rest were counted as a
    # wait rather than handed back with their lane depends on which lane took the token first
    assert stats.sent == 1 and stats.waited >= 1
    with services.sessions() as session:
        due = {
            r.dedupe_key: r.next_attempt_at
            for r in session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending"))
        }
    later = clock() + timedelta(seconds=10)
    assert {k: v for k, v in due.items() if k.startswith("q")} == {k: later for k in due if k.startswith("q")}
    # the one token went to whichever lane took it first (lanes run at once): "o" or the first q
    sent_q = 30 - len([k for k in due if k.startswith("q")])
    assert sent_q + ("o" not in due) == 1
