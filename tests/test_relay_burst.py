"""A burst to one group robot, through the real outbox relay and a real-HTTP fake of each platform.

Issue 6: "a burst of 100 messages to one robot is delivered completely, never tripping the
ten-minute throttle (rate limiting is ours, not the platform's)". The relay, the adapter and
the fake share one frozen clock; ``drain``'s ``sleep`` advances it, so minutes of pacing take
no real time. The fakes enforce the platforms' robot limits on their own (DingTalk: 20 in
any 60 s, then 130101 for ten minutes; WeCom: 20 in any 60 s, else 45009; Feishu: 5 in any
second and 100 in any minute, else 11232), so a request they refuse shows up as an extra
request on the wire. The negative control takes ``limits()`` away and watches them refuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bot.platforms import Deps
from bot.platforms.base import Platform
from bot.platforms.dingtalk import DingTalkPlatform
from bot.platforms.feishu import FeishuPlatform
from bot.platforms.wecom import WeComPlatform
from bot.worker.delivery import Relay, drain
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

TEAM = "ops"
MARK = re.compile(r"burst-(\d{3})")


@dataclass
class Robot:
    """One group robot on one fake platform, and how to read what that fake saw."""

    platform: str
    bot_id: str
    adapter: Platform
    url: str
    secret: str
    accepted: Callable[[], list[dict[str, Any]]]  # bodies the fake accepted and showed in the group
    requests: Callable[[], int]  # robot requests that reached the fake, refused ones included
    refusal: str  # the errcode the fake answers when the robot's limit is exceeded


def _deps(services: Any, clock: Any) -> Deps:
    return Deps(
        http=requests.Session(), clock=clock, sessions=services.sessions, public_url="http://planloop.test"
    )


def _dingtalk(stack: ExitStack, services: Any, clock: Any) -> Robot:
    from bot.config import BotConfig, Secret

    fake = FakeDingTalk(clock).start()
    stack.callback(fake.stop)
    cfg = BotConfig(
        "dingtalk-main",
        "dingtalk",
        {"app_key": fake.app_key, "api_base": fake.url, "oapi_base": fake.url},
        {"app_secret": Secret(fake.app_secret)},
    )
    secret = "SEC" + "0123456789abcdef" * 4  # 加签 on: the fake checks every timestamp/sign
    return Robot(
        "dingtalk",
        cfg.id,
        DingTalkPlatform(cfg, _deps(services, clock)),
        fake.add_robot(secret),
        secret,
        lambda: [m["body"] for m in fake.robot_messages],
        lambda: fake.calls["/robot/send"],
        "130101",
    )


def _wecom(stack: ExitStack, services: Any, clock: Any) -> Robot:
    from bot.config import BotConfig, Secret

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
    return Robot(
        "wecom",
        cfg.id,
        WeComPlatform(cfg, _deps(services, clock)),
        fake.add_robot("burst-robot"),
        "",
        lambda: list(fake.robot["burst-robot"]),
        lambda: sum(1 for path, _ in fake.requests if path == "/cgi-bin/webhook/send"),
        "45009",
    )


def _feishu(stack: ExitStack, services: Any, clock: Any) -> Robot:
    fake = stack.enter_context(ff.FakeFeishu(clock=clock).running())
    cfg = ff.bot_config(fake.base_url)
    secret = "feishu-robot-secret"
    return Robot(
        "feishu",
        cfg.id,
        FeishuPlatform(cfg, _deps(services, clock)),
        fake.add_robot(secret),
        secret,
        lambda: list(fake.robot_posts),
        lambda: sum(1 for _, path in fake.requests if path.startswith("/open-apis/bot/v2/hook/")),
        "11232",
    )


@dataclass(frozen=True)
class Burst:
    make: Callable[[ExitStack, Any, Any], Robot]
    n: int
    fastest: timedelta  # the platform's limits allow no faster delivery than this
    slowest: timedelta  # pacing much slower than the limits allow would be a defect too


BURSTS = {
    # 20 in any minute: the 100th cannot leave before 4 minutes after the first (five windows).
    # DingTalk: our buckets allow 19 in any 64 s (room for a send's arrival to lag its token).
    "dingtalk": Burst(_dingtalk, 100, timedelta(minutes=100 / 20 - 1), timedelta(minutes=100 / 20 * 1.25)),
    "wecom": Burst(_wecom, 100, timedelta(minutes=100 / 20 - 1), timedelta(minutes=100 / 20 * 1.25)),
    # 5 a second and 100 a minute: 150, so that the minute limit bites too. The 101st waits
    # for the first minute to pass; the other 49 go at 5 a second: (150 - 100) / 5 - 1 s more.
    "feishu": Burst(_feishu, 150, timedelta(seconds=60 + 50 / 5 - 1), timedelta(seconds=60 + 50 / 5 + 15)),
}


@pytest.fixture(params=sorted(BURSTS))
def burst(
    request: pytest.FixtureRequest, services: Any, db: Any, clock: Any
) -> Iterator[tuple[Burst, Robot]]:
    spec = BURSTS[request.param]
    with ExitStack() as stack:
        robot = spec.make(stack, services, clock)
        services.platforms[robot.bot_id] = robot.adapter
        sealer = Sealer([TEST_KEY])
        with db() as session, session.begin():
            seed.team(
                session,
                TEAM,
                leader=None,
                chat_bot=robot.bot_id,
                webhook_enc=sealer.seal(robot.url),
                webhook_allow_private=True,  # the fake robot listens on 127.0.0.1
                webhook_secret_enc=sealer.seal(robot.secret) if robot.secret else None,
            )
        yield spec, robot


def enqueue_burst(
    services: Any, bot_id: str, n: int, *, team: str = TEAM, prefix: str = "burst"
) -> list[str]:
    """``n`` messages to the team's robot, enqueued in one transaction (a Monday summary storm)."""
    ids = []
    with transaction(services.sessions) as session:
        for i in range(n):
            row = outbox.enqueue(
                session,
                outbox.Target(bot_id, "webhook", team),
                Card(title=f"第 {i} 条 burst-{i:03d}", blocks=(Markdown(f"本周进度 burst-{i:03d}"),)),
                dedupe_key=f"{prefix}:{i}",
                now=services.clock(),
            )
            assert row is not None
            ids.append(row.id)
    return ids


def marks(bodies: list[dict[str, Any]]) -> list[int]:
    """The burst number each accepted message carries (exactly one per message)."""
    out = []
    for body in bodies:
        found = {int(m) for m in MARK.findall(repr(body))}
        assert len(found) == 1, body
        out.append(found.pop())
    return out


def outbox_rows(services: Any) -> list[OutboxMessage]:
    with services.sessions() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.dedupe_key.like("burst:%"))))


def relay(services: Any) -> Relay:
    return Relay(services, name="burst", rng=lambda: 0.5)


def advancing(clock: Any) -> Callable[[float], None]:
    return lambda seconds: clock.advance(seconds=seconds)


def test_a_burst_is_paced_by_us_and_never_refused(
    burst: tuple[Burst, Robot], services: Any, clock: Any
) -> None:
    spec, robot = burst
    enqueue_burst(services, robot.bot_id, spec.n)
    start = clock()
    stats = drain(services, relay=relay(services), sleep=advancing(clock))
    took = clock() - start

    # every one, none twice; in no particular order: the relay promises none (same-instant rows
    # are claimed by their random id, and a row deferred by the buckets goes behind newer ones)
    assert sorted(marks(robot.accepted())) == list(range(spec.n))
    assert robot.requests() == spec.n  # not one refused (a refusal would be a request more)
    rows = outbox_rows(services)
    assert {(r.status, r.attempts, r.last_error) for r in rows} == {("sent", 1, "")}
    assert (stats.sent, stats.retried, stats.dead) == (spec.n, 0, 0)
    assert stats.waited > 0  # the buckets did the pacing
    assert spec.fastest <= took <= spec.slowest, took


def test_without_our_limits_the_dingtalk_robot_is_banned_and_the_relay_waits_it_out(
    services: Any, db: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The negative control: the same burst with ``limits()`` returning nothing trips 130101."""
    with ExitStack() as stack:
        robot = _dingtalk(stack, services, clock)
        services.platforms[robot.bot_id] = robot.adapter
        with db() as session, session.begin():
            seed.team(
                session,
                TEAM,
                leader=None,
                chat_bot=robot.bot_id,
                webhook_enc=Sealer([TEST_KEY]).seal(robot.url),
                webhook_allow_private=True,
                webhook_secret_enc=Sealer([TEST_KEY]).seal(robot.secret),
            )
        monkeypatch.setattr(DingTalkPlatform, "limits", lambda self, message: [])
        enqueue_burst(services, robot.bot_id, 100)
        r = relay(services)
        start = clock()

        while robot.requests() <= 20:  # everything is due at once: 20 go, the 21st is refused
            assert r.run_once().progressed
        banned_at = clock()
        assert len(robot.accepted()) == 20 and robot.requests() == 21
        r.run_once()  # the rest of the claimed rows: held back by the adapter, not sent
        assert robot.requests() == 21
        waiting = [row for row in outbox_rows(services) if row.status == "pending" and row.attempts]
        assert waiting, "no row was held back by the ban"
        assert all(row.last_error.startswith("[130101]") for row in waiting)
        assert all(row.next_attempt_at >= banned_at + timedelta(seconds=600) for row in waiting)

        drain(services, relay=r, sleep=advancing(clock))
        took = clock() - start

    assert sorted(marks(robot.accepted())) == list(range(100))  # still all of them, once each
    assert {r.status for r in outbox_rows(services)} == {"sent"}
    # 20 go per round and the 21st is refused, which bans the robot for ten minutes: five
    # rounds for 100, so four bans and four refused requests (the adapter sends nothing while banned)
    assert took == timedelta(minutes=4 * 10)
    assert robot.requests() == 100 + 4
