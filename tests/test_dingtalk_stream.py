"""DingTalk in Stream mode, end to end, with no inbound HTTP at all.

The fake gateway (tests/fakes/dingtalk_stream.py, built from the dingtalk-stream SDKs' source)
runs on real sockets: connections/open on the fake's HTTP app, then a websocket that pushes robot
messages and card clicks, expects an ack for each and delivers again what was not acknowledged.
The supervisor (bot/worker/streams.py) holds the connection as `planloop worker` does; the outbox is
delivered by the real relay to the fake's HTTP API.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests
from sqlalchemy import func, select

from bot.config import BotConfig, Secret
from bot.platforms import Deps
from bot.platforms.dingtalk import DingTalkPlatform
from bot.platforms.dingtalk_stream import DingTalkStream, ack
from bot.platforms.stream import StreamAuthError
from bot.services import build_services
from bot.worker import streams
from bot.worker.delivery import drain
from storage.models import InboundEvent, OutboxMessage, Plan
from tests.fakes.dingtalk import CARD_TOPIC, ROBOT_TOPIC, FakeDingTalk
from tests.stream_bots import dingtalk_stream_bot as stream_bot

BOT = "dingtalk-main"  # the bot id examples/team.toml names people on
LILEI = "0102"
PLAN = "写计划\n优化详情页首屏 支付转化率 +2%\n差评回访 投诉率 -10%"


@pytest.fixture
def fake(clock):
    server = FakeDingTalk(clock).start()
    server.stream()
    yield server
    server.stop()


def start(settings, engine, clock, fake, *, app_secret: str | None = None, **supervisor):  # noqa: ANN001, ANN201
    cfg = replace(settings, bots=(stream_bot(fake, app_secret),), simulator=False)
    services = build_services(cfg, clock=clock, engine=engine)
    options = {"lease_poll": 0.1, "base": 0.05, "cap": 0.2, **supervisor}
    supervisor_ = streams.Supervisor(services, **options)
    stop = threading.Event()
    supervisor_.start(stop)
    env = SimpleNamespace(services=services, supervisor=supervisor_, stop=stop, fake=fake, gw=fake.gateway)
    return env


@pytest.fixture
def env(settings, engine, clock, fake, demo_team):
    env = start(settings, engine, clock, fake)
    assert env.gw.wait_live(1), "the supervisor did not connect"
    yield env
    env.stop.set()
    env.supervisor.join(10)


def say(env, text: str, **options) -> str:  # noqa: ANN001
    """A robot message over the stream; returns the frame's messageId once it is acknowledged."""
    message_id = env.gw.push(ROBOT_TOPIC, env.fake.robot_message(text, sender=LILEI, **options))
    assert env.gw.wait_ack(message_id) is not None, "the frame was not acknowledged"
    return message_id


def count(env, model) -> int:  # noqa: ANN001
    with env.services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def deliver(env) -> None:  # noqa: ANN001
    drain(env.services, until_empty=True)


# ---------------------------------------------------------------- the protocol, piece by piece


def test_connection_is_opened_with_the_app_credentials_and_answers_pings(env):
    assert env.gw.opened == 1 and env.gw.connections == 1
    [echo] = env.gw.ping()
    assert json.loads(echo)["opaque"]  # the ping's data came back unchanged
    [state] = env.supervisor.states()
    assert (state.bot_id, state.platform, state.connected, state.holder) == (BOT, "dingtalk", True, True)
    assert env.gw.bad_acks == []


def test_text_plan_card_click_and_update_with_no_inbound_http(env):
    say(env, "写计划", conversation_type="1")
    deliver(env)
    [form] = env.fake.session_messages  # the form goes back on the message's session webhook
    assert "/p/" in json.dumps(form["body"], ensure_ascii=False)

    say(env, PLAN, conversation_type="1")
    assert count(env, Plan) == 1
    deliver(env)
    [(out_track_id, card)] = env.fake.cards.items()
    assert card["callbackType"] == "STREAM" and "callbackRouteKey" not in card
    params = card["cardData"]["cardParamMap"]
    assert "李雷" in params["markdown"] and "修改计划" in params["buttons"]

    answer = env.fake.click(out_track_id, 0, LILEI)  # 修改计划 -> the plan form, in place
    assert answer is not None
    updated = env.fake.cards[out_track_id]["cardData"]["cardParamMap"]
    assert updated["title"] != params["title"] and updated["form_link"]
    assert env.fake.card_updates == []  # the update travelled in the ack, not through the API
    assert count(env, InboundEvent) == 3 and count(env, Plan) == 1
    assert env.gw.pending == {} and env.gw.bad_acks == []


def test_a_group_message_that_does_not_at_the_robot_is_acknowledged_and_ignored(env):
    say(env, "写计划", conversation_type="2", at_bot=False)
    assert count(env, InboundEvent) == 0 and count(env, OutboxMessage) == 0
    say(env, "写计划", conversation_type="2")
    assert count(env, InboundEvent) == 1


def test_a_frame_that_can_never_be_taken_is_refused_not_redelivered_for_ever(env):
    message_id = env.gw.push(CARD_TOPIC, {"type": "actionCallback", "userId": LILEI, "content": "{broken"})
    answer = env.gw.wait_ack(message_id)
    assert answer is not None and answer["code"] == 400
    assert message_id not in env.gw.pending and count(env, InboundEvent) == 0


def test_gateway_disconnect_opens_a_new_connection(env):
    env.gw.ask_disconnect()
    assert env.gw.when(lambda: env.gw.connections == 2 and len(env.gw.live) == 1)
    say(env, "写计划", conversation_type="1")
    assert env.gw.opened == 2


def test_a_message_taken_over_http_before_the_switch_is_not_taken_again(env):
    from bot.web.app import create_app

    client = create_app(env.services.settings, env.services).test_client()
    headers, body = env.fake.robot_callback(PLAN, sender=LILEI, conversation_type="1", msg_id="msgSwitch1")
    assert client.post(f"/webhooks/dingtalk/{BOT}/robot", data=body, headers=headers).status_code == 200
    say(env, PLAN, conversation_type="1", msg_id="msgSwitch1")  # DingTalk redelivers it on the stream
    assert count(env, InboundEvent) == 1 and count(env, Plan) == 1 and count(env, OutboxMessage) == 1


# ---------------------------------------------------------------- failures


@pytest.mark.slow
def test_connection_dropped_mid_flow_loses_and_doubles_nothing(env):
    say(env, "写计划", conversation_type="1")
    env.gw.drop()  # the link fails
    pushed = [env.gw.push(ROBOT_TOPIC, env.fake.robot_message(PLAN, sender=LILEI, conversation_type="1"))]
    assert env.gw.when(lambda: env.gw.pending == {}), "the frame pushed while away was not delivered"
    # processed and committed, but the ack is lost: DingTalk delivers it again; dedupe absorbs it
    env.gw.lose_acks = 1
    msg = env.fake.robot_message("计划", sender=LILEI, conversation_type="1")
    pushed.append(env.gw.push(ROBOT_TOPIC, msg))
    assert env.gw.when(lambda: env.gw.lost_acks == 1 and env.gw.pending == {})
    assert all(env.gw.wait_ack(m) is not None for m in pushed)
    assert env.gw.connections == 3
    assert count(env, InboundEvent) == 3 and count(env, Plan) == 1
    with env.services.sessions() as session:
        keys = list(session.scalars(select(OutboxMessage.dedupe_key)))
    assert len(keys) == 3 == len(set(keys))  # one reply per message, none twice
    [state] = env.supervisor.states()
    assert state.reconnects == 2 and state.connected and "closed" in state.last_error


def test_refused_credentials_stop_after_a_few_tries_with_what_to_fix(settings, engine, clock, fake, caplog):
    caplog.set_level(logging.WARNING, "planloop.streams")
    env = start(settings, engine, clock, fake, app_secret="wrong-secret", auth_tries=3)
    env.supervisor.join(10)
    assert not env.supervisor.threads[0].is_alive()
    assert env.gw.opens_refused == 3 and env.gw.connections == 0
    [state] = env.supervisor.states()
    assert "InvalidAuthentication" in state.last_error and not state.connected
    final = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(final) == 1 and "app_secret" in final[0] and "stopped after 3" in final[0]
    env.stop.set()


def test_sigterm_stop_closes_after_the_frame_in_hand_is_acknowledged(env):
    say(env, "写计划", conversation_type="1")
    env.stop.set()
    env.supervisor.join(10)
    assert not any(t.is_alive() for t in env.supervisor.threads)
    assert env.gw.when(lambda: env.gw.live == {})
    assert env.gw.pending == {}
    [state] = env.supervisor.states()
    assert not state.connected and not state.holder


def test_health_and_metrics_show_each_stream_bot(env, clock):
    states = env.supervisor.states()
    [shown] = streams.health(states)
    assert shown["bot"] == BOT and shown["connected"] is True and shown["since"]
    text = streams.metrics_text(states, clock()).decode()
    assert f'planloop_stream_connected{{bot="{BOT}",platform="dingtalk"}} 1' in text
    assert f'planloop_stream_reconnects_total{{bot="{BOT}",platform="dingtalk"}} 0' in text


def test_the_worker_port_serves_the_stream_state(env):
    from bot.ops.metrics import start_worker_server

    server = start_worker_server(0, "127.0.0.1", engine=env.services.engine, streams=env.supervisor.states)
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        [shown] = requests.get(f"{base}/healthz", timeout=5).json()["streams"]
        assert (shown["bot"], shown["connected"], shown["holder"], shown["reconnects"]) == (
            BOT,
            True,
            True,
            0,
        )
        text = requests.get(f"{base}/metrics", timeout=5).text
        assert f'planloop_stream_holder{{bot="{BOT}",platform="dingtalk"}} 1' in text
        assert "planloop_outbox_pending" in text  # the existing gauges are still there
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------- pure pieces


@pytest.mark.parametrize(
    "failures, low, high", [(1, 0.5, 1.0), (2, 1.0, 2.0), (4, 4.0, 8.0), (7, 30.0, 60.0), (30, 30.0, 60.0)]
)
def test_backoff_doubles_with_jitter_and_is_capped_at_60_seconds(failures, low, high):
    waits = [streams.backoff(failures, rng=random.Random(seed)) for seed in range(50)]
    assert all(low <= w <= high for w in waits)
    assert len(set(waits)) > 40  # jittered: fifty workers do not come back at the same instant


def test_the_ack_has_the_sdk_shape():
    body = json.loads(ack("m1", data={"response": {"cardData": {"cardParamMap": {"a": "b"}}}}))
    assert body["code"] == 200 and body["message"] == "OK"
    assert body["headers"] == {"contentType": "application/json", "messageId": "m1"}
    assert json.loads(body["data"]) == {"response": {"cardData": {"cardParamMap": {"a": "b"}}}}


def test_a_wrong_secret_is_a_stream_auth_error_naming_the_keys(fake, clock):
    cfg = stream_bot(fake, "nope")
    deps = Deps(http=requests.Session(), clock=clock, sessions=None)  # type: ignore[arg-type]
    client = DingTalkStream(cfg, deps, DingTalkPlatform(cfg, deps))
    with pytest.raises(StreamAuthError) as caught:
        client.open_connection()
    assert "app_key" in str(caught.value) and "401" in caught.value.code


# ---------------------------------------------------------------- HTTP mode: the documented card route

ROUTE = "planloop-dingtalk-main"
CARD_SECRET = "card-callback-api-secret"


@pytest.fixture
def served(settings, engine, clock, fake, demo_team):
    """Webhook mode with the card callback route, the web app on a real port."""
    from werkzeug.serving import make_server

    from bot.web.app import create_app

    plain = {
        **stream_bot(fake).values,
        "connection": "webhook",
        "card_callback_route_key": ROUTE,
    }
    secrets = {"app_secret": Secret(fake.app_secret), "card_callback_secret": Secret(CARD_SECRET)}
    cfg = replace(settings, bots=(BotConfig(BOT, "dingtalk", plain, secrets),), simulator=False)
    services = build_services(cfg, clock=clock, engine=engine)
    server = make_server("127.0.0.1", 0, create_app(cfg, services), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}/webhooks/dingtalk/{BOT}"
    yield SimpleNamespace(services=services, base=base, fake=fake, adapter=services.platforms[BOT])
    server.shutdown()
    thread.join(5)


def test_http_card_route_end_to_end_signed_stale_and_replayed(served, clock):
    fake = served.fake
    # the registration `planloop doctor --fix` makes (tests/test_doctor.py drives --fix itself)
    registered = requests.post(
        f"{fake.url}/v1.0/card/callbacks/register",
        json={
            "callbackRouteKey": ROUTE,
            "callbackUrl": served.base + "/card",
            "apiSecret": CARD_SECRET,
            "forceUpdate": True,
        },
        headers={"x-acs-dingtalk-access-token": served.adapter.access_token()},
        timeout=5,
    )
    assert registered.status_code == 200, registered.text
    assert fake.callback_routes[ROUTE] == {"callbackUrl": served.base + "/card", "apiSecret": CARD_SECRET}

    headers, body = fake.robot_callback(PLAN, sender=LILEI, conversation_type="1")
    assert requests.post(served.base + "/robot", data=body, headers=headers, timeout=5).status_code == 200
    drain(served.services, until_empty=True)
    [(out_track_id, card)] = fake.cards.items()
    assert (card["callbackType"], card["callbackRouteKey"]) == ("HTTP", ROUTE)

    before = card["cardData"]["cardParamMap"]["title"]
    answer = fake.click(out_track_id, 0, LILEI)  # DingTalk POSTs the click to the registered URL
    assert answer is not None and answer["cardData"]["cardParamMap"]["form_link"]
    assert fake.cards[out_track_id]["cardData"]["cardParamMap"]["title"] != before
    assert fake.card_updates == []

    click = fake.action_callback(out_track_id, 0, LILEI)
    signed = fake.card_request(click, ROUTE)
    replies = [
        requests.post(served.base + "/card", data=signed[1], headers=signed[0], timeout=5) for _ in range(2)
    ]
    assert [r.status_code for r in replies] == [200, 200]
    assert "cardData" in replies[0].json() and replies[1].json() == {}  # the replay takes no effect
    forged = fake.card_request(click, ROUTE, secret="guessed")
    stale = fake.card_request(click, ROUTE, at=clock() - timedelta(hours=2))
    for headers, body in (forged, stale):
        assert requests.post(served.base + "/card", data=body, headers=headers, timeout=5).status_code == 401
    with served.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundEvent)) == 3  # plan, click, click
        assert session.scalar(select(func.count()).select_from(Plan)) == 1
