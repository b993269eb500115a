"""Feishu in stream mode: the long-connection client against the fake gateway, end to end.

The client's ``run`` is called directly in a thread (the supervisor's job, minus backoff), with
``handle`` = the one inbound path; the gateway speaks pbbp2 with lark-oapi's protobuf classes
and checks every answer frame the way Feishu would (tests/fakes/feishu_gateway.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
from sqlalchemy import func, select

from bot import dispatch
from bot.config import Secret, Settings
from bot.platforms import Deps
from bot.platforms.feishu_stream import FeishuStreamClient
from bot.platforms.stream import StreamAuthError, StreamError, build_stream
from storage.models import InboundEvent, OutboxMessage, Plan
from tests.conftest import TEST_KEY
from tests.fakes import feishu as ff
from tests.fakes.feishu_gateway import FakeGateway
from tests.stream_bots import feishu_stream_bot as stream_bot
from tests.test_feishu_e2e import fill, relay


@pytest.fixture
def fake(clock):
    server = ff.FakeFeishu(clock=clock)
    gateway = FakeGateway(ff.APP_ID, ff.APP_SECRET, ping_interval=1)
    server.gateway = gateway
    with server.running(), gateway.running():
        yield server


@pytest.fixture
def gateway(fake) -> FakeGateway:
    return fake.gateway


@pytest.fixture
def services(fake, engine, clock, demo_team):
    from bot.services import build_services

    settings = Settings(
        database_url="sqlite://",
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        bots=(stream_bot(fake.base_url),),
    )
    return build_services(settings, clock=clock, engine=engine, http=requests.Session())


@pytest.fixture
def lone(fake, clock):
    """Services without a database, for tests of the connection alone (no event is handled)."""
    from bot.services import build_services

    settings = Settings(database_url="sqlite://", bots=(stream_bot(fake.base_url),))
    return build_services(settings, clock=clock, http=requests.Session())


def client_for(services, bot=None) -> FeishuStreamClient:
    bot = bot or services.settings.bots[0]
    deps = Deps(http=services.http, clock=services.clock, sessions=services.sessions)
    client = build_stream(bot, deps, services.platforms[bot.id])
    assert isinstance(client, FeishuStreamClient)
    return client


@dataclass
class Running:
    """The client served in a thread; a broken connection is opened again, as the supervisor would."""

    client: FeishuStreamClient
    stop: threading.Event = field(default_factory=threading.Event)
    connected: int = 0
    errors: list[StreamError] = field(default_factory=list)
    thread: threading.Thread | None = None

    def on_connected(self) -> None:
        self.connected += 1


@pytest.fixture
def running(services, gateway) -> Iterator[Running]:
    started: list[Running] = []

    def start(client: FeishuStreamClient | None = None, retry: bool = True) -> Running:
        client = client or client_for(services)
        platform = services.platforms[client.bot_id]
        state = Running(client)

        def handle(inbound):
            return dispatch.process(services, platform, inbound)

        def loop() -> None:
            while not state.stop.is_set():
                try:
                    client.run(handle, state.stop, state.on_connected)
                except StreamError as exc:
                    state.errors.append(exc)
                    if isinstance(exc, StreamAuthError) or not retry:
                        return
                    state.stop.wait(0.05)

        state.thread = threading.Thread(target=loop, daemon=True)
        state.thread.start()
        started.append(state)
        return state

    yield start
    for state in started:
        state.stop.set()
        assert state.thread is not None
        state.thread.join(timeout=5)
        assert not state.thread.is_alive(), "run did not return after stop"
    assert gateway.problems == []


THREE_ROWS = {
    "item1_text": "优化详情页首屏",
    "item1_kpi": "conversion_rate",
    "item1_target": "+2%",
    "item2_text": "差评回访",
    "item2_kpi": "complaint_rate",
    "item2_target": "-10%",
    "item3_text": "主图测试",
    "item3_kpi": "ctr",
    "item3_target": "+0.5pp",
}


def say(gateway: FakeGateway, text: str, **kwargs):
    return gateway.push(ff.text_message(text, token="", **kwargs))


# --- end to end ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_plan_filed_by_form_card_over_the_long_connection(running, gateway, fake, services, db):
    state = running()
    gateway.wait_connected()

    # 1. 写计划 arrives as an event frame; the answer frame is a bare 200; the form goes out by API.
    ask = say(gateway, "写计划", open_id="ou_lilei", chat_type="p2p")
    assert gateway.wait(ask) == {"code": 200, "headers": {}}
    assert len(relay(services)) == 1
    [form_message] = fake.sent
    assert form_message.card["header"]["title"]["content"] == "填写本周计划 · 2026-W48"

    # 2. He submits the form; the card callback comes over the same connection.
    value, form_value = fill(form_message.card, THREE_ROWS)
    submit = gateway.push(
        ff.card_action(
            value, form_value=form_value, open_id="ou_lilei", message_id=form_message.message_id, token=""
        )
    )
    answer = gateway.wait(submit)

    # 3. The receipt travels back in the answer frame, inside Feishu's 3 seconds.
    assert answer["code"] == 200 and submit.answered_after < 3.0, answer
    assert answer["data"]["toast"]["type"] == "success"
    receipt = answer["data"]["card"]["data"]
    assert answer["data"]["card"]["type"] == "raw"
    assert receipt["header"]["title"]["content"] == "本周计划已提交 · 2026-W48"
    assert not any(e["tag"] == "form" for e in receipt["body"]["elements"])

    # 4. Stored, and the receipt also comes as his own message through the API.
    with db() as s:
        plan = s.scalar(select(Plan).where(Plan.person_id == "lilei"))
        assert (plan.week, plan.status) == ("2026-W48", "submitted")
        assert [(i.kpi_key, i.text) for i in plan.items] == [
            ("conversion_rate", "优化详情页首屏"),
            ("complaint_rate", "差评回访"),
            ("ctr", "主图测试"),
        ]
    assert len(relay(services)) == 1
    assert fake.sent[-1].card == receipt

    # 5. A button on the receipt: its callback is answered in the frame as well.
    buttons = [
        b
        for b in _walk(receipt)
        if b.get("tag") == "button" and b.get("behaviors", [{}])[0].get("type") == "callback"
    ]
    assert buttons, "the receipt has a callback button"
    click = gateway.push(
        ff.card_action(buttons[0]["behaviors"][0]["value"], open_id="ou_lilei", message_id="om_r", token="")
    )
    clicked = gateway.wait(click)
    assert clicked["code"] == 200 and clicked["data"]["card"]["type"] == "raw"
    assert state.connected == 1 and state.errors == []
    assert gateway.pings >= 1  # the client pinged with the service_id (the gateway checks it)


@pytest.mark.slow
def test_a_text_plan_and_a_split_payload(running, gateway, fake, services, db):
    running()
    gateway.wait_connected()
    text = "计划\n优化详情页首屏 支付转化率 +2pp\n差评回访 投诉率 -10%"
    pushed = gateway.push(ff.text_message(text, open_id="ou_lilei", token=""), parts=3)
    assert gateway.wait(pushed)["code"] == 200
    with db() as s:
        plan = s.scalar(select(Plan).where(Plan.person_id == "lilei"))
        assert [i.text for i in plan.items] == ["优化详情页首屏", "差评回访"]
    relay(services)
    assert fake.sent[-1].card["header"]["title"]["content"] == "本周计划已提交 · 2026-W48"


@pytest.mark.slow
def test_a_dropped_connection_loses_nothing_and_doubles_nothing(running, gateway, fake, services, db):
    state = running()
    gateway.wait_connected()
    ask = say(gateway, "写计划", open_id="ou_lilei")
    gateway.wait(ask)
    relay(services)
    value, form_value = fill(fake.sent[0].card, THREE_ROWS)

    # The submit is handled and committed, but the line breaks as its answer travels.
    gateway.lose_next_answers = 1
    submit = gateway.push(ff.card_action(value, form_value=form_value, open_id="ou_lilei", token=""))
    answer = gateway.wait(submit, timeout=15)  # pushed again on the next connection, and answered

    assert state.connected >= 2 and state.errors
    assert submit.deliveries >= 2
    assert answer["code"] == 200 and answer["data"]["toast"]["content"] == "已处理"  # the dedupe's answer
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 1
        assert s.scalar(select(func.count()).select_from(InboundEvent)) == 2  # 写计划 + one submit
    relay(services)
    receipts = [m for m in fake.sent if m.card["header"]["title"]["content"].startswith("本周计划已提交")]
    assert len(receipts) == 1

    # An event pushed while no connection is up arrives once the client is back.
    gateway.drop()
    later = say(gateway, "进度", open_id="ou_lilei")
    assert gateway.wait(later, timeout=15)["code"] == 200


@pytest.mark.parametrize(
    "mentions, handled",
    [
        ([ff.bot_mention(open_id="ou_hanmeimei", name="韩梅梅")], False),
        ([ff.bot_mention(open_id="ou_bot")], True),
    ],
)
def test_in_a_group_only_an_at_of_the_bot_is_a_command(running, gateway, fake, db, mentions, handled):
    running()
    gateway.wait_connected()
    # run() asked who the bot is before it opened the connection
    assert fake.requests.index(("GET", "/open-apis/bot/v3/info")) < fake.requests.index(
        ("POST", "/callback/ws/endpoint")
    )
    item = gateway.push(
        ff.text_message("@_user_1 进度", open_id="ou_lilei", chat_type="group", mentions=mentions, token="")
    )
    assert gateway.wait(item)["code"] == 200
    with db() as s:
        assert s.scalar(select(func.count()).select_from(InboundEvent)) == (1 if handled else 0)
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == (2 if handled else 0)


# --- connection set-up and failures ------------------------------------------------------------


def test_bad_credentials_stop_with_a_message_naming_what_to_fix(lone, fake, gateway):
    bot = ff.bot_config(fake.base_url, encrypt_key=None, verification_token=None, connection="stream")
    bot = type(bot)(bot.id, bot.platform, bot.values, {"app_secret": Secret("wrong-secret")})
    client = client_for(lone, bot)
    with pytest.raises(StreamAuthError) as caught:
        client.run(lambda inbound: None, threading.Event(), lambda: None)
    message = str(caught.value)
    assert "1000040345" in message and "app_secret" in message and "凭证与基础信息" in message
    assert caught.value.code == "1000040345"
    assert gateway.handshakes == 0


@pytest.mark.parametrize(
    "status, body, error, code, words",
    [
        (200, {"code": 1, "msg": "system busy"}, StreamError, "1", "system busy"),
        (200, {"code": 1000040343, "msg": "internal error"}, StreamError, "1000040343", "internal error"),
        (503, {"code": 1, "msg": "unavailable"}, StreamError, "http503", "HTTP 503 unavailable"),
        (200, {"code": 0, "msg": "ok", "data": {}}, StreamError, "no-url", "no URL"),
        (200, {"code": 10003, "msg": "invalid app_id"}, StreamAuthError, "10003", "invalid app_id"),
    ],
)
def test_discovery_answers_are_classified_like_the_sdk_does(lone, gateway, status, body, error, code, words):
    gateway.discovery_answer = (status, body)
    with pytest.raises(StreamError) as caught:
        client_for(lone).discover()
    assert type(caught.value) is error and caught.value.code == code
    assert words in str(caught.value)


def test_the_connection_limit_and_a_closing_gateway_are_retryable_errors(lone, gateway):
    gateway.max_connections = 0
    with pytest.raises(StreamError) as caught:
        client_for(lone).run(lambda inbound: None, threading.Event(), lambda: None)
    assert type(caught.value) is StreamError and caught.value.code == "1000040350"
    assert "50" in str(caught.value)


@pytest.mark.parametrize(
    "refusal, error, code, words",
    [
        (
            (401, "514", "exceed connection limit", "1000040350"),
            StreamError,
            "1000040350",
            "50 long connections",
        ),
        ((403, "403", "forbidden", ""), StreamAuthError, "403", "企业自建应用"),
        ((401, "514", "auth failed", "1000040351"), StreamError, "514", "auth failed"),
        ((500, "500", "internal error", ""), StreamError, "500", "internal error"),
        ((404, "", "not found", ""), StreamError, "http404", "HTTP 404"),
    ],
)
def test_handshake_refusals_are_classified_like_the_sdk_does(lone, gateway, refusal, error, code, words):
    gateway.refuse_handshake = refusal
    with pytest.raises(StreamError) as caught:
        client_for(lone).run(lambda inbound: None, threading.Event(), lambda: None)
    assert type(caught.value) is error and caught.value.code == code
    assert words in str(caught.value)


def test_a_pong_brings_a_new_ping_interval(running, services, gateway):
    state = running(client_for(services))
    gateway.wait_connected()
    gateway.client_config["PingInterval"] = 7
    deadline = time.monotonic() + 5
    while state.client.server_config.ping_interval != 7.0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.client.server_config.ping_interval == 7.0


def test_an_event_seen_by_webhook_is_not_applied_again_after_the_switch(services, fake, gateway, running, db):
    """Moving a bot from webhook to stream: Feishu may deliver an event on both; it counts once."""
    from bot.web.app import create_app

    webhook_bot = ff.bot_config(fake.base_url, connection="stream")  # keeps its webhook keys
    services.platforms[webhook_bot.id] = build_platform(webhook_bot, services)
    web = create_app(services.settings, services).test_client()
    event = ff.text_message("写计划", open_id="ou_lilei", event_id="ev-switch")
    posted = ff.deliver(event, now=services.clock())
    assert (
        web.post("/webhooks/feishu/feishu-main", data=posted.body, headers=posted.headers).status_code == 200
    )

    running()
    gateway.wait_connected()
    again = gateway.push({**event, "header": {**event["header"], "token": ""}})
    assert gateway.wait(again) == {"code": 200, "headers": {}}
    with db() as s:
        assert s.scalar(select(func.count()).select_from(InboundEvent)) == 1
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def build_platform(bot, services):
    from bot.platforms import build

    return build(bot, Deps(http=services.http, clock=services.clock, sessions=services.sessions))


def test_a_silent_gateway_is_noticed_after_a_ping(lone, gateway):
    gateway.answer_pongs = False
    client = client_for(lone)
    client.pong_timeout = 0.5
    started = time.monotonic()
    with pytest.raises(StreamError, match="no answer") as caught:
        client.run(lambda inbound: None, threading.Event(), lambda: None)
    assert caught.value.code == "pong-timeout" and time.monotonic() - started < 5
    assert gateway.pings >= 1


def test_stop_closes_cleanly_and_run_returns(lone, gateway):
    client = client_for(lone)
    stop, connected = threading.Event(), threading.Event()
    thread = threading.Thread(target=client.run, args=(lambda i: None, stop, connected.set), daemon=True)
    thread.start()
    assert connected.wait(5)
    gateway.wait_connected()
    assert client.server_config.ping_interval == 1.0  # the gateway's ClientConfig was taken
    stop.set()
    thread.join(timeout=3)
    assert not thread.is_alive()
    deadline = time.monotonic() + 3
    while gateway.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gateway.connections == []


def test_a_server_close_is_a_stream_error_with_its_code(lone, gateway):
    client = client_for(lone)
    connected = threading.Event()
    errors: list[StreamError] = []

    def serve() -> None:
        try:
            client.run(lambda i: None, threading.Event(), connected.set)
        except StreamError as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert connected.wait(5)
    gateway.wait_connected()
    gateway.close_all(1001, "server restart")
    thread.join(timeout=5)
    assert [e.code for e in errors] == ["1001"] and "server restart" in str(errors[0])


def test_legacy_card_frames_and_foreign_events_are_left_alone(running, gateway, db):
    running()
    gateway.wait_connected()
    gateway.push_legacy_card({"open_id": "ou_lilei", "action": {"value": {"action": "plan.open"}}})
    other = gateway.push(ff.v2("contact.user.created_v3", {"object": {}}))
    assert gateway.wait(other) == {"code": 200, "headers": {}}
    broken = gateway.push({"schema": "2.0", "header": {"event_type": "im.message.receive_v1"}, "event": {}})
    time.sleep(0.3)
    assert not broken.done.is_set()  # answered 400, not 200: nothing to redo, nothing stored
    with db() as s:
        assert s.scalar(select(func.count()).select_from(InboundEvent)) == 0
    gateway.pushed.pop(broken.message_id)  # stop the fake from pushing it again


def test_a_handler_failure_is_answered_500_and_redelivered(services, gateway, running, db, monkeypatch):
    calls: list[str] = []
    real = dispatch.process

    def flaky(svc, platform, inbound):
        calls.append(inbound.event_id)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(svc, platform, inbound)

    monkeypatch.setattr(dispatch, "process", flaky)
    gateway.answer_budget = 0.5  # the fake pushes a 500-answered event again after this
    running()
    gateway.wait_connected()
    item = say(gateway, "写计划", open_id="ou_lilei")
    assert gateway.wait(item, timeout=10)["code"] == 200
    assert len(calls) == 2 and calls[0] == calls[1] and item.deliveries == 2
    with db() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 1


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_the_fake_gateway_serves_lark_oapis_own_client(fake, gateway):
    """The official SDK's client against the fake: it connects, pings, gets an event and a card
    callback, and its answer frames pass the same checks as ours (the fake is not fitted to us)."""
    import asyncio

    import lark_oapi as lark
    from lark_oapi.event.callback.model.p2_card_action_trigger import P2CardActionTriggerResponse
    from lark_oapi.ws import client as ws_client

    seen: list[str] = []

    def on_card(data):
        seen.append(data.event.action.value["action"])
        return P2CardActionTriggerResponse({"toast": {"type": "info", "content": "ok"}})

    handler = (
        lark.EventDispatcherHandler.builder("", "")
        .register_p2_im_message_receive_v1(lambda data: seen.append(data.event.message.chat_id))
        .register_p2_card_action_trigger(on_card)
        .build()
    )
    sdk = ws_client.Client(
        ff.APP_ID, ff.APP_SECRET, event_handler=handler, domain=fake.base_url, auto_reconnect=False
    )
    loop = ws_client.loop
    done = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(sdk._connect())
        ping = loop.create_task(sdk._ping_loop())
        loop.run_until_complete(asyncio.to_thread(done.wait, 10))
        ping.cancel()
        loop.run_until_complete(sdk._disconnect())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        gateway.wait_connected()
        said = gateway.wait(gateway.push(ff.text_message("写计划", chat_id="oc_sdk", token=""), parts=2))
        clicked = gateway.wait(gateway.push(ff.card_action({"action": "plan.open"}, token="")))
    finally:
        done.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert said["code"] == 200 and "data" not in said
    assert clicked["code"] == 200 and clicked["data"] == {"toast": {"type": "info", "content": "ok"}}
    assert seen == ["oc_sdk", "plan.open"]
    assert gateway.pings >= 1 and gateway.problems == []


@pytest.mark.parametrize(
    "arrivals, joined",
    [
        ([("m", 1, 0, b"whole", 0.0)], [b"whole"]),
        ([("m", 3, 2, b"c", 0.0), ("m", 3, 0, b"a", 0.1), ("m", 3, 1, b"b", 0.2)], [None, None, b"abc"]),
        # two messages interleaved
        ([("x", 2, 1, b"2", 0.0), ("y", 2, 0, b"Y", 0.0), ("x", 2, 0, b"1", 0.1)], [None, None, b"12"]),
        # the rest came after the 5 s the SDKs wait: the old part is gone, the new one waits alone
        ([("m", 2, 0, b"a", 0.0), ("m", 2, 1, b"b", 5.5)], [None, None]),
    ],
)
def test_split_payloads_are_joined_by_message_id_and_seq(arrivals, joined):
    from bot.platforms.feishu_stream import _Parts

    parts = _Parts()
    assert [parts.join(*arrival) for arrival in arrivals] == joined


@pytest.mark.parametrize("total, seq", [(2, 2), (2, -1)])
def test_a_part_outside_its_message_is_refused(total, seq):
    from bot.platforms.base import BadRequest
    from bot.platforms.feishu_stream import _Parts

    with pytest.raises(BadRequest):
        _Parts().join("m", total, seq, b"x", 0.0)
