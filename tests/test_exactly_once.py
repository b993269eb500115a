"""Issue 18 §3: exactly once where the platform allows it, honest where it does not.

Each case goes through the real relay, the real adapter and a fake on a real socket that
handles the request and then answers too late (our read timeout fires although the message
arrived):

- WeCom app message: sent with ``enable_duplicate_check``; the retry is dropped by WeCom.
- DingTalk card: the retry reuses the ``outTrackId``; "duplicate outTrackId" means delivered.
- group robots (DingTalk custom robot, WeCom group robot): nothing drops a repeat, so the row
  becomes ``unknown``, the admins get a notice with the resend command, and ``resend`` is the
  one action that sends it again.
- a WeCom multi-part message: the parts accepted are counted on the outbox row, so a new
  process (new relay, new adapter) resumes at the next part.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from bot.config import BotConfig, Secret
from bot.platforms import Deps
from bot.platforms.dingtalk import DingTalkPlatform
from bot.platforms.wecom import WeComPlatform
from bot.worker.delivery import Relay, drain, resend
from cards.model import Button, Card, Field, Fields, Markdown
from cards.render import wecom as wecom_render
from handlers.ops import ADMIN_PREFIX
from storage import outbox
from storage.db import transaction
from storage.models import OutboxMessage, Team
from storage.secrets import Sealer
from tests import worker_seed as seed
from tests.conftest import TEST_KEY
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import FakeWeCom

TIMEOUT = 0.3  # our read timeout; the fakes answer after LATE
LATE = 0.8
ADMIN = "zhangwei"


def wait_until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < end, "the fake never handled the late request"
        time.sleep(0.02)


def deps(services: Any, clock: Any) -> Deps:
    return Deps(
        http=requests.Session(), clock=clock, sessions=services.sessions, public_url="http://planloop.test"
    )


@pytest.fixture
def admins(services: Any, db: Any) -> None:
    services.settings.extra["admins"] = [ADMIN]
    with db() as session, session.begin():
        seed.team(session, "ops", leader=None)
        seed.person(session, ADMIN, "张伟")


@pytest.fixture
def dingtalk(services: Any, clock: Any) -> Iterator[tuple[FakeDingTalk, DingTalkPlatform]]:
    fake = FakeDingTalk(clock).start()
    cfg = BotConfig(
        "dingtalk-main",
        "dingtalk",
        {
            "app_key": fake.app_key,
            "robot_code": fake.robot_code,
            "api_base": fake.url,
            "oapi_base": fake.url,
            "card_template_id": "tpl-planloop",
            "timeout": TIMEOUT,
        },
        {"app_secret": Secret(fake.app_secret)},
    )
    adapter = DingTalkPlatform(cfg, deps(services, clock))
    services.platforms[cfg.id] = adapter
    yield fake, adapter
    fake.stop()


def wecom_adapter(fake: FakeWeCom, services: Any, clock: Any) -> WeComPlatform:
    cfg = BotConfig(
        "wecom-main",
        "wecom",
        {"corp_id": fake.corp_id, "agent_id": fake.agent_id, "api_base": fake.url, "timeout": TIMEOUT},
        {"secret": Secret(fake.secret), "token": Secret(fake.token), "aes_key": Secret(fake.aes_key)},
    )
    return WeComPlatform(cfg, deps(services, clock))


@pytest.fixture
def wecom(services: Any, clock: Any) -> Iterator[tuple[FakeWeCom, WeComPlatform]]:
    fake = FakeWeCom()
    fake.clock = lambda: clock().timestamp()
    fake.start()
    adapter = wecom_adapter(fake, services, clock)
    services.platforms["wecom-main"] = adapter
    yield fake, adapter
    fake.stop()


def enqueue(services: Any, bot_id: str, channel: str, target: str, card: Card, key: str = "m") -> str:
    with transaction(services.sessions) as session:
        row = outbox.enqueue(
            session, outbox.Target(bot_id, channel, target), card, dedupe_key=key, now=services.clock()
        )
        assert row is not None
        return row.id


def row(services: Any, outbox_id: str) -> OutboxMessage:
    with services.sessions() as session:
        found = session.get(OutboxMessage, outbox_id)
        assert found is not None
        return found


def relay(services: Any) -> Relay:
    return Relay(services, name="once", rng=lambda: 0.5)


def advancing(clock: Any) -> Callable[[float], None]:
    return lambda seconds: clock.advance(seconds=seconds)


def callback_card() -> Card:
    return Card(
        "本周进度落后",
        blocks=(Markdown("支付转化率 3.10%，目标 5.00%"),),
        buttons=(Button("本周不再提醒", action="lag.snooze", value={"item": "1"}),),
    )


# ------------------------------------------------------------ protected: retried, shown once


def test_wecom_app_message_timeout_is_retried_and_shown_once(services: Any, clock: Any, wecom: Any) -> None:
    fake, _ = wecom
    fake.fail_next("message/send", delay=LATE)  # handled, answered after our timeout
    oid = enqueue(services, "wecom-main", "user", "LiLei", Card("计划已保存", blocks=(Markdown("共 3 项"),)))
    r = relay(services)
    assert r.run_once().retried == 1
    wait_until(lambda: len(fake.sent) == 1)  # it did arrive
    assert fake.sent[0]["enable_duplicate_check"] == 1 and fake.sent[0]["duplicate_check_interval"] == 1800
    drain(services, relay=r, sleep=advancing(clock))
    assert len(fake.sent) == 1 and fake.duplicates == 1  # the retry was WeCom's to drop
    assert (row(services, oid).status, row(services, oid).attempts) == ("sent", 2)


def test_dingtalk_card_timeout_is_retried_and_the_duplicate_out_track_id_means_delivered(
    services: Any, clock: Any, dingtalk: Any
) -> None:
    fake, _ = dingtalk
    fake.slow_next("/v1.0/card/instances/createAndDeliver", LATE)
    oid = enqueue(services, "dingtalk-main", "user", "staff-lilei", callback_card())
    r = relay(services)
    assert r.run_once().retried == 1
    wait_until(lambda: len(fake.cards) == 1)
    stats = drain(services, relay=r, sleep=advancing(clock))
    assert stats.sent == 1 and stats.dead == 0
    assert fake.calls["/v1.0/card/instances/createAndDeliver"] == 2  # asked twice ...
    assert list(fake.cards) == [f"planloop-{oid}"]  # ... one card
    found = row(services, oid)
    assert (found.status, found.attempts, found.platform_message_id) == ("sent", 2, f"planloop-{oid}")


# ------------------------------------------------------------ unprotected: unknown, told, resend


def _dingtalk_robot(services: Any, db: Any, dingtalk: Any) -> tuple[Callable[[], int], Callable[[], int]]:
    fake, _ = dingtalk
    url = fake.add_robot("")
    with db() as session, session.begin():
        team = session.get(Team, "ops")
        team.chat_bot = "dingtalk-main"
        team.webhook_enc = Sealer([TEST_KEY]).seal(url)
        team.webhook_allow_private = True  # the fake listens on loopback
    fake.slow_next("/robot/send", LATE)
    return (lambda: fake.calls["/robot/send"]), (lambda: len(fake.robot_messages))


def _wecom_robot(services: Any, db: Any, wecom: Any) -> tuple[Callable[[], int], Callable[[], int]]:
    fake, _ = wecom
    url = fake.add_robot("unknown-robot")
    with db() as session, session.begin():
        team = session.get(Team, "ops")
        team.chat_bot = "wecom-main"
        team.webhook_enc = Sealer([TEST_KEY]).seal(url)
        team.webhook_allow_private = True  # the fake listens on loopback
    fake.fail_next("webhook/send", delay=LATE)
    return (
        lambda: sum(1 for path, _ in fake.requests if path == "/cgi-bin/webhook/send"),
        lambda: len(fake.robot["unknown-robot"]),
    )


@pytest.mark.parametrize("platform", ["dingtalk", "wecom"])
def test_a_group_robot_timeout_is_unknown_told_to_admins_and_resent_by_one_action(
    platform: str, services: Any, clock: Any, db: Any, admins: None, request: pytest.FixtureRequest
) -> None:
    bot_id = f"{platform}-main"
    make = _dingtalk_robot if platform == "dingtalk" else _wecom_robot
    requests_made, shown = make(services, db, request.getfixturevalue(platform))
    oid = enqueue(services, bot_id, "webhook", "ops", Card("周一汇总", blocks=(Markdown("已提交 3/4"),)))
    r = relay(services)

    assert r.run_once().unknown == 1
    wait_until(lambda: shown() == 1)  # it reached the group ...
    drain(services, relay=r, sleep=advancing(clock), deadline=clock() + timedelta(hours=2))
    assert requests_made() == 1  # ... and was never resent blindly
    found = row(services, oid)
    assert (found.status, found.attempts) == ("unknown", 1) and found.last_error.startswith(
        "[outcome_unknown]"
    )

    with services.sessions() as session:
        notice = session.scalar(
            select(OutboxMessage).where(OutboxMessage.dedupe_key == f"{ADMIN_PREFIX}unknown:{oid}:{ADMIN}")
        )
    assert notice is not None and notice.card["title"] == "消息可能未送达"
    assert f"planloop outbox resend {oid}" in str(notice.card)

    assert resend(services, oid) == "unknown"  # the admin looked: not there, send it again
    assert resend(services, oid) == "pending"  # a second click does nothing more
    drain(services, relay=r, sleep=advancing(clock))
    assert (row(services, oid).status, requests_made(), shown()) == ("sent", 2, 2)


def test_resend_knows_only_unknown_and_dead_rows(services: Any, clock: Any, wecom: Any) -> None:
    oid = enqueue(services, "wecom-main", "user", "LiLei", Card("x", blocks=(Markdown("y"),)))
    assert resend(services, "no-such-id") is None
    assert resend(services, oid) == "pending"  # not resendable: left alone
    assert row(services, oid).status == "pending"


def test_the_cli_names_the_resend_action() -> None:
    from bot.cli.commands import build_parser

    args = build_parser().parse_args(["outbox", "resend", "abc-123"])
    assert args.id == "abc-123" and args.func.__name__ == "cmd_outbox_resend"
    assert build_parser().parse_args(["outbox", "list"]).func.__name__ == "cmd_outbox_list"


# ------------------------------------------------------------ multi-part progress on the row


def test_a_restart_resumes_a_multi_part_robot_message_at_the_next_part(
    services: Any, clock: Any, db: Any, wecom: Any
) -> None:
    fake, _ = wecom
    url = fake.add_robot("parts-robot")
    with db() as session, session.begin():
        seed.team(
            session,
            "ops",
            leader=None,
            chat_bot="wecom-main",
            webhook_enc=Sealer([TEST_KEY]).seal(url),
            webhook_allow_private=True,
        )
    card = Card(
        "周一汇总",
        blocks=tuple(
            Fields(tuple(Field(f"成员{n:02d}", "完成 80%，计划 5 项，落后 1 项" * 4) for n in range(15)))
            for _ in range(3)
        ),
    )
    parts = wecom_render.robot_messages(card)
    assert len(parts) >= 3
    fake.fail_next("webhook/send", errcode=-1, after=1)  # part 2: "system busy", retry later
    oid = enqueue(services, "wecom-main", "webhook", "ops", card)

    assert relay(services).run_once().retried == 1
    assert row(services, oid).parts_sent == 1  # on the row, not in this process

    # a new process: another adapter (no memory of the first), another relay
    services.platforms["wecom-main"] = wecom_adapter(fake, services, clock)
    drain(services, relay=Relay(services, name="after-restart", rng=lambda: 0.5), sleep=advancing(clock))

    assert fake.robot["parts-robot"] == parts  # every part once, in order
    found = row(services, oid)
    assert (found.status, found.parts_sent) == ("sent", len(parts))


def test_a_dingtalk_card_too_long_for_one_value_goes_as_its_text_then_the_card_each_once(
    services: Any, clock: Any, dingtalk: Any
) -> None:
    """The 50-person leader summary: its text is far above a card value's 1 KB and it has no
    page to link to, so the app robot sends the whole text and then the card follows, shortened,
    with its buttons. The card's first attempt fails: the retry does not send the text again."""
    from cards import builders
    from cards.i18n import texts
    from cards.render import dingtalk as render
    from tests.test_digest_cards import digest, name

    fake, _ = dingtalk
    card = builders.monday_summary_leader_card(texts("zh-CN"), digest(50))
    assert render.card_needs_split(card)
    fake.fail_next("/v1.0/card/instances/createAndDeliver", 500, {"code": "ServiceUnavailable"})
    oid = enqueue(services, "dingtalk-main", "chat", "cidTeamOps==", card)
    drain(services, relay=relay(services), sleep=advancing(clock))

    [text] = fake.group_messages  # once, although the card took two attempts
    assert text["msgKey"] == "sampleMarkdown"
    full = json.loads(text["msgParam"])["text"]
    assert name(49) in full and render.TRUNCATED not in full  # all 50 people
    [shown] = fake.cards.values()
    params = shown["cardData"]["cardParamMap"]
    assert params["markdown"].endswith(render.CONTINUED) and json.loads(params["buttons"])
    assert all(len(v.encode()) <= 1024 for v in params.values())
    found = row(services, oid)
    assert (found.status, found.attempts, found.parts_sent) == ("sent", 2, 1)


# ------------------------------------------------------------ killed between "ok" and "sent"


class Killed(BaseException):
    """SIGKILL, as far as the relay can tell: nothing after this point runs."""


@pytest.mark.parametrize(
    ("platform", "channel", "target", "status"),
    [
        ("dingtalk", "webhook", "ops", "unknown"),  # custom robot: would show twice, left to an admin
        ("wecom", "user", "LiLei", "sent"),  # app message: resent, WeCom's duplicate check drops it
    ],
)
def test_a_relay_killed_after_the_platform_accepted_never_shows_a_message_twice(
    services: Any,
    clock: Any,
    db: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    platform: str,
    channel: str,
    target: str,
    status: str,
) -> None:
    fake, _ = request.getfixturevalue(platform)
    if platform == "dingtalk":
        url = fake.add_robot("")
        delivered: Callable[[], int] = lambda: len(fake.robot_messages)  # noqa: E731
    else:
        url = fake.add_robot("killed-robot")
        delivered = lambda: len(fake.sent)  # noqa: E731
    with db() as session, session.begin():
        seed.team(
            session,
            "ops",
            leader=None,
            chat_bot=f"{platform}-main",
            webhook_enc=Sealer([TEST_KEY]).seal(url),
            webhook_allow_private=True,
        )
    oid = enqueue(
        services, f"{platform}-main", channel, target, Card("周报", blocks=(Markdown("已提交 3/4"),))
    )

    first = relay(services)

    def killed(*_args: Any) -> str:
        raise Killed

    monkeypatch.setattr(first, "_sent", killed)
    with pytest.raises(Killed):
        first.run_once()
    assert delivered() == 1 and row(services, oid).status == "pending"

    clock.advance(minutes=6)  # the dead relay's lease runs out; a new process claims the row
    drain(services, relay=Relay(services, name="restarted", rng=lambda: 0.5), sleep=advancing(clock))
    assert (row(services, oid).status, delivered()) == (status, 1)


def test_wecom_app_group_chat_timeout_is_unknown_too(services: Any, clock: Any, wecom: Any) -> None:
    """appchat/send has no duplicate check: unlike message/send, a lost answer is not retried."""
    fake, _ = wecom
    fake.chats.add("wrTeamOps")
    fake.fail_next("appchat/send", delay=LATE)
    oid = enqueue(services, "wecom-main", "chat", "wrTeamOps", Card("周报", blocks=(Markdown("已提交 3/4"),)))
    assert relay(services).run_once().unknown == 1
    wait_until(lambda: len(fake.chat_messages) == 1)  # it was there all along
    assert row(services, oid).status == "unknown"
