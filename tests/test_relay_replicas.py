"""Three workers, one database, two group robots: the robots' limits hold for the deployment.

Issue 18 §1. Each worker has its own engine (its own connections), its own adapters (so its
own in-process memory of a DingTalk 130101) and its own relay; they relay at the same time,
in threads. All share one frozen clock, which only moves between rounds: a round lets the
three relays run until none has anything due, then the clock jumps to the next due time.
So minutes of pacing take seconds, and a send happens at the instant its token was taken.

The fakes enforce the robots' real limits (20 in any 60 s; DingTalk: 130101 and a ten-minute
block, WeCom: 45009) and record when they accepted each message. With the buckets in the
database: no refusal, every message once, no 60-second window over 20. The control gives each
worker its own in-memory buckets, as before this issue, and the fakes refuse.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, select

from bot.platforms import Deps
from bot.platforms.dingtalk import DingTalkPlatform
from bot.platforms.wecom import WeComPlatform
from bot.services import Services, build_services
from bot.worker.delivery import Relay, RelayPolicy, TokenBuckets
from storage.db import make_engine
from storage.models import OutboxMessage
from storage.secrets import Sealer
from tests import worker_seed as seed
from tests.conftest import TEST_KEY
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import FakeWeCom
from tests.test_relay_burst import enqueue_burst, marks

WORKERS = 3
PER_ROBOT = 60
LIMIT, WINDOW = 20, 60.0  # both robots: 20 messages in any 60 seconds
DT_SECRET = "SEC" + "fedcba9876543210" * 4


@dataclass
class Deployment:
    dingtalk: FakeDingTalk
    wecom: FakeWeCom
    dingtalk_url: str
    wecom_key: str
    workers: list[tuple[Services, Relay]]

    def dingtalk_accepted(self) -> list[tuple[float, dict[str, Any]]]:
        return [(m["at"].timestamp(), m["body"]) for m in self.dingtalk.robot_messages]

    def wecom_accepted(self) -> list[tuple[float, dict[str, Any]]]:
        return list(zip(self.wecom.robot_at[self.wecom_key], self.wecom.robot[self.wecom_key], strict=True))

    def refusals(self) -> dict[str, int]:
        wecom_calls = sum(1 for path, _ in self.wecom.requests if path == "/cgi-bin/webhook/send")
        return {
            "dingtalk": sum(r.throttled for r in self.dingtalk.robots.values()),
            "wecom": wecom_calls - len(self.wecom.robot[self.wecom_key]),
        }


def _worker(
    settings: Any, engine: Engine, clock: Any, fakes: tuple[FakeDingTalk, FakeWeCom], n: int, shared: bool
) -> tuple[Services, Relay]:
    from bot.config import BotConfig, Secret

    dingtalk, wecom = fakes
    own = make_engine(engine.url.render_as_string(hide_password=False))
    services = build_services(settings, clock=clock, engine=own)
    deps = Deps(
        http=requests.Session(), clock=clock, sessions=services.sessions, public_url="http://planloop.test"
    )
    dt_cfg = BotConfig(
        "dingtalk-main",
        "dingtalk",
        {"app_key": dingtalk.app_key, "api_base": dingtalk.url, "oapi_base": dingtalk.url},
        {"app_secret": Secret(dingtalk.app_secret)},
    )
    wc_cfg = BotConfig(
        "wecom-main",
        "wecom",
        {"corp_id": wecom.corp_id, "agent_id": wecom.agent_id, "api_base": wecom.url},
        {"secret": Secret(wecom.secret), "token": Secret(wecom.token), "aes_key": Secret(wecom.aes_key)},
    )
    services.platforms[dt_cfg.id] = DingTalkPlatform(dt_cfg, deps)
    services.platforms[wc_cfg.id] = WeComPlatform(wc_cfg, deps)
    relay = Relay(
        services,
        name=f"w{n}",
        policy=RelayPolicy(batch=5),
        rng=lambda: 0.5,
        buckets=None if shared else TokenBuckets(),  # None: the relay's default, the shared ones
    )
    return services, relay


@pytest.fixture
def deployment(
    request: pytest.FixtureRequest, settings: Any, engine: Engine, db: Any, clock: Any
) -> Iterator[Any]:
    def build(shared: bool) -> Deployment:
        stack = ExitStack()
        request.addfinalizer(stack.close)
        dingtalk = FakeDingTalk(clock).start()
        stack.callback(dingtalk.stop)
        wecom = FakeWeCom()
        wecom.clock = lambda: clock().timestamp()
        wecom.start()
        stack.callback(wecom.stop)
        dingtalk_url = dingtalk.add_robot(DT_SECRET)
        wecom_url = wecom.add_robot("replica-robot")
        sealer = Sealer([TEST_KEY])
        with db() as session, session.begin():
            for team, bot_id, url, secret in (
                ("dt", "dingtalk-main", dingtalk_url, DT_SECRET),
                ("wc", "wecom-main", wecom_url, None),
            ):
                seed.team(
                    session,
                    team,
                    leader=None,
                    chat_bot=bot_id,
                    webhook_enc=sealer.seal(url),
                    webhook_secret_enc=sealer.seal(secret) if secret else None,
                    webhook_allow_private=True,  # the fakes listen on loopback (the outbound guard)
                )
        workers = [_worker(settings, engine, clock, (dingtalk, wecom), n, shared) for n in range(WORKERS)]
        for services, _ in workers:
            stack.callback(services.engine.dispose)
        return Deployment(dingtalk, wecom, dingtalk_url, "replica-robot", workers)

    yield build


def enqueue(services: Services) -> None:
    enqueue_burst(services, "dingtalk-main", PER_ROBOT, team="dt", prefix="dt")
    enqueue_burst(services, "wecom-main", PER_ROBOT, team="wc", prefix="wc")


def run_rounds(deployment: Deployment, clock: Any, *, max_rounds: int = 2000) -> int:
    """Rounds of all relays at once, the clock frozen inside a round; returns the rounds taken."""
    errors: list[BaseException] = []

    def relay_all(relay: Relay) -> None:
        try:
            while relay.run_once().progressed:
                pass
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    for rounds in range(1, max_rounds + 1):
        threads = [threading.Thread(target=relay_all, args=(r,)) for _, r in deployment.workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        nxt = deployment.workers[0][1].next_due()
        if nxt is None:
            return rounds
        clock.set(max(nxt, clock()) + timedelta(milliseconds=1))
    raise AssertionError(f"the outbox did not drain in {max_rounds} rounds")


def busiest_window(times: list[float]) -> int:
    """The most sends inside any window (t - 60 s, t], the window both fakes count."""
    times = sorted(times)
    return max((sum(1 for s in times if t - WINDOW < s <= t) for t in times), default=0)


def statuses(deployment: Deployment) -> set[tuple[str, int]]:
    services = deployment.workers[0][0]
    with services.sessions() as session:
        rows = session.scalars(select(OutboxMessage))
        return {(r.status, r.attempts) for r in rows}


@pytest.mark.slow
def test_three_workers_keep_both_robots_within_their_limit(
    deployment: Callable[..., Deployment], clock: Any
) -> None:
    d = deployment(True)
    enqueue(d.workers[0][0])
    start = clock()
    run_rounds(d, clock)

    assert d.refusals() == {"dingtalk": 0, "wecom": 0}
    for accepted in (d.dingtalk_accepted(), d.wecom_accepted()):
        assert sorted(marks([body for _, body in accepted])) == list(range(PER_ROBOT))  # each once
        assert busiest_window([t for t, _ in accepted]) <= LIMIT
    assert statuses(d) == {("sent", 1)}
    # and no slower than the limits need: 60 at 20 a minute is two windows and a bit, DingTalk's
    # 19 in any 64 s (4 s of room for a send's arrival to lag its token) a little more
    last = max(t for t, _ in d.dingtalk_accepted() + d.wecom_accepted())
    took = datetime.fromtimestamp(last, clock().tzinfo) - start
    assert timedelta(minutes=2) <= took <= timedelta(minutes=PER_ROBOT / 19 * 1.1), took


@pytest.mark.slow
def test_control_workers_with_their_own_buckets_are_refused(
    deployment: Callable[..., Deployment], clock: Any
) -> None:
    d = deployment(False)
    enqueue(d.workers[0][0])
    run_rounds(d, clock)

    refusals = d.refusals()
    assert refusals["dingtalk"] > 0 and refusals["wecom"] > 0, refusals
    for accepted in (d.dingtalk_accepted(), d.wecom_accepted()):  # still every message, once
        assert sorted(marks([body for _, body in accepted])) == list(range(PER_ROBOT))
    # the WeCom robot took the three workers' sends until it was full: a window at the limit
    assert busiest_window([t for t, _ in d.wecom_accepted()]) == LIMIT
