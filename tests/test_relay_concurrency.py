"""A relay that sends several messages at once (issue 18 §5) keeps every guarantee.

Real adapters, real-HTTP fakes that enforce the robots' own limits (DingTalk: 20 in any 60 s,
then 130101; WeCom: 20 in any 60 s, else 45009; Feishu: 5 in any second and 100 in any minute,
else 11232), and one frozen clock that only moves between rounds (a round lets the relays run
until none has anything due, then the clock jumps to the next due time), so a send happens at
the instant its token was taken and minutes of pacing take seconds.

Each adapter's ``send`` is wrapped to count the sends in flight (and to take 10 ms of real
time, so that concurrent sends do overlap): the tests show the relays really sent at once,
and that one target never had two of one relay's sends in flight.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bot.config import BotConfig, Secret
from bot.platforms import Deps
from bot.platforms.base import Outbound, Platform
from bot.platforms.dingtalk import DingTalkPlatform
from bot.platforms.feishu import FeishuPlatform
from bot.platforms.wecom import WeComPlatform
from bot.worker.delivery import Relay, RelayPolicy, RelayStats, drain, run_relay
from cards.model import Card, Markdown
from storage import outbox
from storage.db import transaction
from storage.models import OutboxMessage
from storage.secrets import Sealer
from tests import worker_seed as seed
from tests.conftest import TEST_KEY
from tests.fakes import feishu as ff
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import FakeWeCom

MARK = re.compile(r"mark-(\w+)-(\d+)-end")
CONCURRENCY = 4


@dataclass
class Fleet:
    """Several group robots of one platform, one team each, and what that platform's fake saw."""

    platform: str
    bot_id: str
    adapter: Platform
    teams: list[str]
    urls: list[str]
    secret: str
    accepted_at: Callable[[int], list[float]]  # robot n -> when the fake accepted each message
    bodies: Callable[[], list[Any]]  # every accepted message
    refusals: Callable[[], int]
    windows: tuple[tuple[int, float], ...]  # the platform's own limits: (count, in any seconds)
    fullest: int  # the most our pacing puts in the first window (DingTalk: 19, one short of 20)


def _deps(services: Any, clock: Any) -> Deps:
    return Deps(
        http=requests.Session(), clock=clock, sessions=services.sessions, public_url="http://planloop.test"
    )


def _dingtalk(stack: ExitStack, services: Any, clock: Any, robots: int) -> Fleet:
    fake = FakeDingTalk(clock).start()
    stack.callback(fake.stop)
    cfg = BotConfig(
        "dingtalk-main",
        "dingtalk",
        {"app_key": fake.app_key, "api_base": fake.url, "oapi_base": fake.url},
        {"app_secret": Secret(fake.app_secret)},
    )
    secret = "SEC" + "0123456789abcdef" * 4
    urls = [fake.add_robot(secret) for _ in range(robots)]
    tokens = [fake.robot(url).access_token for url in urls]
    return Fleet(
        "dingtalk",
        cfg.id,
        DingTalkPlatform(cfg, _deps(services, clock)),
        [f"dt{n}" for n in range(robots)],
        urls,
        secret,
        lambda n: [m["at"].timestamp() for m in fake.robot_messages if m["robot"] == tokens[n]],
        lambda: [m["body"] for m in fake.robot_messages],
        lambda: sum(r.throttled for r in fake.robots.values()),
        ((20, 60.0),),
        19,
    )


def _wecom(stack: ExitStack, services: Any, clock: Any, robots: int) -> Fleet:
    fake = FakeWeCom()
    fake.clock = lambda: clock().timestamp()
    fake.start()
    stack.callback(fake.stop)
    cfg = BotConfig(
        "wecom-main",
        "wecom",
        {"corp_id": fake.corp_id, "agent_id": fake.agent_id, "api_base": fake.url},
        {"secret": Secret(fake.secret), "token": Secret(fake.token), "aes_key": Secret(fake.aes_key)},
    )
    keys = [f"robot-{n}" for n in range(robots)]
    urls = [fake.add_robot(key) for key in keys]
    return Fleet(
        "wecom",
        cfg.id,
        WeComPlatform(cfg, _deps(services, clock)),
        [f"wc{n}" for n in range(robots)],
        urls,
        "",
        lambda n: list(fake.robot_at[keys[n]]),
        lambda: [b for key in keys for b in fake.robot[key]],
        lambda: (
            sum(1 for path, _ in fake.requests if path == "/cgi-bin/webhook/send")
            - sum(len(fake.robot[key]) for key in keys)
        ),
        ((20, 60.0),),
        20,
    )


def _feishu(stack: ExitStack, services: Any, clock: Any, robots: int) -> Fleet:
    fake = stack.enter_context(ff.FakeFeishu(clock=clock).running())
    cfg = ff.bot_config(fake.base_url)
    secret = "feishu-robot-secret"
    urls = [fake.add_robot(secret) for _ in range(robots)]
    hooks = [url.rsplit("/", 1)[1] for url in urls]
    fleet = Fleet(
        "feishu",
        cfg.id,
        FeishuPlatform(cfg, _deps(services, clock)),
        [f"fs{n}" for n in range(robots)],
        urls,
        secret,
        lambda n: list(fake.robot_at.get(hooks[n], [])),
        lambda: list(fake.robot_posts),
        lambda: (
            sum(1 for _, path in fake.requests if path.startswith("/open-apis/bot/v2/hook/"))
            - len(fake.robot_posts)
        ),
        ((5, 1.0), (100, 60.0)),
        5,
    )
    fleet.fake = fake  # type: ignore[attr-defined]  # the 429 test injects a refusal
    return fleet


FLEETS = {"dingtalk": _dingtalk, "wecom": _wecom, "feishu": _feishu}


@dataclass
class InFlight:
    """Wraps adapters' ``send``: how many sends were in flight at once, overall and per target."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    now: Counter[str] = field(default_factory=Counter)
    most: int = 0
    most_per_target: int = 0
    calls: int = 0
    before: Callable[[int], None] | None = None  # called with the call's number, before it goes

    def wrap(self, monkeypatch: pytest.MonkeyPatch, adapter: Platform) -> None:
        real = adapter.send

        def send(message: Outbound) -> Any:
            with self.lock:
                self.calls += 1
                number = self.calls
                self.now[message.target] += 1
                self.most = max(self.most, sum(self.now.values()))
                self.most_per_target = max(self.most_per_target, self.now[message.target])
            try:
                if self.before is not None:
                    self.before(number)
                time.sleep(0.01)
                return real(message)
            finally:
                with self.lock:
                    self.now[message.target] -= 1

        monkeypatch.setattr(adapter, "send", send)


def seed_fleet(db: Any, services: Any, fleet: Fleet) -> None:
    services.platforms[fleet.bot_id] = fleet.adapter
    sealer = Sealer([TEST_KEY])
    with db() as session, session.begin():
        for team, url in zip(fleet.teams, fleet.urls, strict=True):
            seed.team(
                session,
                team,
                leader=None,
                chat_bot=fleet.bot_id,
                webhook_enc=sealer.seal(url),
                webhook_allow_private=True,  # the fakes listen on loopback
                webhook_secret_enc=sealer.seal(fleet.secret) if fleet.secret else None,
            )


def enqueue(services: Any, fleet: Fleet, per_team: int) -> None:
    """``per_team`` messages to each team's robot, all due now, enqueued a millisecond apart."""
    base = services.clock()
    with transaction(services.sessions) as session:
        for i in range(per_team):
            for team in fleet.teams:
                outbox.enqueue(
                    session,
                    outbox.Target(fleet.bot_id, "webhook", team),
                    Card(title=f"第 {i} 条", blocks=(Markdown(f"本周进度 mark-{team}-{i}-end"),)),
                    dedupe_key=f"c:{team}:{i}",
                    now=base + timedelta(milliseconds=i),
                    not_before=base,
                )


def arrivals(fleet: Fleet) -> dict[str, list[int]]:
    """Per team, the message numbers the fake accepted, in the order it accepted them."""
    out: dict[str, list[int]] = defaultdict(list)
    for body in fleet.bodies():
        found = set(MARK.findall(repr(body)))
        assert len(found) == 1, body
        team, number = found.pop()
        out[team].append(int(number))
    return out


def run_rounds(relays: list[Relay], clock: Any, *, max_rounds: int = 500) -> RelayStats:
    """All relays at once, each in its own thread, the clock frozen inside a round."""
    total = RelayStats()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def relay_all(relay: Relay) -> None:
        try:
            while (stats := relay.run_once()).progressed:
                with lock:
                    total.add(stats)
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    for _ in range(max_rounds):
        threads = [threading.Thread(target=relay_all, args=(r,)) for r in relays]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        nxt = relays[0].next_due()
        if nxt is None:
            return total
        clock.set(max(nxt, clock()) + timedelta(milliseconds=1))
    raise AssertionError(f"the outbox did not drain in {max_rounds} rounds")


def busiest(times: list[float], per: float) -> int:
    """The most sends inside any window (t - per, t]."""
    times = sorted(times)
    return max((sum(1 for s in times if t - per < s <= t) for t in times), default=0)


def statuses(services: Any) -> Counter[tuple[str, int]]:
    with services.sessions() as session:
        return Counter((r.status, r.attempts) for r in session.scalars(select(OutboxMessage)))


@pytest.fixture
def fleet(
    request: pytest.FixtureRequest, services: Any, db: Any, clock: Any
) -> Iterator[Callable[..., Fleet]]:
    with ExitStack() as stack:

        def build(platform: str, robots: int) -> Fleet:
            made = FLEETS[platform](stack, services, clock, robots)
            seed_fleet(db, services, made)
            return made

        yield build


PER_ROBOT = 25  # more than one window's worth on every platform (20 a minute; 5 a second)


@pytest.mark.slow
@pytest.mark.parametrize("platform", sorted(FLEETS))
def test_concurrent_relays_never_exceed_a_robots_limit_in_any_window(
    platform: str, fleet: Callable[..., Fleet], services: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    robots = fleet(platform, 4)
    enqueue(services, robots, PER_ROBOT)
    flight = InFlight()
    flight.wrap(monkeypatch, robots.adapter)
    # two relays of one worker, each sending up to four at once; tokens from the database
    relays = [
        Relay(services, name=f"r{n}", policy=RelayPolicy(concurrency=CONCURRENCY), rng=lambda: 0.5)
        for n in range(2)
    ]
    stats = run_rounds(relays, clock)

    assert robots.refusals() == 0
    got = arrivals(robots)
    assert {team: sorted(numbers) for team, numbers in got.items()} == {
        team: list(range(PER_ROBOT)) for team in robots.teams
    }  # every message, none twice
    for n in range(len(robots.teams)):
        times = robots.accepted_at(n)
        for count, per in robots.windows:
            assert busiest(times, per) <= count, (robots.teams[n], count, per)
        assert busiest(times, robots.windows[0][1]) == robots.fullest  # as fast as our pacing allows
    assert statuses(services) == Counter({("sent", 1): PER_ROBOT * len(robots.teams)})
    assert (stats.sent, stats.retried, stats.dead, stats.unknown) == (PER_ROBOT * 4, 0, 0, 0)
    assert flight.most > 1  # the relays did send at once


def test_one_relays_sends_to_one_target_go_one_at_a_time_in_order(
    fleet: Callable[..., Fleet], services: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WeCom robots: 20 go, then the limit defers the rest of each robot's queue; order holds."""
    robots = fleet("wecom", 6)
    enqueue(services, robots, PER_ROBOT)
    flight = InFlight()
    flight.wrap(monkeypatch, robots.adapter)
    relay = Relay(services, name="one", policy=RelayPolicy(concurrency=CONCURRENCY), rng=lambda: 0.5)
    stats = run_rounds([relay], clock)

    assert robots.refusals() == 0
    assert arrivals(robots) == {team: list(range(PER_ROBOT)) for team in robots.teams}  # in order
    assert flight.most == CONCURRENCY  # four at once across targets ...
    assert flight.most_per_target == 1  # ... never two to one target
    assert stats.waited > 0  # the limit did cut each queue in the middle
    assert statuses(services) == Counter({("sent", 1): PER_ROBOT * 6})


def test_a_429_in_the_middle_of_a_concurrent_batch_is_retried_without_duplicates(
    fleet: Callable[..., Fleet], services: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    robots = fleet("feishu", 4)
    enqueue(services, robots, 5)  # 5 each: within the robots' 5 a second, so only the 429 waits
    fake = robots.fake  # type: ignore[attr-defined]
    flight = InFlight()
    # the fifth send overall meets an HTTP 429 (x-ogw-ratelimit-reset: 2), while others are in flight
    flight.before = lambda n: fake.fail_next("/open-apis/bot/v2/hook/", reset=2.0) if n == 5 else None
    flight.wrap(monkeypatch, robots.adapter)
    relay = Relay(services, name="one", policy=RelayPolicy(concurrency=CONCURRENCY), rng=lambda: 0.0)
    start = clock()
    stats = run_rounds([relay], clock)

    assert flight.most > 1
    got = arrivals(robots)
    assert {team: sorted(numbers) for team, numbers in got.items()} == {
        team: list(range(5)) for team in robots.teams
    }  # every message once: the refused one was not shown, then shown once
    assert robots.refusals() == 1
    assert stats.retried == 1 and stats.unknown == 0 and stats.dead == 0
    assert statuses(services) == Counter({("sent", 1): 19, ("sent", 2): 1})
    with services.sessions() as session:
        assert session.scalar(select(OutboxMessage).where(OutboxMessage.sending_at.is_not(None))) is None
    # the retry waited out the platform's reset, not less
    retried_at = max(t for n in range(4) for t in robots.accepted_at(n))
    assert retried_at - start.timestamp() >= 2.0


def test_stop_lets_the_sends_in_flight_finish_and_hands_the_rest_back(
    fleet: Callable[..., Fleet], services: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What SIGTERM does (``planloop worker`` sets the relay's stop event): no row is left claimed
    or marked in flight, so another worker sends the rest at once, each message once."""
    robots = fleet("wecom", 6)
    enqueue(services, robots, 3)
    stop = threading.Event()
    flight = InFlight()
    flight.before = lambda n: stop.set() if n == 1 else None  # SIGTERM during the first send
    flight.wrap(monkeypatch, robots.adapter)
    relay = Relay(services, name="stopping", policy=RelayPolicy(concurrency=3), stop=stop)
    stats = relay.run_once()

    assert stats.claimed == 16  # the whole batch was claimed ...
    assert 1 <= stats.sent <= 3  # ... the sends already under way finished (at most one a thread)
    assert stats.released == stats.claimed - stats.sent  # ... and the rest went back at once
    assert sum(len(v) for v in arrivals(robots).values()) == stats.sent
    with services.sessions() as session:
        left = list(session.scalars(select(OutboxMessage).where(OutboxMessage.status == "pending")))
    assert len(left) == 18 - stats.sent
    assert {(r.claimed_by, r.claimed_until, r.sending_at) for r in left} == {(None, None, None)}

    # the worker's loop ends at once on a set stop (and lets its threads go) ...
    loop = threading.Thread(target=run_relay, args=(services, stop), kwargs={"relay": relay})
    loop.start()
    loop.join(10)
    assert not loop.is_alive()
    # ... and another worker delivers the rest now, not after a lease: each message once
    drain(services, relay=Relay(services, name="next"), until_empty=False)
    assert {team: sorted(n) for team, n in arrivals(robots).items()} == {
        team: [0, 1, 2] for team in robots.teams
    }
    assert statuses(services) == Counter({("sent", 1): 18})
