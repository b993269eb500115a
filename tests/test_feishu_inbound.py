"""Feishu inbound: verifiers (with lark-oapi as the oracle), parsing, and every rejection through the app."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest
import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import func, select

from bot.config import Secret, Settings
from bot.platforms import Deps
from bot.platforms.base import BadRequest, CaseInsensitiveDict, SignatureError, WebRequest, WebResponse
from bot.platforms.feishu import (
    FeishuPlatform,
    check_timestamp,
    message_text,
    sign_event,
    sign_legacy_card,
    verify_signature,
)
from cards.model import Card, Markdown
from handlers.router import Router
from storage.models import InboundEvent, OutboxMessage
from tests.conftest import TEST_KEY
from tests.fakes import feishu as ff

URL = "/webhooks/feishu/feishu-main"


def platform(clock, **kwargs) -> FeishuPlatform:
    return FeishuPlatform(ff.bot_config(**kwargs), Deps(http=requests.Session(), clock=clock, sessions=None))


def web(event: ff.Event) -> WebRequest:
    return WebRequest("POST", "", {}, CaseInsensitiveDict(event.headers), event.body)


# --- pure verifiers ------------------------------------------------------------------------------


def test_event_signature_matches_lark_oapi(clock):
    """lark-oapi's dispatcher accepts what our sign_event signs, and we accept what it accepts."""
    import lark_oapi as lark
    from lark_oapi.core.model import RawRequest

    seen = []
    handler = (
        lark.EventDispatcherHandler.builder(ff.ENCRYPT_KEY, ff.VERIFICATION_TOKEN)
        .register_p2_im_message_receive_v1(lambda data: seen.append(data.event.message.chat_id))
        .build()
    )
    event = ff.deliver(ff.text_message("写计划", chat_id="oc_x"), now=clock(), sign=False)
    ts, nonce = str(int(clock().timestamp())), "n0nce"
    headers = {
        "X-Lark-Request-Timestamp": ts,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": sign_event(ts, nonce, ff.ENCRYPT_KEY, event.body),
    }
    raw = RawRequest()
    raw.uri, raw.body, raw.headers = URL, event.body, headers
    assert handler.do(raw).status_code == 200 and seen == ["oc_x"]
    assert (
        verify_signature(
            headers, event.body, clock(), encrypt_key=ff.ENCRYPT_KEY, verification_token=ff.VERIFICATION_TOKEN
        )
        == "event"
    )


def test_legacy_card_signature_matches_lark_oapi(clock):
    from lark_oapi.card.action_handler import CardActionHandler
    from lark_oapi.core.model import RawRequest

    handler = CardActionHandler.builder("", ff.VERIFICATION_TOKEN).register(lambda card: {"ok": 1}).build()
    body = json.dumps(ff.legacy_card({"action": "x"})).encode()
    ts, nonce = "1700000000", "abc"
    headers = {
        "X-Lark-Request-Timestamp": ts,
        "X-Lark-Request-Nonce": nonce,
        "X-Lark-Signature": sign_legacy_card(ts, nonce, ff.VERIFICATION_TOKEN, body),
    }
    raw = RawRequest()
    raw.uri, raw.body, raw.headers = URL, body, headers
    assert handler.do(raw).status_code == 200
    headers["X-Lark-Signature"] = "0" * 40
    assert handler.do(raw).status_code == 500  # the oracle also refuses a forged one


@pytest.mark.parametrize(
    "skew, ok",
    [
        (0, True),
        (3599, True),
        (-3599, True),
        (3600, True),
        (3601, False),
        (-3601, False),
        (86400 * 365, False),
    ],
)
def test_timestamp_window_is_one_hour(clock, skew, ok):
    ts = str(int(clock().timestamp()) + skew)
    if ok:
        check_timestamp(ts, clock())
    else:
        with pytest.raises(SignatureError, match="server clock"):
            check_timestamp(ts, clock())


@pytest.mark.parametrize("raw", ["", "abc", "1.5e9", "0x10"])
def test_timestamp_must_be_unix_seconds(clock, raw):
    with pytest.raises(SignatureError):
        check_timestamp(raw, clock())


@pytest.mark.parametrize(
    "mentions, raw, expected",
    [
        (["@_user_1"], "@_user_1 写计划", "写计划"),
        (["@_user_1", "@_user_10"], "@_user_10 @_user_1  plan", "plan"),
        (
            [],
            "计划\n 优化详情页首屏 支付转化率 +2pp \n差评回访 投诉率 -10%",
            "计划\n优化详情页首屏 支付转化率 +2pp\n差评回访 投诉率 -10%",
        ),
        (["@_user_1"], "@_all 帮助", "帮助"),
    ],
)
def test_text_mentions_are_stripped(mentions, raw, expected):
    assert message_text("text", json.dumps({"text": raw}), mentions) == expected


def test_post_message_text_is_the_paragraphs():
    post = {
        "title": "",
        "content": [
            [{"tag": "at", "user_id": "@_user_1"}, {"tag": "text", "text": "计划"}],
            [
                {"tag": "text", "text": "优化详情页 "},
                {"tag": "a", "text": "支付转化率", "href": "x"},
                {"tag": "text", "text": " +2pp"},
            ],
        ],
    }
    assert message_text("post", json.dumps(post), ["@_user_1"]) == "计划\n优化详情页 支付转化率 +2pp"


@pytest.mark.parametrize("message_type", ["image", "file", "sticker", "audio"])
def test_non_text_messages_have_no_text(message_type):
    assert message_text(message_type, json.dumps({"image_key": "img"}), []) is None


# --- parsing to Inbound --------------------------------------------------------------------------


def test_p2p_text_is_a_dm_from_the_sender(clock):
    event = ff.deliver(ff.text_message("写计划", open_id="ou_a", event_id="ev1"), now=clock())
    inbound = platform(clock).parse(web(event), clock())
    assert (inbound.kind, inbound.actor, inbound.chat, inbound.chat_type, inbound.text, inbound.event_id) == (
        "text",
        "ou_a",
        "ou_a",
        "dm",
        "写计划",
        "ev1",
    )


def test_group_text_with_bot_mention_is_a_group_command(clock):
    payload = ff.text_message(
        "@_user_1 写计划", chat_type="group", chat_id="oc_g", mentions=[ff.bot_mention()]
    )
    inbound = platform(clock).parse(web(ff.deliver(payload, now=clock())), clock())
    assert (inbound.chat, inbound.chat_type, inbound.text) == ("oc_g", "group", "写计划")


@pytest.mark.parametrize(
    "bot_open_id, mentions, handled",
    [
        ("", [], False),  # group chatter the bot was not asked about
        ("", [ff.bot_mention(open_id="ou_someone")], True),  # without bot_open_id any mention counts
        ("ou_bot", [ff.bot_mention(open_id="ou_someone")], False),
        ("ou_bot", [ff.bot_mention(open_id="ou_bot")], True),
    ],
)
def test_group_messages_need_the_bot_mentioned(clock, bot_open_id, mentions, handled):
    payload = ff.text_message("@_user_1 写计划", chat_type="group", mentions=mentions)
    result = platform(clock, bot_open_id=bot_open_id).parse(web(ff.deliver(payload, now=clock())), clock())
    assert isinstance(result, WebResponse) != handled


@pytest.mark.parametrize(
    "mentions, handled",
    [
        ([ff.bot_mention(open_id="ou_hanmeimei", name="韩梅梅")], False),  # @ a colleague only
        ([ff.bot_mention(open_id="ou_hanmeimei"), ff.bot_mention("@_user_2", open_id="ou_bot")], True),
        ([ff.bot_mention(open_id="ou_bot")], True),
    ],
)
def test_the_bot_learns_its_own_open_id_for_the_mention_check(clock, mentions, handled):
    """No bot_open_id configured: the adapter asks GET /open-apis/bot/v3/info once and keeps it."""
    fake = ff.FakeFeishu(clock=clock)
    with fake.running():
        p = platform(clock, api_base=fake.base_url)
        payload = ff.text_message("@_user_1 写计划", chat_type="group", mentions=mentions)
        for _ in range(2):
            result = p.parse(web(ff.deliver(payload, now=clock())), clock())
            assert isinstance(result, WebResponse) != handled
    assert p.own_open_id() == "ou_bot"
    assert fake.requests.count(("GET", "/open-apis/bot/v3/info")) == 1


def test_an_unreachable_bot_info_falls_back_and_is_asked_again_later(clock):
    fake = ff.FakeFeishu(clock=clock)
    with fake.running():
        p = platform(clock, api_base=fake.base_url)
        fake.fail_next("/open-apis/bot/v3/info", status=500, code=1, msg="busy", reset=None)
        someone = ff.text_message(
            "@_user_1 写计划", chat_type="group", mentions=[ff.bot_mention(open_id="ou_x")]
        )
        # unknown: any mention counts (Feishu sends only @bot messages without the group-message scope)
        assert not isinstance(p.parse(web(ff.deliver(someone, now=clock())), clock()), WebResponse)
        clock.advance(seconds=30)  # within the retry pause: no second ask, still the fallback
        assert not isinstance(p.parse(web(ff.deliver(someone, now=clock())), clock()), WebResponse)
        assert fake.requests.count(("GET", "/open-apis/bot/v3/info")) == 1
        clock.advance(minutes=2)
        assert isinstance(p.parse(web(ff.deliver(someone, now=clock())), clock()), WebResponse)
        assert fake.requests.count(("GET", "/open-apis/bot/v3/info")) == 2


def test_image_message_and_unknown_events_are_acknowledged_and_ignored(clock):
    p = platform(clock)
    image = ff.text_message("", message_type="image", content=json.dumps({"image_key": "img_x"}))
    other = ff.v2("im.chat.member.bot.added_v1", {"chat_id": "oc_x"})
    for payload in (image, other):
        result = p.parse(web(ff.deliver(payload, now=clock())), clock())
        assert isinstance(result, WebResponse) and result.status == 200


def test_card_click_carries_action_and_value(clock):
    payload = ff.card_action({"action": "plan.open", "week": "2026-W48"}, event_id="ev-click")
    inbound = platform(clock).parse(web(ff.deliver(payload, now=clock())), clock())
    assert (inbound.kind, inbound.action, dict(inbound.values), inbound.actor, inbound.reply_handle) == (
        "action",
        "plan.open",
        {"week": "2026-W48"},
        "ou_lilei",
        "om_card",
    )


def test_form_submit_merges_hidden_values_and_inputs(clock):
    payload = ff.card_action(
        {"action": "plan.submit", "week": "2026-W48"},
        form_value={
            "item1_text": "优化详情页",
            "item1_kpi": "conversion_rate",
            "tags": ["a", "b"],
            "ok": True,
        },
    )
    inbound = platform(clock).parse(web(ff.deliver(payload, now=clock())), clock())
    assert inbound.kind == "form" and inbound.action == "plan.submit"
    assert dict(inbound.values) == {
        "week": "2026-W48",
        "item1_text": "优化详情页",
        "item1_kpi": "conversion_rate",
        "tags": "a,b",
        "ok": "true",
    }


def test_standalone_select_delivers_its_option(clock):
    payload = ff.card_action(
        {"action": "template.pick"}, tag="select_static", option="ops-promo", name="template"
    )
    inbound = platform(clock).parse(web(ff.deliver(payload, now=clock())), clock())
    assert inbound.kind == "action" and dict(inbound.values) == {
        "option": "ops-promo",
        "template": "ops-promo",
    }


def test_card_without_message_id_keeps_the_callback_token(clock):
    payload = ff.card_action({"action": "a"}, message_id="", callback_token="c-abc")
    payload["event"]["context"] = {}
    inbound = platform(clock).parse(web(ff.deliver(payload, now=clock())), clock())
    assert inbound.reply_handle == "token:c-abc"


def test_legacy_card_callback_is_an_action_with_a_stable_id(clock):
    payload = ff.legacy_card({"action": "plan.open", "week": "W48"})
    first = platform(clock).parse(
        web(ff.deliver(payload, now=clock(), encrypt_key=None, legacy=True)), clock()
    )
    again = platform(clock).parse(
        web(ff.deliver(payload, now=clock(), encrypt_key=None, legacy=True)), clock()
    )
    assert first.action == "plan.open" and dict(first.values) == {"week": "W48"}
    assert first.event_id == again.event_id and first.event_id.startswith("legacy:")


def test_v1_message_event(clock):
    payload = {
        "uuid": "u-1",
        "token": ff.VERIFICATION_TOKEN,
        "ts": "1700000000.1",
        "type": "event_callback",
        "event": {
            "type": "message",
            "msg_type": "text",
            "chat_type": "private",
            "open_id": "ou_v1",
            "open_chat_id": "oc_p",
            "text": "@bot 帮助",
            "text_without_at_bot": " 帮助",
        },
    }
    inbound = platform(clock).parse(web(ff.deliver(payload, now=clock())), clock())
    assert (inbound.event_id, inbound.actor, inbound.chat_type, inbound.text) == (
        "v1:u-1",
        "ou_v1",
        "dm",
        "帮助",
    )


def test_bot_without_encrypt_key_relies_on_the_token(clock):
    p = platform(clock, encrypt_key=None)
    ok = ff.deliver(ff.text_message("帮助"), now=clock(), encrypt_key=None, sign=False)
    assert p.parse(web(ok), clock()).text == "帮助"
    forged = ff.deliver(ff.text_message("帮助", token="guess"), now=clock(), encrypt_key=None, sign=False)
    with pytest.raises(SignatureError, match="token"):
        p.parse(web(forged), clock())


def test_bot_with_neither_key_nor_token_refuses_everything(clock):
    p = platform(clock, encrypt_key=None, verification_token=None)
    event = ff.deliver(ff.text_message("帮助"), now=clock(), encrypt_key=None, sign=False)
    with pytest.raises(SignatureError, match="neither"):
        p.parse(web(event), clock())


def test_encrypted_body_for_a_bot_without_key_is_a_bad_request(clock):
    event = ff.deliver(ff.text_message("帮助"), now=clock(), sign=False)
    with pytest.raises(BadRequest, match="no encrypt_key"):
        platform(clock, encrypt_key=None).parse(web(event), clock())


# --- through the app: rejections, handshake, dedupe, end to end ------------------------------


@pytest.fixture
def feishu_app(engine, clock):
    """The web app with one Feishu bot and a router of throwaway handlers that record their calls."""
    from bot.services import build_services
    from bot.web.app import create_app

    settings = Settings(
        database_url="sqlite://",
        secret_keys=(Secret(TEST_KEY),),
        public_url="http://planloop.test",
        bots=(ff.bot_config(),),
    )
    services = build_services(settings, clock=clock, engine=engine)
    calls: list = []
    router = Router()

    @router.command("写计划", "plan", public=True)
    def plan_form(event, ctx):
        calls.append(event)
        return Card("本周计划", blocks=(Markdown("填写本周计划"),))

    @router.action("plan.submit", public=True)
    def plan_submit(event, ctx):
        calls.append(event)
        return Card(
            "计划已提交", theme="green", blocks=(Markdown(f"共 {len(event.values)} 项"),), toast="已提交"
        )

    @router.action("plan.refuse", public=True)
    def plan_refuse(event, ctx):
        calls.append(event)
        return Card("操作未完成", theme="red", blocks=(Markdown("本周计划已过修改截止时间，需要主管解锁。"),))

    @router.action("plan.open", public=True)
    def plan_open(event, ctx):
        calls.append(event)
        return Card("计划详情", blocks=(Markdown("两项"),))

    @router.action("noop", public=True)
    def noop(event, ctx):
        calls.append(event)
        return None

    services.router = router
    app = create_app(settings, services)
    app.testing = True
    return app, services, calls


def post(client, event: ff.Event, url: str = URL):
    return client.post(url, data=event.body, headers=event.headers)


def counts(services) -> tuple[int, int]:
    with services.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(InboundEvent)),
            s.scalar(select(func.count()).select_from(OutboxMessage)),
        )


def _seal_raw(key: str, data: bytes) -> str:
    """Encrypt block-aligned bytes without adding padding (to build a bad-padding ciphertext)."""
    iv = b"\x01" * 16
    enc = Cipher(algorithms.AES(hashlib.sha256(key.encode()).digest()), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + enc.update(data) + enc.finalize()).decode()


def _resign(event: ff.Event, body: bytes, clock) -> ff.Event:
    """The same request with another body, correctly signed: a check past the signature must catch it."""
    ts, nonce = str(int(clock().timestamp())), "nonce"
    headers = dict(event.headers)
    headers.update(
        {
            "X-Lark-Request-Timestamp": ts,
            "X-Lark-Request-Nonce": nonce,
            "X-Lark-Signature": ff.signature(ts, nonce, ff.ENCRYPT_KEY, body),
        }
    )
    return ff.Event(body, headers, event.plaintext)


def _bad_signature(ev, clock):
    ev.headers["X-Lark-Signature"] = "f" * 64
    return ev


def _stale(ev, clock):
    return ff.deliver(ev.plaintext, now=clock(), timestamp=str(int(clock().timestamp()) - 3601))


def _future(ev, clock):
    return ff.deliver(ev.plaintext, now=clock(), timestamp=str(int(clock().timestamp()) + 7200))


def _unsigned(ev, clock):
    return ff.deliver(ev.plaintext, now=clock(), sign=False)


def _legacy_scheme(ev, clock):
    return ff.deliver(ev.plaintext, now=clock(), legacy=True)


def _wrong_token(ev, clock):
    payload = json.loads(json.dumps(ev.plaintext))
    payload["header"]["token"] = "not-the-token"
    return ff.deliver(payload, now=clock())


def _other_bot_key(ev, clock):
    return ff.deliver(ev.plaintext, now=clock(), encrypt_key="someone-elses-key")


def _broken_base64(ev, clock):
    return _resign(ev, json.dumps({"encrypt": "%%%not base64%%%"}).encode(), clock)


def _wrong_key(ev, clock):
    sealed = ff.seal("someone-elses-key", json.dumps(ev.plaintext))
    return _resign(ev, json.dumps({"encrypt": sealed}).encode(), clock)


def _bad_padding(ev, clock):
    return _resign(
        ev, json.dumps({"encrypt": _seal_raw(ff.ENCRYPT_KEY, b'{"a":1}' + b"\x00" * 9)}).encode(), clock
    )


def _short_ciphertext(ev, clock):
    return _resign(ev, json.dumps({"encrypt": base64.b64encode(b"0123456789").decode()}).encode(), clock)


def _broken_json(ev, clock):
    return _resign(ev, b'{"encrypt": ', clock)


def _broken_inner_json(ev, clock):
    return _resign(ev, json.dumps({"encrypt": ff.seal(ff.ENCRYPT_KEY, "{not json")}).encode(), clock)


def _json_array(ev, clock):
    return _resign(ev, b"[1, 2, 3]", clock)


def _oversize(ev, clock):
    return _resign(ev, json.dumps({"encrypt": "A" * (300 * 1024)}).encode(), clock)


def _not_an_event(ev, clock):
    return ff.deliver({"hello": "world"}, now=clock())


def _no_action_id(ev, clock):
    return ff.deliver(ff.card_action({"week": "W48"}), now=clock())


def _huge_text(ev, clock):
    return ff.deliver(ff.text_message("写计划 " + "很" * 9000), now=clock())


REJECTIONS = [
    ("bad signature", _bad_signature, 401),
    ("stale timestamp", _stale, 401),
    ("future timestamp", _future, 401),
    ("unsigned event", _unsigned, 401),
    ("signed with the legacy scheme", _legacy_scheme, 401),
    ("wrong verification token", _wrong_token, 401),
    ("another bot's key (signature)", _other_bot_key, 401),
    ("broken base64", _broken_base64, 400),
    ("wrong key", _wrong_key, 400),
    ("bad padding", _bad_padding, 400),
    ("short ciphertext", _short_ciphertext, 400),
    ("broken JSON", _broken_json, 400),
    ("broken JSON inside", _broken_inner_json, 400),
    ("JSON array", _json_array, 400),
    ("oversize body", _oversize, 400),
    ("not a Feishu event", _not_an_event, 400),
    ("card action without action id", _no_action_id, 400),
    ("oversize text", _huge_text, 400),
]


@pytest.mark.parametrize("name, mutate, status", REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejections_change_nothing(feishu_app, clock, name, mutate, status):
    app, services, calls = feishu_app
    event = mutate(ff.deliver(ff.text_message("写计划"), now=clock()), clock)
    resp = post(app.test_client(), event)
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert "error" in resp.get_json()
    assert calls == [] and counts(services) == (0, 0)


@pytest.mark.parametrize(
    "url, status", [("/webhooks/feishu/nobody", 404), ("/webhooks/dingtalk/feishu-main", 404)]
)
def test_unknown_bot_is_404(feishu_app, clock, url, status):
    app, services, calls = feishu_app
    resp = post(app.test_client(), ff.deliver(ff.text_message("写计划"), now=clock()), url)
    assert resp.status_code == status and calls == []


def test_get_is_refused(feishu_app):
    app, _, calls = feishu_app
    assert app.test_client().get(URL).status_code == 400 and calls == []


@pytest.mark.parametrize("encrypted", [False, True])
def test_url_verification_answers_the_plain_challenge(feishu_app, clock, encrypted):
    app, services, calls = feishu_app
    event = ff.deliver(
        ff.url_verification("chal-123"),
        now=clock(),
        sign=False,
        encrypt_key=ff.ENCRYPT_KEY if encrypted else None,
    )
    resp = post(app.test_client(), event)
    assert resp.status_code == 200 and resp.get_json() == {"challenge": "chal-123"}
    assert calls == [] and counts(services) == (0, 0)


def test_url_verification_with_a_wrong_token_is_refused(feishu_app, clock):
    app, _, _ = feishu_app
    event = ff.deliver(ff.url_verification("c", token="guess"), now=clock(), sign=False)
    assert post(app.test_client(), event).status_code == 401


def test_a_retried_event_has_one_effect(feishu_app, clock):
    app, services, calls = feishu_app
    client = app.test_client()
    event = ff.deliver(ff.text_message("写计划", event_id="ev-retry"), now=clock())
    first = post(client, event)
    clock.advance(seconds=15)  # Feishu's first retry, re-signed with a fresh timestamp and nonce
    again = post(client, ff.deliver(event.plaintext, now=clock()))
    assert first.status_code == again.status_code == 200
    assert len(calls) == 1 and counts(services) == (1, 1)


def test_a_replayed_signed_request_inside_the_hour_is_a_duplicate(feishu_app, clock):
    app, services, calls = feishu_app
    client = app.test_client()
    event = ff.deliver(
        ff.card_action({"action": "plan.submit"}, form_value={"a": "1"}, event_id="ev-r"), now=clock()
    )
    post(client, event)
    clock.advance(minutes=59)
    replay = post(client, event)  # byte-for-byte the same request
    assert replay.status_code == 200 and replay.get_json() == {"toast": {"type": "info", "content": "已处理"}}
    assert len(calls) == 1 and counts(services) == (1, 1)
    clock.advance(minutes=2)
    assert post(client, event).status_code == 401  # past the hour: stale


def test_encrypted_signed_text_reaches_the_router_and_the_card_goes_to_the_outbox(feishu_app, clock):
    app, services, calls = feishu_app
    payload = ff.text_message(
        "@_user_1 写计划", open_id="ou_lilei", chat_type="p2p", mentions=[ff.bot_mention()]
    )
    resp = post(app.test_client(), ff.deliver(payload, now=clock()))
    assert resp.status_code == 200 and resp.get_json() == {"msg": "success"}
    assert [(c.kind, c.text, c.actor, c.chat_type) for c in calls] == [("text", "写计划", "ou_lilei", "dm")]
    with services.sessions() as s:
        row = s.scalars(select(OutboxMessage)).one()
        assert (row.bot_id, row.channel, row.target, row.card["title"]) == (
            "feishu-main",
            "user",
            "ou_lilei",
            "本周计划",
        )


def test_form_submit_is_answered_in_the_reply_and_queued_as_a_receipt(feishu_app, clock):
    from cards.render.feishu import render

    app, services, calls = feishu_app
    payload = ff.card_action(
        {"action": "plan.submit", "week": "2026-W48"}, form_value={"item1_text": "优化详情页"}
    )
    resp = post(app.test_client(), ff.deliver(payload, now=clock()))
    body = resp.get_json()
    assert resp.status_code == 200
    assert body["toast"] == {"type": "success", "content": "已提交"}
    assert body["card"]["type"] == "raw"
    assert body["card"]["data"] == render(
        Card("计划已提交", theme="green", blocks=(Markdown("共 2 项"),), toast="已提交")
    )
    assert calls[0].kind == "form" and dict(calls[0].values) == {
        "week": "2026-W48",
        "item1_text": "优化详情页",
    }
    with services.sessions() as s:
        row = s.scalars(select(OutboxMessage)).one()
        assert (row.channel, row.target, row.card["title"]) == ("user", "ou_lilei", "计划已提交")


def test_a_slow_clock_does_not_matter_inside_the_window(feishu_app, clock):
    app, _, calls = feishu_app
    event = ff.deliver(ff.text_message("plan"), now=clock() - timedelta(minutes=50))
    assert post(app.test_client(), event).status_code == 200 and len(calls) == 1


def outbox_titles(services) -> list[tuple[str, str, str]]:
    with services.sessions() as s:
        return [(r.channel, r.target, r.card["title"]) for r in s.scalars(select(OutboxMessage))]


def test_a_refused_form_keeps_the_form_and_the_error_comes_as_a_message(feishu_app, clock):
    app, services, _ = feishu_app
    event = ff.deliver(ff.card_action({"action": "plan.refuse"}, form_value={"item1_text": "x"}), now=clock())
    body = post(app.test_client(), event).get_json()
    assert body == {"toast": {"type": "error", "content": "本周计划已过修改截止时间，需要主管解锁。"}}
    assert outbox_titles(services) == [("user", "ou_lilei", "操作未完成")]


def test_a_button_click_is_answered_in_the_reply_only(feishu_app, clock):
    app, services, _ = feishu_app
    body = post(
        app.test_client(), ff.deliver(ff.card_action({"action": "plan.open"}), now=clock())
    ).get_json()
    assert body["card"]["data"]["header"]["title"]["content"] == "计划详情"
    assert body["toast"] == {"type": "info", "content": "计划详情"}
    assert outbox_titles(services) == []


def test_a_click_without_an_answer_leaves_the_card_alone(feishu_app, clock):
    app, services, calls = feishu_app
    resp = post(app.test_client(), ff.deliver(ff.card_action({"action": "noop"}), now=clock()))
    assert resp.status_code == 200 and resp.get_json() == {} and len(calls) == 1
    assert outbox_titles(services) == []


def test_legacy_card_callback_is_answered_with_the_card_itself(feishu_app, clock):
    app, services, calls = feishu_app
    event = ff.deliver(ff.legacy_card({"action": "plan.open"}), now=clock(), legacy=True)
    body = post(app.test_client(), event).get_json()
    assert body["schema"] == "2.0" and body["header"]["title"]["content"] == "计划详情"
    assert [c.action for c in calls] == ["plan.open"]
    forged = ff.deliver(ff.legacy_card({"action": "plan.open"}), now=clock(), legacy=True, token="guess")
    assert post(app.test_client(), forged).status_code == 401


@pytest.mark.parametrize(
    "content",
    ['{"zh_cn": {"content": 5}}', '{"content": "not a list"}', '{"content": {"a": 1}}'],
)
def test_a_malformed_rich_text_post_is_a_bad_request_not_a_retry(content):
    from bot.platforms.base import BadRequest
    from bot.platforms.feishu import message_text

    with pytest.raises(BadRequest, match="not a list of paragraphs"):
        message_text("post", content, [])
