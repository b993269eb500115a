"""Issue 15's "Done when", across all three long connections at once, through the worker.

One real ``Worker`` (its outbox relay and its stream supervisor; the scheduler off, jobs run by
``bot.worker.jobs.run_job`` on the frozen test clock) holds three ``connection = "stream"`` bots — Feishu,
DingTalk and the WeCom AI bot — each dialling its fake gateway on a loopback socket. There is no
inbound HTTP server at all: every message and click arrives over a long connection, every answer
leaves through that platform's own outbound path (Feishu and DingTalk: their HTTP APIs, fed by the
relay; WeCom: frames on the AI bot's connection). Each test drives one platform while the other two
stay connected in the same worker. The team is examples/team.toml (the ``demo_team`` fixture).
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import func, select, update

from bot.config import BotConfig, Secret, Settings
from bot.doctor.runner import run as doctor
from bot.services import build_services
from bot.worker import streams
from bot.worker.jobs import run_job
from bot.worker.process import Worker
from storage.db import transaction
from storage.models import Identity, InboundEvent, OutboxMessage, Plan, Team
from tests import worker_seed as seed
from tests.conftest import TEST_KEY
from tests.fakes import feishu as ff
from tests.fakes.dingtalk import ROBOT_TOPIC, FakeDingTalk
from tests.fakes.feishu_gateway import FakeGateway
from tests.fakes.tenants import DingTalkTenant, FeishuTenant
from tests.fakes.wecom_aibot import FakeWeComAIBot
from tests.stream_bots import (
    AIBOT,
    AIBOT_SECRET,
    dingtalk_stream_bot,
    feishu_stream_bot,
    until,
    wecom_stream_bot,
)

SH = ZoneInfo("Asia/Shanghai")
WEEK = "2026-W48"
PLAN_TEXT = "计划\n优化详情页首屏 支付转化率 +2pp\n差评回访 投诉率 -10%"
FORM = f"填写本周计划 · {WEEK}"
RECEIPT = f"本周计划已提交 · {WEEK}"
PLATFORMS = ["feishu", "dingtalk", "wecom"]
BOTS = {"feishu": "feishu-main", "dingtalk": "dingtalk-main", "wecom": "wecom-main"}
# what 李雷 and 张伟 (examples/team.toml) are called on each bot, and the ops group's chat there
LILEI = {"feishu": "ou_lilei", "dingtalk": "0102", "wecom": "LiLei"}
ZHANGWEI = {"feishu": "ou_zhangwei", "dingtalk": "0101", "wecom": "ZhangWei"}
OPS_CHAT = {"feishu": "oc_ops_group", "dingtalk": "cidTeamOps==", "wecom": "wrGroupOps"}


# ---------------------------------------------------------------- each platform, as a person sees it


class FeishuSide:
    """A person on Feishu: events and card callbacks pushed by the fake gateway; what the bot sent
    through the open platform's message API (the relay's path)."""

    def __init__(self, fake: ff.FakeFeishu):
        self.fake, self.gw = fake, fake.gateway

    def say(self, who: str, text: str) -> None:
        answer = self.gw.wait(self.gw.push(ff.text_message(text, open_id=who, token="")))
        assert answer == {"code": 200, "headers": {}}, answer

    def received(self, who: str) -> list[tuple[str, str]]:
        """(title, whole message) of each message ``who`` (a person or a chat) got, in order."""
        return [(_title(s.card), _text(s.card)) for s in self.fake.sent if s.receive_id == who]

    def click(self, who: str, title: str, button: str) -> str:
        """Press ``button`` on the last card titled ``title``; the title of the card it became."""
        card = next(
            s.card for s in reversed(self.fake.sent) if s.receive_id == who and _title(s.card) == title
        )
        [value] = [
            b["behaviors"][0]["value"]
            for b in _walk(card)
            if b.get("tag") == "button" and b.get("text", {}).get("content") == button
        ]
        answer = self.gw.wait(self.gw.push(ff.card_action(value, open_id=who, token="")))
        assert answer["code"] == 200 and answer["data"]["card"]["type"] == "raw", answer
        return _title(answer["data"]["card"]["data"])

    def lose_next_answer(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The next event is handled and committed, then the line breaks before its answer arrives."""
        self.gw.lose_next_answers = 1

    def send(self, who: str, text: str) -> Any:
        return self.gw.push(ff.text_message(text, open_id=who, token=""))

    def answered(self, sent: Any) -> bool:
        return bool(self.gw.wait(sent, timeout=15)["code"] == 200)

    def drop(self) -> None:
        self.gw.drop()


class DingTalkSide:
    """A person on DingTalk: robot messages and card clicks on the Stream gateway; what the bot
    sent through the robot and card APIs (session webhook, batchSend, groupMessages, cards)."""

    def __init__(self, fake: FakeDingTalk):
        self.fake, self.gw = fake, fake.gateway
        self.sessions: dict[str, str] = {}  # session webhook -> who wrote the message it answers

    def say(self, who: str, text: str) -> None:
        message = self.fake.robot_message(text, sender=who, conversation_type="1")
        self.sessions[message["sessionWebhook"].rsplit("=", 1)[1]] = who
        ack = self.gw.wait_ack(self.gw.push(ROBOT_TOPIC, message), 10)
        assert ack is not None and ack["code"] == 200, ack

    def received(self, who: str) -> list[tuple[str, str]]:
        got = [
            (m["body"][m["body"]["msgtype"]]["title"], _text(m["body"]))
            for m in self.fake.session_messages
            if self.sessions.get(m["session"]) == who
        ]
        for m in self.fake.user_messages + self.fake.group_messages:
            if who in m.get("userIds", []) or m.get("openConversationId") == who:
                got.append((json.loads(m["msgParam"])["title"], _text(m)))
        for card in self.fake.cards.values():
            if card["openSpaceId"].endswith(f".{who}"):
                got.append((card["cardData"]["cardParamMap"]["title"], _text(card)))
        return got

    def click(self, who: str, title: str, button: str) -> str:
        [(track, card)] = [
            (k, c) for k, c in self.fake.cards.items() if c["cardData"]["cardParamMap"]["title"] == title
        ]
        buttons = json.loads(card["cardData"]["cardParamMap"]["buttons"])
        index = [b["text"] for b in buttons].index(button)
        assert self.fake.click(track, index, who) is not None, "no answer within DingTalk's 2 s"
        assert self.fake.card_updates == []  # the update travelled in the ack, not through the API
        return str(self.fake.cards[track]["cardData"]["cardParamMap"]["title"])

    def lose_next_answer(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gw.lose_acks = 1  # the gateway cuts the line as the ack arrives, before recording it

    def send(self, who: str, text: str) -> str:
        message = self.fake.robot_message(text, sender=who, conversation_type="1")
        self.sessions[message["sessionWebhook"].rsplit("=", 1)[1]] = who
        return self.gw.push(ROBOT_TOPIC, message)

    def answered(self, message_id: str) -> bool:
        return self.gw.when(lambda: message_id not in self.gw.pending, 15) and message_id in self.gw.acks

    def drop(self) -> None:
        self.gw.drop()


class WeComSide:
    """A person on WeCom talking to the AI bot: callbacks on its connection; the bot's replies,
    card updates and pushes are frames on the same connection."""

    def __init__(self, fake: FakeWeComAIBot):
        self.fake = fake
        self.asked: dict[str, str] = {}  # req_id -> who (or which group) the callback came from

    def say(self, who: str, text: str, chatid: str = "") -> None:
        rid, _ = self.fake.send_text(who, text, chatid=chatid)
        self.asked[rid] = chatid or who
        [reply] = self.fake.wait(lambda: self.fake.replies(rid))
        assert reply.errcode == 0, reply

    def received(self, who: str) -> list[tuple[str, str]]:
        got = []
        for record in list(self.fake.frames):
            rid = (record.frame.get("headers") or {}).get("req_id")
            if (
                record.errcode == 0
                and record.frame.get("cmd") == "aibot_respond_msg"
                and self.asked.get(rid) == who
            ):
                got.append((_wecom_title(record.frame["body"]), _text(record.frame["body"])))
        got += [(_wecom_title(p), _text(p)) for p in list(self.fake.pushes) if p["chatid"] == who]
        return got

    def click(self, who: str, title: str, button: str) -> str:
        card = next(
            b["template_card"]
            for r in reversed(self.fake.frames)
            if (b := r.frame.get("body") or {}).get("template_card", {}).get("main_title", {}).get("title")
            == title
        )
        [key] = [b["key"] for b in card["button_list"] if b["text"] == button]
        rid, _ = self.fake.click(who, key, card["task_id"])
        [update_] = self.fake.wait(lambda: self.fake.replies(rid))
        assert (update_.frame["cmd"], update_.errcode) == ("aibot_respond_update_msg", 0), update_
        return _wecom_title(update_.frame["body"])

    def lose_next_answer(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """WeCom keeps nothing for a connection that is gone: the network fails right after the
        next callback's transaction commits, before the client's reply frame leaves."""
        real = streams.process
        armed = [True]

        def then_drop(services: Any, platform: Any, inbound: Any) -> Any:
            response = real(services, platform, inbound)
            if armed and armed.pop():
                self.fake.drop()
            return response

        monkeypatch.setattr(streams, "process", then_drop)

    def send(self, who: str, text: str) -> tuple[str, str]:
        rid, msgid = self.fake.send_text(who, text)
        self.asked[rid] = who
        return rid, msgid

    def answered(self, sent: tuple[str, str]) -> bool:
        """Answered on the connection it came on, or pushed on the next one."""
        return bool(until(lambda: self.fake.replies(sent[0]) or self.fake.pushes, 15))


def _text(message: Any) -> str:
    return json.dumps(message, ensure_ascii=False)


def _wecom_title(body: dict[str, Any]) -> str:
    if "template_card" in body:
        return str(body["template_card"]["main_title"]["title"])
    return str(body.get(body.get("msgtype", ""), {}).get("content", "")).split("\n")[0].strip("*")


def _title(card: dict[str, Any]) -> str:
    return str(card["header"]["title"]["content"])


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


# ---------------------------------------------------------------- one worker, three connections


@dataclass
class World:
    services: Any
    worker: Worker
    sides: dict[str, Any]
    fakes: SimpleNamespace

    def state(self, platform: str) -> streams.StreamState:
        return next(s for s in self.worker.streams.states() if s.bot_id == BOTS[platform])

    def count(self, model: Any) -> int:
        with self.services.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def fakes(clock) -> Iterator[SimpleNamespace]:
    with ExitStack() as stack:
        feishu = ff.FakeFeishu(clock=clock)
        feishu.gateway = FakeGateway(ff.APP_ID, ff.APP_SECRET, ping_interval=1)
        stack.enter_context(feishu.running())
        stack.enter_context(feishu.gateway.running())
        dingtalk = FakeDingTalk(clock).start()
        stack.callback(dingtalk.stop)
        dingtalk.stream()
        wecom = FakeWeComAIBot(AIBOT, AIBOT_SECRET).start()
        stack.callback(wecom.stop)
        yield SimpleNamespace(feishu=feishu, dingtalk=dingtalk, wecom=wecom)


def three_bots(fakes: SimpleNamespace) -> tuple[BotConfig, ...]:
    return (
        feishu_stream_bot(fakes.feishu.base_url),
        dingtalk_stream_bot(fakes.dingtalk),
        wecom_stream_bot(fakes.wecom),
    )


@pytest.fixture
def world(fakes, clock, engine, demo_team) -> Iterator[World]:
    settings = Settings(
        database_url="sqlite://",
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        bots=three_bots(fakes),
    )
    services = build_services(settings, clock=clock, engine=engine, http=requests.Session())
    worker = Worker(services, scheduler=False, poll=0.05)
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, ready), daemon=True)
    thread.start()
    sides = {
        "feishu": FeishuSide(fakes.feishu),
        "dingtalk": DingTalkSide(fakes.dingtalk),
        "wecom": WeComSide(fakes.wecom),
    }
    try:
        assert ready.wait(5)
        world = World(services, worker, sides, fakes)
        assert until(lambda: all(s.connected for s in worker.streams.states()), 10), worker.streams.states()
        yield world
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "the worker did not stop"
    assert not any(s.connected or s.holder for s in worker.streams.states())
    assert fakes.feishu.gateway.problems == [] and fakes.dingtalk.gateway.bad_acks == []


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH).astimezone(UTC)


def lilei_plan(world: World) -> list[tuple[str, str, str, str]]:
    with world.services.sessions() as session:
        [plan] = session.scalars(select(Plan).where(Plan.person_id == "lilei"))
        assert (plan.week, plan.status) == (WEEK, "submitted")
        return [(i.text, i.kpi_key, f"{i.baseline:.2f}", f"{i.target:.3f}") for i in plan.items]


def delivered(world: World, platform: str, who: str, title: str, seconds: float = 10) -> bool:
    return bool(until(lambda: title in titles(world, platform, who), seconds))


def titles(world: World, platform: str, who: str) -> list[str]:
    return [title for title, _ in world.sides[platform].received(who)]


def body_of(world: World, platform: str, who: str, title: str) -> str:
    return next(text for t, text in world.sides[platform].received(who) if t == title)


# ---------------------------------------------------------------- 1. the week's loop on each platform


@pytest.mark.slow
@pytest.mark.parametrize("platform", PLATFORMS)
def test_plan_click_and_the_jobs_through_the_worker(world, clock, platform):
    side, lilei, zhangwei = world.sides[platform], LILEI[platform], ZHANGWEI[platform]
    assert [(s.bot_id, s.connected, s.holder) for s in world.worker.streams.states()] == [
        (BOTS[p], True, True) for p in PLATFORMS
    ]

    # 写计划 -> the plan card
    side.say(lilei, "写计划")
    assert delivered(world, platform, lilei, FORM), titles(world, platform, lilei)

    # a plan by text -> stored with its KPI targets, and the receipt
    side.say(lilei, PLAN_TEXT)
    assert lilei_plan(world) == [
        ("优化详情页首屏", "conversion_rate", "2.89", "4.890"),
        ("差评回访", "complaint_rate", "1.26", "1.134"),
    ]
    assert delivered(world, platform, lilei, RECEIPT), titles(world, platform, lilei)

    # 修改计划 on the receipt: the card becomes the plan form again
    assert side.click(lilei, RECEIPT, "修改计划") == FORM
    assert world.count(Plan) == 1

    # the jobs: the ops team's chat and its people are on this platform's bot
    with transaction(world.services.sessions) as session:
        session.execute(update(Team).values(chat_bot=BOTS[platform], chat_id=OPS_CHAT[platform]))
    # the AI bot pushes only where someone talked to it (docs/platforms/wecom-stream.md)
    if platform == "wecom":
        for leader in ("ZhangWei", "WangFang"):  # both teams' leaders
            side.say(leader, "帮助")
        side.say(zhangwei, "@计划助手 帮助", chatid=OPS_CHAT[platform])

    summary = run_job(world.services, "monday-summary", clock())
    assert (summary.status, summary.enqueued) == ("done", 4), summary  # two teams: leader + group each
    leader_summary = f"运营设计组 · 周初汇总 · {WEEK}（组长版）"
    assert delivered(world, platform, zhangwei, leader_summary), titles(world, platform, zhangwei)
    assert delivered(world, platform, OPS_CHAT[platform], f"运营设计组 · 周初汇总 · {WEEK}")
    assert "1/5 人" in body_of(world, platform, zhangwei, leader_summary)  # 李雷 filed; four did not
    assert "陈静、韩梅梅、刘洋、赵强" in body_of(world, platform, zhangwei, leader_summary)

    clock.set(local("2026-11-25 10:05"))  # Wednesday: Monday and Tuesday did not move at all
    with transaction(world.services.sessions) as session:
        for day in ("2026-11-23", "2026-11-24"):
            seed.sample(session, "pay_conversion_rate", day, "2.89", at=clock())
            seed.sample(session, "complaint_rate", day, "1.26", at=clock())
    alerts = run_job(world.services, "lag-alerts", clock())
    assert alerts.status == "done" and alerts.detail["lagging"] == 2, alerts
    assert delivered(world, platform, lilei, "进度提醒：优化详情页首屏"), titles(world, platform, lilei)
    assert delivered(world, platform, lilei, "进度提醒：差评回访"), titles(world, platform, lilei)
    assert "4.89" in body_of(world, platform, lilei, "进度提醒：优化详情页首屏")  # his target
    folded = "运营设计组 · 进度落后 2 项"
    assert delivered(world, platform, zhangwei, folded), titles(world, platform, zhangwei)
    assert all(
        word in body_of(world, platform, zhangwei, folded) for word in ("李雷", "优化详情页首屏", "差评回访")
    )

    def unsent() -> list[str]:  # the relay marks a row sent just after the platform took it
        with world.services.sessions() as session:
            rows = session.scalars(select(OutboxMessage)).all()
        assert {r.bot_id for r in rows} <= {BOTS[platform]}
        return [r.dedupe_key for r in rows if r.status != "sent"]

    assert until(lambda: not unsent()), unsent()


# ---------------------------------------------------------------- 2. the line breaks mid-flow


@pytest.mark.slow
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_dropped_connection_is_restored_by_the_supervisor_losing_and_doubling_nothing(
    world, platform, monkeypatch
):
    side, lilei = world.sides[platform], LILEI[platform]
    side.say(lilei, "写计划")
    assert delivered(world, platform, lilei, FORM)

    # the plan is stored and committed, then the line breaks before the platform hears back
    side.lose_next_answer(monkeypatch)
    sent = side.send(lilei, PLAN_TEXT)
    assert side.answered(sent)  # delivered again (or its receipt pushed) on the new connection
    assert until(lambda: world.state(platform).connected and world.state(platform).reconnects >= 1, 10)
    state = world.state(platform)
    assert state.reconnects == 1 and state.last_error, state
    assert [world.state(p).reconnects for p in PLATFORMS if p != platform] == [0, 0]  # the others held

    if platform == "wecom":  # WeCom sending the same message again adds nothing either
        rid, _ = world.fakes.wecom.send_text(lilei, PLAN_TEXT, msgid=sent[1])
        assert until(lambda: world.fakes.wecom.replies(rid), 1) is None
    else:  # a message sent while the line is down arrives once it is back
        side.drop()
        assert side.answered(side.send(lilei, "进度"))
        assert until(lambda: world.state(platform).reconnects == 2 and world.state(platform).connected, 10)

    assert lilei_plan(world) == [
        ("优化详情页首屏", "conversion_rate", "2.89", "4.890"),
        ("差评回访", "complaint_rate", "1.26", "1.134"),
    ]
    assert delivered(world, platform, lilei, RECEIPT)
    assert titles(world, platform, lilei).count(RECEIPT) == 1
    with world.services.sessions() as session:
        keys = list(session.scalars(select(OutboxMessage.dedupe_key)))
    assert world.count(InboundEvent) == (2 if platform == "wecom" else 3)  # 写计划, the plan (, 进度)
    assert world.count(Plan) == 1
    assert len(keys) == len(set(keys))


# ---------------------------------------------------------------- 3. planloop doctor, real clients


def run_doctor(engine: Any, clock: Any, bot: BotConfig) -> tuple[int, str]:
    """``planloop doctor`` for one bot, as the CLI runs it: its exit code and what it printed."""
    settings = Settings(
        database_url="sqlite://",
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        bots=(bot,),
    )
    services = build_services(settings, clock=clock, engine=engine, http=requests.Session())
    out = io.StringIO()
    code = doctor(settings, services, out=out, stream_timeout=5.0)
    return code, out.getvalue()


def tenant_for(platform: str, fakes: SimpleNamespace, people: list[str]) -> Any:
    """The doctor's other endpoints on the fake (scopes, groups, contacts) with the team in them."""
    if platform == "feishu":
        tenant = FeishuTenant(fakes.feishu)
        tenant.chats |= {"oc_ops_group": True, "oc_service_group": True}
        tenant.users |= set(people)
        return tenant
    if platform == "dingtalk":
        tenant = DingTalkTenant(fakes.dingtalk)
        tenant.users |= set(people)
        return tenant
    return None  # the AI bot alone: nothing but its connection to ask


def refuse_stream(platform: str, fakes: SimpleNamespace, tenant: Any) -> None:
    """Credentials that work on the HTTP API, on an app whose long connection is not switched on."""
    if platform == "feishu":
        fakes.feishu.gateway.refuse_handshake = (403, "403", "forbidden", "")
    elif platform == "dingtalk":
        tenant.gateway_refusal = (403, "Forbidden.StreamNotOpen", "应用未开启 Stream 模式")


FIX = {
    "feishu": "开发者后台 https://open.feishu.cn/app/cli_fake_app › 开发配置 › 事件与回调 › 订阅方式 选 使用长连接接收事件（回调同样选长连接）",
    "dingtalk": "开发者后台 https://open-dev.dingtalk.com › 应用 › 机器人 › 消息接收模式 选 Stream 模式，并发布",
    "wecom": "管理后台 应用管理 › 智能机器人 › API 模式 选 长连接，核对 Bot ID（bot_id）和 Secret（bot_secret）",
}


DOCTOR_ROWS = [
    # (platform, what is wrong, the failing lines: (start, the platform's own words, once, end))
    ("feishu", "nothing", []),
    (
        "feishu",
        "wrong secret",
        [("✗ 凭证：飞书拒绝：", "10014 app secret invalid", "凭证与基础信息 的 App ID 和 App Secret")],
    ),
    (
        "feishu",
        "long connection off",
        [("✗ 长连接：平台拒绝了凭证：", "企业自建应用", f"(403) → {FIX['feishu']}")],
    ),
    ("dingtalk", "nothing", []),
    (
        "dingtalk",
        "wrong secret",
        [("✗ 凭证：钉钉拒绝：", "invalidClientIdOrSecret", "Client ID（AppKey）和 Client Secret")],
    ),
    (
        "dingtalk",
        "long connection off",
        [
            (
                "✗ 长连接：平台拒绝了凭证：",
                "Forbidden.StreamNotOpen 应用未开启 Stream 模式",
                f"模式) → {FIX['dingtalk']}",
            )
        ],
    ),
    ("wecom", "nothing", []),
    (
        "wecom",
        "wrong secret",
        [("✗ 长连接：平台拒绝了凭证：", "853000 signature is incorrect", f"Secret) → {FIX['wecom']}")],
    ),
]


@pytest.mark.parametrize(
    "platform, wrong, failures", DOCTOR_ROWS, ids=[f"{row[0]}: {row[1]}" for row in DOCTOR_ROWS]
)
def test_doctor_opens_each_real_stream_client_against_its_fake(
    fakes, engine, clock, demo_team, platform, wrong, failures
):
    bot = dict(zip(PLATFORMS, three_bots(fakes), strict=True))[platform]
    with engine.connect() as conn:
        people = list(conn.scalars(select(Identity.external_id).where(Identity.bot_id == bot.id)))
    tenant = tenant_for(platform, fakes, people)
    if wrong == "wrong secret":
        bot = BotConfig(
            bot.id, bot.platform, bot.values, {k: Secret("rotated-elsewhere") for k in bot.secrets}
        )
    elif wrong == "long connection off":
        refuse_stream(platform, fakes, tenant)
    code, output = run_doctor(engine, clock, bot)
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    failed = [line for line in lines if line.startswith("✗")]
    assert len(failed) == len(failures) and code == (1 if failures else 0), output
    assert [
        (f.startswith(start), f.count(words), f.endswith(end))
        for f, (start, words, end) in zip(failed, failures, strict=True)
    ] == [(True, 1, True)] * len(failures), failed
    if not failures:
        [stream] = [line for line in lines if line.startswith("✓ 长连接：")]
        assert stream.endswith("秒内连上，已断开")


@pytest.mark.slow
def test_doctor_on_a_running_worker_borrows_the_wecom_line_and_the_supervisor_takes_it_back(
    world, engine, clock
):
    """WeCom keeps one connection per AI bot: the doctor's check kicks the worker's, briefly."""
    code, output = run_doctor(engine, clock, world.services.settings.bot("wecom-main"))
    assert code == 0 and "✓ 长连接：" in output, output
    assert until(lambda: world.state("wecom").reconnects == 1 and world.state("wecom").connected, 10)
    assert "another one subscribed" in world.state("wecom").last_error
    assert [world.state(p).reconnects for p in ("feishu", "dingtalk")] == [0, 0]
    world.sides["wecom"].say("LiLei", "写计划")  # answered by the worker's new connection
    assert titles(world, "wecom", "LiLei") == [FORM]
    assert [c.number for c in world.fakes.wecom.connections] == [1, 2, 3]  # worker, doctor, worker
    assert world.fakes.wecom.live is not None and world.fakes.wecom.live.number == 3
