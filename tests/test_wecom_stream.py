"""WeCom 智能机器人 on its long connection, end to end: the real client (bot/platforms/wecom_stream.py)
against the fake gateway (tests/fakes/wecom_aibot.py) on a loopback WebSocket, the one inbound
path (bot.dispatch.process) and the database. The supervisor is not used: ``run`` is called in a
thread, and called again after a failure the way the supervisor would."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import dispatch
from bot.config import BotConfig, Secret, Settings
from bot.platforms.base import DeliveryError, Outbound, WebResponse
from bot.platforms.stream import StreamAuthError, StreamError, build_stream
from bot.platforms.wecom_aibot import parse_callback, reply_body, update_body
from bot.worker.delivery import Relay, RelayPolicy
from cards.model import Button, Card, Markdown
from cards.render import wecom as render
from handlers.inbound import Inbound
from storage.models import OutboxMessage, Plan
from tests.conftest import TEST_KEY
from tests.fakes.wecom_aibot import ERR_EXPIRED, ERR_NO_CONVERSATION, FakeWeComAIBot
from tests.stream_bots import AIBOT
from tests.stream_bots import AIBOT_SECRET as SECRET
from tests.stream_bots import wecom_stream_bot as stream_bot

TEXT_PLAN = "计划\n优化详情页首屏 支付转化率 +2pp\n差评回访 投诉率 -10%"


@pytest.fixture
def fake() -> Iterator[FakeWeComAIBot]:
    server = FakeWeComAIBot(AIBOT, SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def settings(fake) -> Settings:
    return Settings(
        database_url="sqlite://",
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        bots=(stream_bot(fake, heartbeat_seconds=0.2),),
    )


@dataclass
class Running:
    """One ``run`` in a thread; ``errors`` gets what it raised."""

    thread: threading.Thread
    stop: threading.Event
    connected: threading.Event
    errors: list[BaseException] = field(default_factory=list)

    def wait_connected(self) -> None:
        assert self.connected.wait(5), f"no connection: {self.errors}"

    def wait_ended(self, timeout: float = 5) -> BaseException | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "run() did not return"
        return self.errors[0] if self.errors else None


def start(client: Any, handle: Callable[[Inbound], WebResponse]) -> Running:
    stop, connected = threading.Event(), threading.Event()
    running = Running(threading.Thread(target=lambda: None), stop, connected)

    def target() -> None:
        try:
            client.run(handle, stop, connected.set)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            running.errors.append(exc)

    running.thread = threading.Thread(target=target, daemon=True)
    running.thread.start()
    return running


@pytest.fixture
def platform(services):
    return services.platforms["wecom-main"]


@pytest.fixture
def client(services, platform, settings):
    return build_stream(settings.bots[0], platform.deps, platform)


@pytest.fixture
def handle(services, platform) -> Callable[[Inbound], WebResponse]:
    return lambda inbound: dispatch.process(services, platform, inbound)


@pytest.fixture
def live(client, handle) -> Iterator[Running]:
    running = start(client, handle)
    running.wait_connected()
    yield running
    running.stop.set()
    running.wait_ended()


def answered(fake: FakeWeComAIBot, rid: str, n: int = 1):
    return fake.wait(lambda: (r := fake.replies(rid)) and len(r) >= n and r)


def plans(db) -> int:
    with db() as s:
        return s.scalar(select(func.count()).select_from(Plan)) or 0


# ---------------------------------------------------------------- connection


def test_a_wrong_secret_is_an_auth_error_that_says_what_to_fix(fake, services, platform, handle):
    bot = stream_bot(fake, secret="wrong")
    running = start(build_stream(bot, platform.deps, platform), handle)
    error = running.wait_ended()
    assert isinstance(error, StreamAuthError)
    assert error.code == "853000" and "bot_secret" in str(error)
    assert not running.connected.is_set()


def test_subscribe_carries_the_bot_id_and_secret_and_pings_follow(fake, live):
    first = fake.frames[0].frame
    assert first["cmd"] == "aibot_subscribe"
    assert first["body"] == {"bot_id": AIBOT, "secret": SECRET}
    assert first["headers"]["req_id"].startswith("aibot_subscribe_")
    fake.wait(lambda: len(fake.pings) >= 3)
    gaps = [b - a for (_, a), (_, b) in zip(fake.pings, fake.pings[1:], strict=False)]
    assert all(0.15 < g < 1.0 for g in gaps), gaps  # every 0.2 s, on a busy machine


def test_pings_without_answers_end_the_connection(fake, live):
    fake.stall_answers = True
    error = live.wait_ended()
    assert isinstance(error, StreamError) and error.code == "heartbeat"


def test_a_second_connection_kicks_the_first(fake, services, platform, handle, live, settings):
    second = start(build_stream(settings.bots[0], platform.deps, platform), handle)
    second.wait_connected()
    error = live.wait_ended()
    assert isinstance(error, StreamError) and error.code == "disconnected_event"
    assert "another one subscribed" in str(error)
    assert fake.live is not None and fake.live.number == 2
    rid, _ = fake.send_text("LiLei", "帮助")  # the newer connection serves
    assert answered(fake, rid)[0].connection == 2
    second.stop.set()
    assert second.wait_ended() is None


def test_stop_serves_what_arrived_then_closes_cleanly(fake, client, db, demo_team, services, platform):
    started = threading.Event()

    def slow(inbound: Inbound) -> WebResponse:
        started.set()
        time.sleep(0.3)
        return dispatch.process(services, platform, inbound)

    running = start(client, slow)
    running.wait_connected()
    rid, _ = fake.send_text("LiLei", TEXT_PLAN)
    assert started.wait(5)
    running.stop.set()  # SIGTERM while the plan is being stored
    assert running.wait_ended() is None
    assert plans(db) == 1
    assert [r.errcode for r in fake.replies(rid)] == [0]


# ---------------------------------------------------------------- the flows


def test_write_plan_gets_a_card_with_the_signed_form_link(fake, live, demo_team, services, clock):
    rid, _ = fake.send_text("LiLei", "写计划")
    (reply,) = answered(fake, rid)
    assert (reply.frame["cmd"], reply.errcode) == ("aibot_respond_msg", 0)
    tc = reply.frame["body"]["template_card"]
    assert tc["card_type"] == "text_notice"  # WeCom cards take no text: the form is a web page
    link = tc["card_action"]["url"]
    claims = services.links.verify(link.rsplit("/p/", 1)[1], clock(), page="plan-form")
    assert (claims.person, claims.week) == ("lilei", "2026-W48")


def test_text_plan_is_stored_and_its_receipt_button_updates_the_card(fake, live, demo_team, db):
    rid, _ = fake.send_text("LiLei", TEXT_PLAN)
    (reply,) = answered(fake, rid)
    assert reply.errcode == 0
    assert plans(db) == 1
    tc = reply.frame["body"]["template_card"]
    assert tc["card_type"] == "button_interaction"
    (edit,) = [b for b in tc["button_list"] if b.get("type", 0) == 0]
    assert render.decode_key(edit["key"]) == ("plan.form", {})

    click, _ = fake.click("LiLei", edit["key"], tc["task_id"])
    (update,) = answered(fake, click)
    assert (update.frame["cmd"], update.errcode) == ("aibot_respond_update_msg", 0)
    body = update.frame["body"]
    assert body["response_type"] == "update_template_card" and body["userids"] == ["LiLei"]
    assert body["template_card"]["task_id"] == tc["task_id"]
    assert body["template_card"]["card_action"]["url"].startswith("http://planloop.test/p/")


def test_a_group_message_is_taken_as_a_command(fake, live, demo_team, db, services, platform):
    """The AI bot only receives what mentions it; the mention leads the text and is not the command."""
    fake.send_text("LiLei", "你好")  # LiLei's direct chat with the bot exists
    rid, _ = fake.send_text("LiLei", "@计划助手 写计划", chatid="wrGroup01")
    (reply,) = answered(fake, rid)
    assert reply.errcode == 0
    group_card = reply.frame["body"]
    assert "私聊" in str(group_card) and "/p/" not in str(group_card)  # no links in the group
    with db() as s:
        (row,) = s.scalars(select(OutboxMessage).where(OutboxMessage.channel == "user"))
    assert row.target == "LiLei" and row.card["form"]["action"] == "plan.submit"
    stats = Relay(services, name="A", policy=RelayPolicy(), rng=lambda: 0.5).run_once()  # the worker's relay
    assert stats.sent == 1
    # a card whose text is longer than the AI bot's card takes goes as its text, then the card
    *text_parts, push = fake.pushes
    assert all(p["msgtype"] == "markdown" and p["chatid"] == "LiLei" for p in text_parts)
    assert push["chatid"] == "LiLei" and push["template_card"]["card_type"] == "text_notice"
    assert push["template_card"]["card_action"]["url"] == row.card["form"]["link"]


def test_a_push_to_someone_who_never_talked_to_the_bot_is_refused(fake, live, platform):
    card = Card("进度提醒", blocks=(Markdown("本周计划还没提交"),), buttons=(Button("去填写", "plan.form"),))
    with pytest.raises(DeliveryError) as refused:
        platform.send(Outbound("o-1", "user", "HanMeimei", card))
    assert refused.value.code == str(ERR_NO_CONVERSATION) and not refused.value.retry


def test_a_push_without_the_connection_in_this_process_is_retried(platform):
    card = Card("进度提醒", blocks=(Markdown("本周计划还没提交"),), buttons=(Button("去填写", "plan.form"),))
    with pytest.raises(DeliveryError) as later:
        platform.send(Outbound("o-2", "user", "LiLei", card))
    assert later.value.code == "no_connection" and later.value.retry


def test_with_the_corp_app_a_card_without_callbacks_is_pushed_through_it(fake, services):
    """Someone who only wrote in a group has no direct chat with the AI bot: the private answer
    (the form's link, no callback buttons) goes through the corp app's message/send instead."""
    from bot.platforms.wecom_aibot import WeComAIBotPlatform
    from tests.fakes.wecom import FakeWeCom

    app = FakeWeCom().start()
    try:
        values = {"corp_id": app.corp_id, "agent_id": app.agent_id, "api_base": app.url}
        bot = stream_bot(fake, **values)
        bot = BotConfig(bot.id, bot.platform, bot.values, {**bot.secrets, "secret": Secret(app.secret)})
        platform = WeComAIBotPlatform(bot, services.platforms["wecom-main"].deps)
        link = Card(
            "填写本周计划",
            blocks=(Markdown("请在网页中填写"),),
            buttons=(Button("在网页中填写", url="http://planloop.test/p/x"),),
        )
        platform.send(Outbound("o-3", "user", "LiLei", link))
        (sent,) = app.sent
        assert (sent["touser"], sent["template_card"]["card_type"]) == ("LiLei", "text_notice")
        clickable = Card("进度提醒", blocks=(Markdown("还没提交"),), buttons=(Button("去填写", "plan.form"),))
        with pytest.raises(DeliveryError) as later:  # its click would go to the app's callback URL
            platform.send(Outbound("o-4", "user", "LiLei", clickable))
        assert later.value.code == "no_connection" and len(app.sent) == 1
    finally:
        app.stop()


def test_a_failure_while_handling_is_answered_with_a_clear_retry_hint(fake, client):
    def broken(inbound: Inbound) -> WebResponse:
        raise RuntimeError("database is down")

    running = start(client, broken)
    running.wait_connected()
    rid, _ = fake.send_text("LiLei", "写计划")
    (reply,) = answered(fake, rid)
    assert reply.errcode == 0 and "请稍后再发一次" in reply.frame["body"]["stream"]["content"]
    running.stop.set()
    assert running.wait_ended() is None


def test_entering_the_chat_gets_the_welcome(fake, live):
    rid = fake.enter_chat("LiLei")
    (reply,) = answered(fake, rid)
    assert (reply.frame["cmd"], reply.errcode) == ("aibot_respond_welcome_msg", 0)
    assert "写计划" in reply.frame["body"]["text"]["content"]


@pytest.mark.slow
def test_a_dropped_connection_loses_and_doubles_nothing(fake, client, demo_team, db, services, platform):
    """The plan is stored, then the network fails before the receipt goes out: the next
    connection pushes the receipt to the same chat; WeCom resending the message adds nothing."""
    drop_after = {"n": 1}

    def handle(inbound: Inbound) -> WebResponse:
        response = dispatch.process(services, platform, inbound)
        if drop_after["n"]:
            drop_after["n"] -= 1
            fake.drop()  # after the commit, before the reply
        return response

    first = start(client, handle)
    first.wait_connected()
    _, msgid = fake.send_text("LiLei", TEXT_PLAN)
    assert isinstance(first.wait_ended(), StreamError)
    assert plans(db) == 1

    second = start(client, handle)  # the supervisor's next attempt
    second.wait_connected()
    fake.wait(lambda: fake.pushes)
    fake.wait(lambda: fake.pushes[-1]["msgtype"] == "template_card")
    kinds = [p["msgtype"] for p in fake.pushes]  # a long receipt goes as its text, then the card
    assert kinds[-1] == "template_card" and set(kinds[:-1]) <= {"markdown"}
    assert {p["chatid"] for p in fake.pushes} == {"LiLei"}
    assert fake.pushes[-1]["template_card"]["card_type"] == "button_interaction"

    again, _ = fake.send_text("LiLei", TEXT_PLAN, msgid=msgid)  # the same message once more
    time.sleep(0.3)
    assert fake.replies(again) == [] and plans(db) == 1 and len(fake.pushes) == len(kinds)
    second.stop.set()
    assert second.wait_ended() is None


@pytest.mark.slow
def test_a_card_update_after_the_5_second_window_becomes_a_new_message(
    demo_team, db, services, platform, handle
):
    """The gateway takes an update only within its window (shortened here to 0.3 s)."""
    fake = FakeWeComAIBot(AIBOT, SECRET, update_window=0.3).start()
    try:
        bot = stream_bot(fake)
        client = build_stream(bot, platform.deps, platform)

        def slow(inbound: Inbound) -> WebResponse:
            if inbound.kind != "text":
                time.sleep(0.5)
            return handle(inbound)

        running = start(client, slow)
        running.wait_connected()
        rid, _ = fake.send_text("LiLei", TEXT_PLAN)
        tc = answered(fake, rid)[0].frame["body"]["template_card"]
        (edit,) = [b for b in tc["button_list"] if b.get("type", 0) == 0]
        click, _ = fake.click("LiLei", edit["key"], tc["task_id"])
        (late,) = answered(fake, click)
        assert late.errcode == ERR_EXPIRED
        fake.wait(lambda: fake.pushes)
        (push,) = fake.pushes
        assert push["chatid"] == "LiLei" and push["template_card"]["task_id"] != tc["task_id"]
        running.stop.set()
        assert running.wait_ended() is None
    finally:
        fake.stop()


def test_a_stream_entry_gets_the_ai_bot_adapter_which_takes_no_callbacks(platform, client):
    from bot.platforms.base import CaseInsensitiveDict, WebRequest
    from bot.platforms.wecom_aibot import WeComAIBotPlatform

    assert isinstance(platform, WeComAIBotPlatform) and platform.envelope is None
    answer = platform.parse(WebRequest("POST", "", {}, CaseInsensitiveDict(), b"<xml/>"), NOW)
    assert isinstance(answer, WebResponse) and answer.status == 404
    assert (client.bot_id, client.url.startswith("ws://127.0.0.1:")) == ("wecom-main", True)


def test_help_after_the_welcome_answers(fake, live, demo_team):
    rid, _ = fake.send_text("LiLei", "帮助")
    (reply,) = answered(fake, rid)
    assert reply.errcode == 0 and "写计划" in str(reply.frame["body"])


# ---------------------------------------------------------------- the adapter (pure)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
KEY = render.encode_key("plan.unlock", {"person": "lilei"})


def body(**extra: Any) -> dict[str, Any]:
    return {"msgid": "m1", "aibotid": AIBOT, "chattype": "single", "from": {"userid": "LiLei"}, **extra}


@pytest.mark.parametrize(
    ("cmd", "raw", "expected"),
    [
        (
            "aibot_msg_callback",
            body(msgtype="text", text={"content": " 写计划 "}),
            ("text", "LiLei", "dm", "写计划", "", {}, None),
        ),
        (
            "aibot_msg_callback",
            body(chattype="group", chatid="wrG", msgtype="text", text={"content": "@计划助手 @张伟 进度"}),
            ("text", "wrG", "group", "进度", "", {}, None),
        ),
        (
            "aibot_msg_callback",
            body(msgtype="voice", voice={"content": "写计划"}),
            ("text", "LiLei", "dm", "写计划", "", {}, None),
        ),
        (
            "aibot_msg_callback",
            body(
                msgtype="mixed",
                mixed={"msg_item": [{"msgtype": "image"}, {"msgtype": "text", "text": {"content": "进度"}}]},
            ),
            ("text", "LiLei", "dm", "进度", "", {}, None),
        ),
        (
            "aibot_event_callback",
            body(
                msgtype="event",
                event={
                    "eventtype": "template_card_event",
                    "template_card_event": {
                        "card_type": "button_interaction",
                        "event_key": KEY,
                        "task_id": "t-1",
                    },
                },
            ),
            ("action", "LiLei", "dm", "", "plan.unlock", {"person": "lilei"}, "t-1"),
        ),
        (
            "aibot_event_callback",
            body(
                msgtype="event",
                event={"eventtype": "template_card_event", "event_key": KEY, "task_id": "t-2"},
            ),
            ("action", "LiLei", "dm", "", "plan.unlock", {"person": "lilei"}, "t-2"),
        ),
        (
            "aibot_event_callback",
            body(
                msgtype="event",
                event={
                    "eventtype": "template_card_event",
                    "template_card_event": {
                        "card_type": "multiple_interaction",
                        "event_key": KEY,
                        "task_id": "t-3",
                        "selected_items": {
                            "selected_item": [{"question_key": "score", "option_ids": {"option_id": ["4"]}}]
                        },
                    },
                },
            ),
            ("form", "LiLei", "dm", "", "plan.unlock", {"person": "lilei", "score": "4"}, "t-3"),
        ),
    ],
)
def test_callbacks_become_neutral_inbounds(cmd, raw, expected):
    inbound = parse_callback("wecom-main", cmd, raw, NOW)
    assert inbound is not None
    got = (
        inbound.kind,
        inbound.chat,
        inbound.chat_type,
        inbound.text,
        inbound.action,
        dict(inbound.values),
        inbound.reply_handle,
    )
    assert got == expected
    assert (inbound.event_id, inbound.actor) == ("aibot:m1", "LiLei")


@pytest.mark.parametrize(
    ("cmd", "raw"),
    [
        ("aibot_msg_callback", body(msgtype="image", image={"url": "https://x"})),
        ("aibot_event_callback", body(msgtype="event", event={"eventtype": "enter_chat"})),
        ("aibot_event_callback", body(msgtype="event", event={"eventtype": "feedback_event"})),
    ],
)
def test_what_planloop_does_not_act_on_is_none(cmd, raw):
    assert parse_callback("wecom-main", cmd, raw, NOW) is None


@pytest.mark.parametrize("raw", [None, {"msgid": "m1"}, body(msgtype="text", text={"content": "x" * 4001})])
def test_malformed_callbacks_are_refused(raw):
    with pytest.raises(ValueError):
        parse_callback("wecom-main", "aibot_msg_callback", raw, NOW)


LONG = "\n".join(f"第{i}行：优化详情页首屏与主图，提升支付转化率" for i in range(12))


@pytest.mark.parametrize(
    ("card", "url", "msgtype", "card_type"),
    [
        (
            Card("已收到", blocks=(Markdown("好的"),), buttons=(Button("修改", "plan.form"),)),
            "",
            "template_card",
            "button_interaction",
        ),
        (
            Card("已收到", blocks=(Markdown(LONG),), buttons=(Button("修改", "plan.form"),)),
            "",
            "stream_with_template_card",
            "button_interaction",
        ),
        (
            Card("帮助", blocks=(Markdown("发送 写计划"),)),
            "http://planloop.test",
            "template_card",
            "text_notice",
        ),
        (Card("帮助", blocks=(Markdown("发送 写计划"),)), "", "stream", None),
    ],
)
def test_replies_use_what_the_ai_bot_accepts(card, url, msgtype, card_type):
    out = reply_body(card, task_id="pl-t1", fallback_url=url)
    assert out["msgtype"] == msgtype
    if card_type:
        assert out["template_card"]["card_type"] == card_type and out["template_card"]["task_id"] == "pl-t1"
    if "stream" in out:
        assert out["stream"]["finish"] is True and out["stream"]["content"]
        assert len(out["stream"]["content"].encode()) <= 20480


def test_an_update_of_a_toast_is_a_notice_titled_with_it():
    out = update_body(
        Card("", toast="已更新"), task_id="t-9", actor="LiLei", fallback_url="http://planloop.test"
    )
    assert out is not None
    tc = out["template_card"]
    assert (tc["card_type"], tc["main_title"]["title"], tc["task_id"]) == ("text_notice", "已更新", "t-9")
    assert update_body(Card("", toast="已更新"), task_id="t-9", actor="LiLei", fallback_url="") is None
