"""The DingTalk adapter against a fake DingTalk running on 127.0.0.1.

Inbound tests go through the Flask app (and so the database, on SQLite and PostgreSQL);
outbound tests drive ``DingTalkPlatform.send`` directly against the fake, which checks
tokens, signatures and payload shapes the way DingTalk does.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest
import requests
from sqlalchemy import func, select

from bot.config import BotConfig, Secret
from bot.platforms import Deps
from bot.platforms.base import DeliveryError, Outbound, RateLimit, SignatureError
from bot.platforms.dingtalk import (
    DingTalkPlatform,
    decode_handle,
    robot_key,
    sign_custom_robot_url,
    sign_robot,
    strip_mentions,
    verify_robot,
)
from cards.model import Button, Card, Field, Fields, Progress, Table
from handlers.registered import default_router
from handlers.router import Router
from storage.models import Identity, InboundEvent, OutboxMessage, Person, Team
from tests.fakes.dingtalk import FakeDingTalk, robot_sign

BOT = "dingtalk-main"
GROUP = "cidTeamOps=="
LILEI = "staff-lilei"
TEMPLATE = "tpl-planloop.schema"
ROUTE = "planloop-dingtalk-main"
CARD_SECRET = "card-callback-api-secret"


@pytest.fixture
def fake(clock):
    server = FakeDingTalk(clock).start()
    # what `POST /v1.0/card/callbacks/register` leaves behind (planloop doctor --fix registers it)
    server.callback_routes[ROUTE] = {"callbackUrl": "https://planloop.example/card", "apiSecret": CARD_SECRET}
    yield server
    server.stop()


def bot_config(fake: FakeDingTalk, **values: object) -> BotConfig:
    plain = {
        "app_key": fake.app_key,
        "robot_code": fake.robot_code,
        "api_base": fake.url,
        "oapi_base": fake.url,
        "card_template_id": TEMPLATE,
        "card_callback_route_key": ROUTE,
        **values,
    }
    secrets = {
        "app_secret": Secret(fake.app_secret),
        "token": Secret(fake.token),
        "aes_key": Secret(fake.aes_key),
        "card_callback_secret": Secret(CARD_SECRET),
    }
    return BotConfig(BOT, "dingtalk", plain, secrets)


def adapter_for(fake: FakeDingTalk, clock, **values: object) -> DingTalkPlatform:
    return DingTalkPlatform(
        bot_config(fake, **values), Deps(http=requests.Session(), clock=clock, sessions=None)
    )  # type: ignore[arg-type]


# ---------------------------------------------------------------- the router
# The real handlers (handlers/plans.py answers "写计划"), plus one test-only card action.


def make_router() -> Router:
    base = default_router()
    router = Router()
    router._commands = dict(base._commands)
    router._actions = dict(base._actions)
    router._fallback = base._fallback

    @router.action("progress.refresh")
    def refresh(event, ctx):
        return progress_card(0.84, week=event.values.get("week", "?"))

    return router


def progress_card(ratio: float, week: str = "2026-W48") -> Card:
    return Card(
        f"本周进度 {week}",
        blocks=(Progress("支付转化率", ratio, "3.00% → 3.06%"),),
        buttons=(Button("刷新进度", action="progress.refresh", value={"week": week}),),
    )


@pytest.fixture
def dt(settings, engine, clock, fake, db):
    from bot.services import build_services
    from bot.web.app import create_app

    cfg = replace(settings, bots=(bot_config(fake),), simulator=False)
    services = build_services(cfg, clock=clock, engine=engine)
    services.router = make_router()
    app = create_app(cfg, services)
    with db() as session, session.begin():
        session.add(Team(id="ops", name="运营组", leader_id="lilei", chat_bot=BOT, chat_id=GROUP))
        session.add(Person(id="lilei", name="李雷", team_id="ops", role="operations"))
        session.flush()
        session.add(Identity(bot_id=BOT, external_id=LILEI, person_id="lilei"))
    return SimpleNamespace(
        services=services,
        client=app.test_client(),
        adapter=services.platforms[BOT],
        fake=fake,
        db=db,
        clock=clock,
    )


def post_event(dt, args: dict[str, str], body: bytes):
    return dt.client.post(
        f"/webhooks/dingtalk/{BOT}?{urlencode(args)}", data=body, content_type="application/json"
    )


def post_robot(dt, headers: dict[str, str], body: bytes, sub: str = "robot"):
    return dt.client.post(f"/webhooks/dingtalk/{BOT}/{sub}", data=body, headers=headers)


def outbox_rows(dt) -> list[OutboxMessage]:
    with dt.db() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))


def event_count(dt) -> int:
    with dt.db() as session:
        return int(session.scalar(select(func.count()).select_from(InboundEvent)) or 0)


def deliver(dt, row: OutboxMessage):
    return dt.adapter.send(
        Outbound(row.id, row.channel, row.target, Card.from_dict(row.card), row.reply_handle)
    )


def assert_success_reply(fake: FakeDingTalk, response) -> None:
    assert response.status_code == 200
    reply = response.get_json()
    assert set(reply) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert fake.open_reply(reply) == "success"  # dingtalk-sdk checks the signature, then decrypts


# ---------------------------------------------------------------- event subscription


@pytest.mark.parametrize("legacy", [False, True], ids=["signature/timestamp", "msg_signature/timeStamp"])
def test_check_url_is_answered_with_encrypted_success(dt, legacy):
    args, body = dt.fake.event({"EventType": "check_url"}, legacy=legacy)
    assert_success_reply(dt.fake, post_event(dt, args, body))
    assert event_count(dt) == 0 and outbox_rows(dt) == []


def test_other_events_are_acknowledged_and_ignored(dt):
    args, body = dt.fake.event({"EventType": "user_add_org", "UserId": ["u1"], "CorpId": "dingcorp"})
    assert_success_reply(dt.fake, post_event(dt, args, body))
    assert outbox_rows(dt) == []


def test_a_signed_timestamp_59_minutes_old_is_accepted(dt):
    args, body = dt.fake.event({"EventType": "check_url"}, at=dt.clock() - timedelta(minutes=59))
    assert_success_reply(dt.fake, post_event(dt, args, body))


def _signed_raw(fake: FakeDingTalk, clock, encrypt: str) -> tuple[dict[str, str], bytes]:
    """A push whose signature is valid over an arbitrary ``encrypt`` value (dingtalk-sdk's signer)."""
    from dingtalk.crypto import _get_signature

    ts, nonce = str(int(clock().timestamp() * 1000)), "n0nce"
    args = {"signature": _get_signature(fake.token, ts, nonce, encrypt), "timestamp": ts, "nonce": nonce}
    return args, json.dumps({"encrypt": encrypt}).encode()


def _sealed_for(fake: FakeDingTalk, clock, plaintext: str, owner: str) -> tuple[dict[str, str], bytes]:
    from dingtalk.crypto import DingTalkCrypto

    ts = str(int(clock().timestamp() * 1000))
    sealed = DingTalkCrypto(fake.token, fake.aes_key, owner).encrypt_message(
        plaintext, nonce="abc", timestamp=ts
    )
    args = {"signature": sealed["msg_signature"], "timestamp": ts, "nonce": "abc"}
    return args, json.dumps({"encrypt": sealed["encrypt"]}).encode()


def _forged(fake, clock):
    args, body = fake.event({"EventType": "check_url"})
    return {**args, "signature": "0" * 40}, body


def _without(name):
    def make(fake, clock):
        args, body = fake.event({"EventType": "check_url"})
        return {k: v for k, v in args.items() if k != name}, body

    return make


EVENT_REJECTIONS = [
    ("forged signature", _forged, 401),
    ("stale timestamp", lambda f, c: f.event({"EventType": "check_url"}, at=c() - timedelta(hours=2)), 401),
    (
        "future timestamp",
        lambda f, c: f.event({"EventType": "check_url"}, at=c() + timedelta(minutes=61)),
        401,
    ),
    ("no signature", _without("signature"), 401),
    ("no nonce", _without("nonce"), 401),
    (
        "other app key inside",
        lambda f, c: _sealed_for(f, c, '{"EventType":"check_url"}', "dingotherapp"),
        400,
    ),
    ("broken base64", lambda f, c: _signed_raw(f, c, "%%%not-base64%%%"), 400),
    ("truncated ciphertext", lambda f, c: _signed_raw(f, c, base64.b64encode(b"x" * 20).decode()), 400),
    ("plaintext not JSON", lambda f, c: _sealed_for(f, c, "not json {", f.app_key), 400),
    ("plaintext a list", lambda f, c: _sealed_for(f, c, "[1, 2]", f.app_key), 400),
    ("body not JSON", lambda f, c: (f.event({"EventType": "check_url"})[0], b"{not json"), 400),
    ("body without encrypt", lambda f, c: (f.event({"EventType": "check_url"})[0], b'{"enc": "x"}'), 400),
    (
        "oversize body",
        lambda f, c: (f.event({"EventType": "check_url"})[0], b'{"encrypt": "' + b"A" * 70_000 + b'"}'),
        400,
    ),
]


@pytest.mark.parametrize(
    "make, status", [r[1:] for r in EVENT_REJECTIONS], ids=[r[0] for r in EVENT_REJECTIONS]
)
def test_event_rejections(dt, make, status):
    args, body = make(dt.fake, dt.clock)
    response = post_event(dt, args, body)
    assert response.status_code == status
    assert "error" in response.get_json()
    assert event_count(dt) == 0 and outbox_rows(dt) == []


def test_unknown_bot_is_404(dt):
    args, body = dt.fake.event({"EventType": "check_url"})
    response = dt.client.post(f"/webhooks/dingtalk/nobody?{urlencode(args)}", data=body)
    assert response.status_code == 404


def test_body_over_the_app_limit_is_413(dt):
    response = dt.client.post(f"/webhooks/dingtalk/{BOT}", data=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413


# ---------------------------------------------------------------- robot messages


def _robot_forged(fake, clock):
    headers, body = fake.robot_callback("写计划")
    return {**headers, "sign": robot_sign("not-the-secret", headers["timestamp"])}, body


def _robot_signed(fake, clock, body: bytes):
    ts = str(int(clock().timestamp() * 1000))
    return {"timestamp": ts, "sign": robot_sign(fake.app_secret, ts)}, body


def _robot_msg(**changes):
    def make(fake, clock):
        _, body = fake.robot_callback("写计划")
        msg = {**json.loads(body), **changes}
        msg = {k: v for k, v in msg.items() if v is not None}
        return _robot_signed(fake, clock, json.dumps(msg, ensure_ascii=False).encode())

    return make


ROBOT_REJECTIONS = [
    ("forged sign", _robot_forged, 401),
    ("stale timestamp", lambda f, c: f.robot_callback("写计划", at=c() - timedelta(hours=2)), 401),
    ("future timestamp", lambda f, c: f.robot_callback("写计划", at=c() + timedelta(hours=2)), 401),
    (
        "no sign header",
        lambda f, c: ({"timestamp": f.robot_callback("x")[0]["timestamp"]}, f.robot_callback("x")[1]),
        401,
    ),
    (
        "timestamp not a number",
        lambda f, c: ({"timestamp": "soon", "sign": robot_sign(f.app_secret, "soon")}, b"{}"),
        401,
    ),
    ("broken JSON", lambda f, c: _robot_signed(f, c, b'{"msgId": '), 400),
    ("not UTF-8", lambda f, c: _robot_signed(f, c, b"\xff\xfe{}"), 400),
    ("no msgId", _robot_msg(msgId=None), 400),
    ("bad conversationType", _robot_msg(conversationType="3"), 400),
    ("no sender", _robot_msg(senderStaffId=None, senderId=None), 400),
    ("text not a string", _robot_msg(text={"content": 5}), 400),
    ("oversize text", _robot_msg(text={"content": "计划\n" + "很长的计划 " * 1000}), 400),
]


@pytest.mark.parametrize(
    "make, status", [r[1:] for r in ROBOT_REJECTIONS], ids=[r[0] for r in ROBOT_REJECTIONS]
)
def test_robot_rejections(dt, make, status):
    headers, body = make(dt.fake, dt.clock)
    response = post_robot(dt, headers, body)
    assert response.status_code == status
    assert "error" in response.get_json()
    assert event_count(dt) == 0 and outbox_rows(dt) == []


def test_unknown_callback_path_is_400(dt):
    headers, body = dt.fake.robot_callback("写计划")
    assert post_robot(dt, headers, body, sub="outgoing").status_code == 400


def test_group_robot_message_sends_the_plan_form_privately_and_a_notice_to_the_group(dt):
    headers, body = dt.fake.robot_callback("@计划助手 写计划", conversation_type="2")
    response = post_robot(dt, headers, body)
    assert response.status_code == 200
    rows = outbox_rows(dt)
    assert sorted((r.channel, r.target) for r in rows) == [("chat", GROUP), ("user", LILEI)]
    private = next(r for r in rows if r.channel == "user")
    notice = next(r for r in rows if r.channel == "chat")
    assert private.card["form"]["action"] == "plan.submit" and private.card["form"]["link"]
    # the group's notice goes back on the message's session webhook and carries no link
    session_url = json.loads(body)["sessionWebhook"]
    assert decode_handle(notice.reply_handle)["session"] == session_url
    deliver(dt, notice)
    [sent] = dt.fake.session_messages
    assert sent["session"] == session_url.split("session=")[1]
    assert "/p/" not in json.dumps(sent["body"], ensure_ascii=False)

    deliver(dt, private)
    [dm] = dt.fake.user_messages
    assert dm["userIds"] == [LILEI]
    card = json.loads(dm["msgParam"])
    assert "2026-W48" in card["title"] and "李雷" in card["text"]
    # the form is a link to the signed web page for this person, plan page, this week
    token = card["singleURL"].rsplit("/p/", 1)[1]
    claims = dt.services.links.verify(token, dt.clock(), page="plan-form")
    assert (claims.person, claims.week) == ("lilei", "2026-W48")
    assert dt.fake.group_messages == []


def test_direct_message_reply_falls_back_to_the_api_when_the_session_webhook_expired(dt):
    headers, body = dt.fake.robot_callback(
        "写计划", conversation_type="1", session_valid_for=timedelta(minutes=1)
    )
    assert post_robot(dt, headers, body).status_code == 200
    [row] = outbox_rows(dt)
    assert (row.channel, row.target) == ("user", LILEI)

    deliver(dt, row)
    [sent] = dt.fake.user_messages
    assert sent["userIds"] == [LILEI] and sent["msgKey"] == "sampleActionCard"
    param = json.loads(sent["msgParam"])  # msgParam travels as a JSON string
    assert (
        dt.services.links.verify(param["singleURL"].rsplit("/p/", 1)[1], dt.clock(), page="plan-form").person
        == "lilei"
    )
    assert dt.fake.session_messages == []


def test_a_session_webhook_outside_dingtalk_is_never_used(dt):
    headers, body = dt.fake.robot_callback("写计划", msg_id="msgELSEWHERE")
    msg = {**json.loads(body), "sessionWebhook": "https://attacker.example/robot/sendBySession?session=x"}
    headers, body = _robot_signed(dt.fake, dt.clock, json.dumps(msg, ensure_ascii=False).encode())
    assert post_robot(dt, headers, body).status_code == 200
    [row] = [r for r in outbox_rows(dt) if r.channel == "chat"]  # the group's notice
    assert row.reply_handle is None
    deliver(dt, row)
    assert len(dt.fake.group_messages) == 1 and dt.fake.session_messages == []


def test_a_retried_robot_message_takes_effect_once(dt):
    headers, body = dt.fake.robot_callback("写计划", msg_id="msgSAME")
    assert post_robot(dt, headers, body).status_code == 200
    dt.clock.advance(seconds=20)
    headers, body = dt.fake.robot_callback("写计划", msg_id="msgSAME")
    second = post_robot(dt, headers, body)
    assert second.status_code == 200
    # one effect: the private answer and the group's notice, once each
    assert sorted(r.channel for r in outbox_rows(dt)) == ["chat", "user"] and event_count(dt) == 1


def test_an_unknown_sender_is_told_so(dt):
    headers, body = dt.fake.robot_callback("写计划", sender="staff-stranger", conversation_type="1")
    assert post_robot(dt, headers, body).status_code == 200
    [row] = outbox_rows(dt)
    assert row.card["title"] == "未加入团队" and "staff-stranger" in row.card["blocks"][0]["text"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("@计划助手 写计划", "写计划"),
        (" 写计划 ", "写计划"),
        (
            "@计划助手\n计划\n优化详情页 支付转化率 +2pp @双11主会场",
            "计划\n优化详情页 支付转化率 +2pp @双11主会场",
        ),
        ("@a @b 进度", "进度"),
        ("写计划 @someone", "写计划 @someone"),
    ],
)
def test_leading_mentions_are_stripped(text, expected):
    assert strip_mentions(text) == expected


# ---------------------------------------------------------------- card callbacks


def post_card(dt, headers: dict[str, str], body: bytes):
    return dt.client.post(f"/webhooks/dingtalk/{BOT}/card", data=body, headers=headers)


def test_card_action_is_answered_with_the_card_update(dt):
    adapter = dt.adapter
    result = adapter.send(Outbound("m-1", "chat", GROUP, progress_card(0.83)))
    out_track_id = result.platform_message_id
    delivered = dt.fake.cards[out_track_id]
    assert delivered["openSpaceId"] == f"dtv1.card//IM_GROUP.{GROUP}"
    assert (delivered["callbackType"], delivered["callbackRouteKey"]) == ("HTTP", ROUTE)
    assert all(isinstance(v, str) for v in delivered["cardData"]["cardParamMap"].values())
    assert "83%" in delivered["cardData"]["cardParamMap"]["markdown"]

    headers, body = dt.fake.card_request(dt.fake.action_callback(out_track_id, 0, LILEI), ROUTE)
    response = post_card(dt, headers, body)
    assert response.status_code == 200
    answer = response.get_json()
    params = answer["cardData"]["cardParamMap"]
    assert "84%" in params["markdown"] and "2026-W48" in params["title"]
    assert all(isinstance(v, str) for v in params.values())
    assert answer["cardUpdateOptions"] == {"updateCardDataByKey": False, "updatePrivateDataByKey": False}
    # the update travels in the answer: nothing queued, no update API call while answering
    assert outbox_rows(dt) == [] and dt.fake.card_updates == []
    assert event_count(dt) == 1


def test_a_replayed_card_callback_takes_effect_once(dt):
    result = dt.adapter.send(Outbound("m-2", "user", LILEI, progress_card(0.5)))
    headers, body = dt.fake.card_request(dt.fake.action_callback(result.platform_message_id, 0, LILEI), ROUTE)
    first, again = post_card(dt, headers, body), post_card(dt, headers, body)
    assert first.status_code == again.status_code == 200
    assert "cardData" in first.get_json() and again.get_json() == {}
    assert event_count(dt) == 1


def test_the_same_button_clicked_later_is_a_new_event(dt):
    result = dt.adapter.send(Outbound("m-2b", "user", LILEI, progress_card(0.5)))
    click = dt.fake.action_callback(result.platform_message_id, 0, LILEI)
    post_card(dt, *dt.fake.card_request(click, ROUTE))
    post_card(dt, *dt.fake.card_request(click, ROUTE, at=dt.clock() + timedelta(seconds=5)))
    assert event_count(dt) == 2


def test_a_card_click_in_the_event_subscription_is_not_taken(dt):
    # DingTalk never sends clicks there; one that did arrive would not be a signed card callback
    result = dt.adapter.send(Outbound("m-2c", "user", LILEI, progress_card(0.5)))
    args, body = dt.fake.event(dt.fake.action_callback(result.platform_message_id, 0, LILEI))
    assert_success_reply(dt.fake, post_event(dt, args, body))
    assert event_count(dt) == 0 and outbox_rows(dt) == []


def _card_click(**changes):
    def make(fake, clock):
        out = next(iter(fake.cards))
        options = dict(changes)
        body = {**fake.action_callback(out, 0, LILEI), **options.pop("body", {})}
        return fake.card_request(body, ROUTE, **options)

    return make


def _card_headers(**replace_headers):
    def make(fake, clock):
        headers, body = _card_click()(fake, clock)
        return {**headers, **replace_headers}, body

    return make


def _card_without(name):
    def make(fake, clock):
        headers, body = _card_click()(fake, clock)
        return {k: v for k, v in headers.items() if k != name}, body

    return make


CARD_REJECTIONS = [
    ("signed with another secret", _card_click(secret="not-the-api-secret"), 401),
    (
        "signature of another timestamp",
        _card_headers(**{"x-ddpaas-signature-timestamp": "1795000000000"}),
        401,
    ),
    ("stale timestamp", lambda f, c: _card_click(at=c() - timedelta(hours=2))(f, c), 401),
    ("future timestamp", lambda f, c: _card_click(at=c() + timedelta(minutes=61))(f, c), 401),
    ("no signature", _card_without("x-ddpaas-signature"), 401),
    ("no timestamp", _card_without("x-ddpaas-signature-timestamp"), 401),
    ("content broken JSON", _card_click(body={"content": "{broken"}), 400),
    ("content not a string", _card_click(body={"content": 42}), 400),
    (
        "no action",
        _card_click(body={"content": json.dumps({"cardPrivateData": {"actionIds": [], "params": {}}})}),
        400,
    ),
    ("no userId", _card_click(body={"userId": ""}), 400),
    ("another callback type", _card_click(body={"type": "dynamicDataSource"}), 400),
    ("body not JSON", lambda f, c: (_card_click()(f, c)[0], b"{not json"), 400),
]


@pytest.mark.parametrize(
    "make, status", [r[1:] for r in CARD_REJECTIONS], ids=[r[0] for r in CARD_REJECTIONS]
)
def test_card_callback_rejections(dt, make, status):
    dt.adapter.send(Outbound("m-r", "user", LILEI, progress_card(0.5)))
    headers, body = make(dt.fake, dt.clock)
    response = post_card(dt, headers, body)
    assert response.status_code == status
    assert "error" in response.get_json()
    assert event_count(dt) == 0 and outbox_rows(dt) == []


def test_without_a_card_callback_secret_clicks_are_refused(settings, engine, clock, fake, db):
    from bot.services import build_services
    from bot.web.app import create_app

    cfg = bot_config(fake)
    cfg = BotConfig(
        cfg.id,
        cfg.platform,
        cfg.values,
        {k: v for k, v in cfg.secrets.items() if k != "card_callback_secret"},
    )
    services = build_services(replace(settings, bots=(cfg,), simulator=False), clock=clock, engine=engine)
    client = create_app(replace(settings, bots=(cfg,), simulator=False), services).test_client()
    services.platforms[BOT].send(Outbound("m-s", "user", LILEI, progress_card(0.5)))
    headers, body = fake.card_request(fake.action_callback(next(iter(fake.cards)), 0, LILEI), ROUTE)
    response = client.post(f"/webhooks/dingtalk/{BOT}/card", data=body, headers=headers)
    assert response.status_code == 401
    assert "card_callback_secret" in response.get_json()["error"]


def test_card_signature_matches_the_documented_recipe():
    # DingTalk's 事件回调 page: Base64(HmacSHA256(key=apiSecret, msg=str(ts)))
    from bot.platforms.dingtalk import sign_card_callback, verify_card_callback
    from tests.fakes.dingtalk import card_signature

    assert sign_card_callback("mySecret", "1795000000000") == card_signature("mySecret", "1795000000000")
    at = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)
    stamp = str(int(at.timestamp() * 1000))
    verify_card_callback("mySecret", stamp, card_signature("mySecret", stamp), at)
    with pytest.raises(SignatureError):
        verify_card_callback("mySecret", stamp, card_signature("other", stamp), at)


def test_card_values_arrive_as_strings_and_the_chat_is_the_space():
    cfg = BotConfig(BOT, "dingtalk", {"app_key": "k"}, {"app_secret": Secret("s")})
    adapter = DingTalkPlatform(cfg, Deps(http=requests.Session(), clock=lambda: None, sessions=None))  # type: ignore[arg-type]
    content = {
        "cardPrivateData": {
            "actionIds": ["btn"],
            "params": {"action": "plan.confirm", "value": '{"n": 3}', "note": True},
        }
    }
    event = {
        "type": "actionCallback",
        "userId": "u1",
        "outTrackId": "t9",
        "spaceType": "IM_GROUP",
        "spaceId": "cidX",
        "content": json.dumps(content),
    }
    inbound = adapter.card_inbound(event, None, "http:1")  # type: ignore[arg-type]
    assert (inbound.kind, inbound.action, dict(inbound.values)) == (
        "form",
        "plan.confirm",
        {"n": "3", "note": "true"},
    )
    assert (inbound.chat, inbound.chat_type, inbound.actor) == ("cidX", "group", "u1")


# ---------------------------------------------------------------- outbound


def test_card_to_one_person_uses_the_robot_space(fake, clock):
    adapter = adapter_for(fake, clock)
    adapter.send(Outbound("m-3", "user", LILEI, progress_card(0.2)))
    [card] = fake.cards.values()
    assert card["openSpaceId"] == f"dtv1.card//IM_ROBOT.{LILEI}"
    assert card["imRobotOpenDeliverModel"]["spaceType"] == "IM_ROBOT"


def test_group_card_mentions_go_in_at_user_ids(fake, clock):
    adapter = adapter_for(fake, clock)
    adapter.send(Outbound("m-4", "chat", GROUP, replace(progress_card(0.2), mentions=(LILEI,))))
    [card] = fake.cards.values()
    # no database here, so no name: the id stands in for it (tests/test_dingtalk_mentions.py has names)
    assert card["imGroupOpenDeliverModel"]["atUserIds"] == {LILEI: LILEI}
    assert card["cardAtUserIds"] == [LILEI]
    assert f"<a atId={LILEI}>@{LILEI}</a>" in card["cardData"]["cardParamMap"]["markdown"]


def test_without_a_card_template_callback_buttons_are_dropped_not_the_message(fake, clock):
    adapter = adapter_for(fake, clock, card_template_id="")
    adapter.send(Outbound("m-5", "chat", GROUP, progress_card(0.3)))
    [sent] = fake.group_messages
    assert sent["msgKey"] == "sampleMarkdown" and "30%" in json.loads(sent["msgParam"])["text"]
    assert fake.cards == {}


def test_access_token_is_cached_and_refreshed_early(fake, clock):
    adapter = adapter_for(fake, clock, card_template_id="")
    for n in range(3):
        adapter.send(Outbound(f"t-{n}", "chat", GROUP, Card("周报")))
    assert fake.tokens_issued == 1
    clock.advance(seconds=7200 - 9 * 60)  # nine minutes before expiry: inside the early window
    adapter.send(Outbound("t-3", "chat", GROUP, Card("周报")))
    assert fake.tokens_issued == 2 and len(fake.group_messages) == 4


def test_a_revoked_token_is_replaced_once_on_401(fake, clock):
    adapter = adapter_for(fake, clock, card_template_id="")
    adapter.send(Outbound("r-1", "chat", GROUP, Card("周报")))
    fake.revoke_tokens()
    adapter.send(Outbound("r-2", "chat", GROUP, Card("周报")))
    assert fake.tokens_issued == 2 and len(fake.group_messages) == 2
    assert fake.calls["/v1.0/robot/groupMessages/send"] == 3  # 200, 401, 200


def test_concurrent_sends_fetch_one_token(fake, clock):
    adapter = adapter_for(fake, clock, card_template_id="")
    errors: list[Exception] = []

    def go(n: int) -> None:
        try:
            adapter.send(Outbound(f"c-{n}", "user", f"u{n}", Card("提醒")))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and fake.tokens_issued == 1 and len(fake.user_messages) == 8


API_FAILURES = [
    (
        "qps limit",
        403,
        {"code": "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"},
        {},
        True,
        1.0,
        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
    ),
    ("legacy qps 90018", 200, {"errcode": 90018, "errmsg": "qps"}, {}, True, 1.0, "90018"),
    ("server error", 500, {"code": "ServiceUnavailable"}, {}, True, None, "ServiceUnavailable"),
    ("bad gateway", 502, {}, {}, True, None, "502"),
    (
        "bad parameter",
        400,
        {"code": "invalidParameter.openConversationId", "message": "群不存在"},
        {},
        False,
        None,
        "invalidParameter.openConversationId",
    ),
    (
        "forbidden",
        403,
        {"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied"},
        {},
        False,
        None,
        "Forbidden.AccessDenied.AccessTokenPermissionDenied",
    ),
]


@pytest.mark.parametrize(
    "status, body, _h, retry, retry_after, code",
    [r[1:] for r in API_FAILURES],
    ids=[r[0] for r in API_FAILURES],
)
def test_api_failures_are_classified(fake, clock, status, body, _h, retry, retry_after, code):
    adapter = adapter_for(fake, clock, card_template_id="")
    fake.fail_next("/v1.0/robot/groupMessages/send", status, body)
    with pytest.raises(DeliveryError) as info:
        adapter.send(Outbound("f-1", "chat", GROUP, Card("周报")))
    assert (info.value.retry, info.value.retry_after, info.value.code) == (retry, retry_after, code)
    adapter.send(Outbound("f-1", "chat", GROUP, Card("周报")))  # the retry goes through
    assert len(fake.group_messages) == 1


def test_a_timeout_on_a_robot_message_is_an_unknown_outcome_not_a_blind_retry(fake, clock):
    """groupMessages/send has no idempotency key: the message may be in the group already."""
    adapter = adapter_for(fake, clock, card_template_id="", timeout=0.2)
    fake.fail_next("/v1.0/robot/groupMessages/send", 200, {"processQueryKey": "late"}, delay=1.0)
    with pytest.raises(DeliveryError) as info:
        adapter.send(Outbound("to-1", "chat", GROUP, Card("周报")))
    assert (info.value.retry, info.value.code) == (False, "outcome_unknown")


def test_unreachable_dingtalk_is_retried_later(clock):
    cfg = BotConfig(
        BOT, "dingtalk", {"app_key": "k", "api_base": "http://127.0.0.1:9"}, {"app_secret": Secret("s")}
    )
    adapter = DingTalkPlatform(cfg, Deps(http=requests.Session(), clock=clock, sessions=None))  # type: ignore[arg-type]
    with pytest.raises(DeliveryError) as info:
        adapter.send(Outbound("x", "chat", GROUP, Card("周报")))
    assert (info.value.retry, info.value.code) == (True, "network")


def test_a_wrong_app_secret_gives_up_with_the_code(fake, clock):
    cfg = replace(bot_config(fake), secrets={"app_secret": Secret("wrong")})
    adapter = DingTalkPlatform(cfg, Deps(http=requests.Session(), clock=clock, sessions=None))  # type: ignore[arg-type]
    with pytest.raises(DeliveryError) as info:
        adapter.send(Outbound("x", "chat", GROUP, Card("周报")))
    assert (info.value.retry, info.value.code) == (False, "invalidClientIdOrSecret")


# ---------------------------------------------------------------- the custom group robot

SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd"


def monday_summary() -> Card:
    return Card(
        "周一汇总 2026-W48",
        blocks=(
            Fields((Field("已提交", "3/4"), Field("未提交", "韩梅梅"))),
            Table(("成员", "计划项", "上周完成度"), (("李雷", "3", "92%"), ("韩梅梅", "0", "—"))),
        ),
        buttons=(Button("查看详情", url="https://plan.example.com/p/abc"),),
        mentions=(LILEI,),
    )


def webhook(url: str, secret: str, card: Card | None = None, n: int = 0) -> Outbound:
    return Outbound(
        f"w-{n}",
        "webhook",
        "ops",
        card or monday_summary(),
        extra={"allow_private": "true", "url": url, "secret": secret},
    )


def test_monday_summary_reaches_the_group_through_the_signed_custom_robot(fake, clock):
    url = fake.add_robot(SECRET)
    adapter_for(fake, clock).send(webhook(url, SECRET))
    [sent] = fake.robot_messages
    assert sent["body"]["msgtype"] == "markdown"  # mentions need markdown: an ActionCard cannot @
    text = sent["body"]["markdown"]["text"]
    assert "李雷" in text and "92%" in text and "https://plan.example.com/p/abc" in text
    assert sent["mentioned"] == [LILEI]  # in atUserIds AND written as @id in the text


def test_custom_robot_signature_matches_dingtalks_recipe():
    # the published recipe: quote_plus(base64(hmac_sha256(secret, f"{ts}\n{secret}")))
    import hashlib
    import hmac
    from urllib.parse import parse_qs, quote_plus, urlsplit

    ts = "1700000000000"
    url = sign_custom_robot_url("https://oapi.dingtalk.com/robot/send?access_token=abc", SECRET, ts)
    query = parse_qs(urlsplit(url).query)
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert query == {"access_token": ["abc"], "timestamp": [ts], "sign": [expected]}
    assert url.split("sign=")[1] == quote_plus(expected)  # URL-encoded in the query, as the recipe says
    assert (
        sign_custom_robot_url("https://x/robot/send?access_token=abc", "keyword-only", ts)
        == "https://x/robot/send?access_token=abc"
    )


def test_a_robot_without_signing_is_sent_unsigned(fake, clock):
    url = fake.add_robot("")
    adapter_for(fake, clock).send(webhook(url, "关键词"))
    assert len(fake.robot_messages) == 1


@pytest.mark.parametrize(
    "secret_used, code",
    [("SECwrong", "310000"), (SECRET + "x", "310000")],
    ids=["other secret", "near miss"],
)
def test_a_wrong_robot_secret_gives_up_with_the_code(fake, clock, secret_used, code):
    url = fake.add_robot(SECRET)
    with pytest.raises(DeliveryError) as info:
        adapter_for(fake, clock).send(webhook(url, secret_used))
    assert (info.value.retry, info.value.code) == (False, code)


def test_130101_stops_sending_to_that_robot_for_ten_minutes(fake, clock):
    url, other = fake.add_robot(SECRET), fake.add_robot(SECRET)
    adapter = adapter_for(fake, clock)
    fake.fail_next("/robot/send", 200, {"errcode": 130101, "errmsg": "send too fast"})
    with pytest.raises(DeliveryError) as info:
        adapter.send(webhook(url, SECRET))
    assert (info.value.retry, info.value.retry_after, info.value.code) == (True, 600.0, "130101")
    calls = fake.calls["/robot/send"]
    clock.advance(seconds=300)
    with pytest.raises(DeliveryError) as info:
        adapter.send(webhook(url, SECRET))
    assert (
        info.value.retry_after == pytest.approx(300.0) and fake.calls["/robot/send"] == calls
    )  # not even tried
    adapter.send(webhook(other, SECRET))  # another robot is not affected
    clock.advance(seconds=301)
    adapter.send(webhook(url, SECRET))
    assert len(fake.robot_messages) == 2


def test_robot_limits_key_on_the_url_never_the_secret(fake, clock):
    adapter = adapter_for(fake, clock)
    url = "https://oapi.dingtalk.com/robot/send?access_token=tok"
    [limit] = adapter.limits(webhook(url, SECRET))
    assert limit.key == robot_key(url) and SECRET not in limit.key and "tok" not in limit.key
    assert limit.count / limit.per_seconds * 60 <= 20
    [app_limit] = adapter.limits(Outbound("a", "chat", GROUP, Card("x")))
    assert app_limit.count / app_limit.per_seconds <= 20


def _bucket_burst(adapter, fake, clock, limit: RateLimit, messages: int) -> list[DeliveryError]:
    """Send ``messages`` through a token bucket (burst = count, refill count/per) on the fake clock,
    the way a relay honouring ``limits()`` would; return the failures."""
    url = fake.add_robot(SECRET)
    tokens, failures = float(limit.count), []
    rate = limit.count / limit.per_seconds
    for n in range(messages):
        if tokens < 1:
            wait = (1 - tokens) / rate
            clock.advance(seconds=wait)
            tokens = 1.0
        tokens -= 1
        try:
            adapter.send(webhook(url, SECRET, Card(f"第 {n + 1} 条"), n))
        except DeliveryError as exc:
            failures.append(exc)
    return failures


def _relay_burst(adapter, fake, clock, messages: int, *, lag: float) -> list[DeliveryError]:
    """Send ``messages`` the way the relay paces them (``TokenBuckets``: no window of
    ``per_seconds`` holds more than ``count`` tokens), the first two of every other burst arriving
    ``lag`` seconds after their token (DingTalk counts arrivals), so that the next burst, on
    time, meets them; return the failures."""
    from bot.worker.delivery import TokenBuckets

    url = fake.add_robot(SECRET)
    limits = adapter.limits(webhook(url, SECRET))
    buckets, failures = TokenBuckets(), []
    held: list[tuple[datetime, Outbound]] = []  # sent late, before the next burst's tokens
    in_burst, bursts = 0, 0
    for n in range(messages):
        now = clock().timestamp()
        wait = buckets.acquire(limits, now)
        if wait > 0:
            for due, late in held:
                clock.set(due)
                _send(adapter, late, failures)
            held = []
            clock.set(datetime.fromtimestamp(now + wait, UTC))
            assert buckets.acquire(limits, clock().timestamp()) == 0
            in_burst, bursts = 0, bursts + 1
        message = webhook(url, SECRET, Card(f"第 {n + 1} 条"), n)
        if lag and bursts % 2 == 0 and in_burst < 2:
            held.append((clock() + timedelta(seconds=lag), message))
        else:
            _send(adapter, message, failures)
        in_burst += 1
    for due, late in held:
        clock.set(due)
        _send(adapter, late, failures)
    return failures


def _send(adapter, message: Outbound, failures: list[DeliveryError]) -> None:
    try:
        adapter.send(message)
    except DeliveryError as exc:
        failures.append(exc)


@pytest.mark.parametrize("lag", [0.0, 3.9])
def test_a_burst_of_100_paced_as_the_relay_paces_it_never_trips_the_throttle(fake, clock, lag):
    adapter = adapter_for(fake, clock)
    start = clock()
    assert _relay_burst(adapter, fake, clock, 100, lag=lag) == []
    assert len(fake.robot_messages) == 100
    assert [r.throttled for r in fake.robots.values()] == [0]
    # in bursts of 19 a 64 s: the 96th to 100th go at 5 × 64 s
    assert clock() - start == timedelta(seconds=5 * 64)


def test_sends_lagging_their_tokens_by_more_than_the_windows_room_would_trip_it(fake, clock):
    # the control: 64 s leaves 4 s of room; two sends of a burst arriving 4.5 s late meet the
    # next burst inside one minute, and the 20th arrival in it is refused
    adapter = adapter_for(fake, clock)
    failures = _relay_burst(adapter, fake, clock, 40, lag=4.5)
    assert failures and failures[0].code == "130101"


def test_the_naive_20_per_60_bucket_would_trip_it(fake, clock):
    # Why limits() is not RateLimit(key, 20, 60): a full bucket plus a minute of refill is 40.
    adapter = adapter_for(fake, clock)
    failures = _bucket_burst(adapter, fake, clock, RateLimit("naive", 20, 60), 100)
    assert failures and failures[0].code == "130101"


def test_robot_verifier_is_pure_and_has_a_twin(clock):
    ts = str(int(clock().timestamp() * 1000))
    verify_robot("s3cret", ts, sign_robot("s3cret", ts), clock())
    assert sign_robot("s3cret", ts) == robot_sign("s3cret", ts)  # the fake's independent recipe
    with pytest.raises(SignatureError):
        verify_robot("s3cret", ts, sign_robot("other", ts), clock())
    with pytest.raises(SignatureError):
        verify_robot("s3cret", ts, sign_robot("s3cret", ts), clock() + timedelta(minutes=61))
