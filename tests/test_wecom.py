"""bot/platforms/wecom.py: every rejection of the callback, the URL handshake, inbound events,
passive replies, and sending through the fake WeCom server (tokens, throttling, failures)."""

from __future__ import annotations

import base64
import os
import struct
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import requests
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bot.config import BotConfig, Secret
from bot.platforms import Deps
from bot.platforms.base import (
    BadRequest,
    CaseInsensitiveDict,
    DeliveryError,
    Outbound,
    SignatureError,
    WebRequest,
    WebResponse,
)
from bot.platforms.crypto import WxEnvelope
from bot.platforms.wecom import WeComPlatform, parse_xml, sign_callback
from cards.model import Button, Card, Form, Input, Markdown
from cards.render import wecom as render
from handlers.inbound import Inbound
from tests.conftest import Clock
from tests.fakes.wecom import FakeWeCom
from tests.wecom_samples import error_card, lag_alert, monday_summary, plan_receipt

CORP = "ww0123456789abcdef"
TOKEN = "QDG6eK"
AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
AGENT = 1000002
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def fake(clock):
    server = FakeWeCom(corp_id=CORP, token=TOKEN, aes_key=AES, agent_id=AGENT)
    server.clock = lambda: clock().timestamp()
    server.start()
    yield server
    server.stop()


def make_bot(api_base: str, **values: object) -> BotConfig:
    return BotConfig(
        "wecom-main",
        "wecom",
        {"corp_id": CORP, "agent_id": AGENT, "api_base": api_base, **values},
        {"secret": Secret("app-secret"), "token": Secret(TOKEN), "aes_key": Secret(AES)},
    )


@pytest.fixture
def wecom(fake, clock) -> WeComPlatform:
    deps = Deps(http=requests.Session(), clock=clock, sessions=None, public_url="http://planloop.test")  # type: ignore[arg-type]
    return WeComPlatform(make_bot(fake.url, timeout=2), deps)


def post(args: dict[str, str], body: bytes, path: str = "") -> WebRequest:
    return WebRequest("POST", path, args, CaseInsensitiveDict({"Content-Type": "text/xml"}), body)


def get(args: dict[str, str]) -> WebRequest:
    return WebRequest("GET", "", args, CaseInsensitiveDict(), b"")


def raw_encrypt(
    plain: bytes, *, length: int | None = None, receive_id: bytes = CORP.encode(), key: str = AES
) -> str:
    """WeCom's envelope built by hand (not by the code under test), with knobs to break it."""
    k = base64.b64decode(key + "=")
    body = os.urandom(16) + struct.pack(">I", len(plain) if length is None else length) + plain + receive_id
    pad = 32 - len(body) % 32
    body += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(k), modes.CBC(k[:16])).encryptor()
    return base64.b64encode(enc.update(body) + enc.finalize()).decode()


def signed(fake: FakeWeCom, encrypt: str, ts: int | None = None) -> tuple[dict[str, str], bytes]:
    ts_text = str(int(NOW.timestamp()) if ts is None else ts)
    args = {"msg_signature": fake.sign(ts_text, "nonce1", encrypt), "timestamp": ts_text, "nonce": "nonce1"}
    return (
        args,
        f"<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode(),
    )


# ---------------------------------------------------------------- rejections


def _forged(fake):
    args, body = fake.callback(fake.text_xml("LiLei", "写计划", "1"))
    return {**args, "msg_signature": "0" * 40}, body


def _swapped_body(fake):
    args, _ = fake.callback(fake.text_xml("LiLei", "写计划", "1"))
    _, other = fake.callback(fake.text_xml("LiLei", "删除全部", "2"))
    return args, other


def _missing(name):
    def build(fake):
        args, body = fake.callback(fake.text_xml("LiLei", "写计划", "1"))
        return {k: v for k, v in args.items() if k != name}, body

    return build


def _at(offset):
    return lambda fake: fake.callback(
        fake.text_xml("LiLei", "写计划", "1"), timestamp=int(NOW.timestamp()) + offset
    )


def _inner(xml: str):
    return lambda fake: signed(fake, fake.encrypt(xml))


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b"<xml><Encrypt>&b;</Encrypt></xml>"
)
XXE = b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><Encrypt>&x;</Encrypt></xml>'
TEXT = "<xml><FromUserName>LiLei</FromUserName><MsgType>text</MsgType><Content>{}</Content><MsgId>9</MsgId></xml>"


@pytest.mark.parametrize(
    "build, error, match",
    [
        (_forged, SignatureError, "does not match"),
        (_swapped_body, SignatureError, "does not match"),
        (_missing("msg_signature"), SignatureError, "required"),
        (_missing("timestamp"), SignatureError, "required"),
        (_missing("nonce"), SignatureError, "required"),
        (_at(-3601), SignatureError, "more than an hour"),
        (_at(+3601), SignatureError, "more than an hour"),
        (lambda f: signed(f, f.encrypt(TEXT.format("hi")), ts="abc"), SignatureError, "not a number"),  # type: ignore[arg-type]
        (lambda f: signed(f, raw_encrypt(b"<xml/>", receive_id=b"wwSOMEONEELSE")), BadRequest, "receive id"),
        (
            lambda f: signed(f, raw_encrypt(TEXT.format("写计划").encode(), receive_id=b"")),
            BadRequest,
            "receive id",
        ),
        (lambda f: signed(f, raw_encrypt(b"<xml/>", key="Z" * 43)), BadRequest, None),
        (lambda f: signed(f, "%%%not-base64%%%"), BadRequest, "base64"),
        (lambda f: signed(f, base64.b64encode(b"0123456789").decode()), BadRequest, "block"),
        # the length field must count bytes: 写计划 is 3 characters but 9 bytes
        (
            lambda f: signed(
                f, raw_encrypt(TEXT.format("写计划").encode(), length=len(TEXT.format("写计划")))
            ),
            BadRequest,
            "receive id",
        ),
        (lambda f: signed(f, raw_encrypt(b"<xml/>", length=10_000)), BadRequest, "length"),
        (
            lambda f: ({"msg_signature": "x", "timestamp": "1", "nonce": "n"}, b"<xml><Encrypt>abc"),
            BadRequest,
            "broken XML",
        ),
        (lambda f: ({"msg_signature": "x", "timestamp": "1", "nonce": "n"}, BOMB), BadRequest, "DTD"),
        (lambda f: ({"msg_signature": "x", "timestamp": "1", "nonce": "n"}, XXE), BadRequest, "DTD"),
        (
            lambda f: (
                {"msg_signature": "x", "timestamp": "1", "nonce": "n"},
                b"<xml><ToUserName>x</ToUserName></xml>",
            ),
            BadRequest,
            "no <Encrypt>",
        ),
        (
            lambda f: (
                {"msg_signature": "x", "timestamp": "1", "nonce": "n"},
                b"<root><Encrypt>a</Encrypt></root>",
            ),
            BadRequest,
            "<xml>",
        ),
        (
            lambda f: (
                {"msg_signature": "x", "timestamp": "1", "nonce": "n"},
                b"<xml><Encrypt>" + b"A" * 70_000 + b"</Encrypt></xml>",
            ),
            BadRequest,
            "larger",
        ),
        (
            lambda f: (
                {"msg_signature": "x", "timestamp": "1", "nonce": "n"},
                b"<xml>" + b"<a>" * 20 + b"</a>" * 20 + b"</xml>",
            ),
            BadRequest,
            "deep",
        ),
        (_inner("this is not xml"), BadRequest, "broken XML"),
        (
            _inner('<!DOCTYPE xml [<!ENTITY x "y">]><xml><FromUserName>&x;</FromUserName></xml>'),
            BadRequest,
            "DTD",
        ),
        (
            _inner(TEXT.format("hi").replace("<MsgId>", "<AgentID>999</AgentID><MsgId>")),
            BadRequest,
            "AgentID 999",
        ),
        (_inner("<xml><MsgType>text</MsgType><Content>hi</Content></xml>"), BadRequest, "FromUserName"),
        (_inner(TEXT.format("长" * 4001)), BadRequest, "longer than 4000"),
    ],
)
def test_post_rejections(wecom, fake, build, error, match):
    args, body = build(fake)
    with pytest.raises(error, match=match):
        wecom.parse(post(args, body), NOW)


def test_a_timestamp_exactly_one_hour_old_is_still_accepted(wecom, fake):
    args, body = fake.callback(fake.text_xml("LiLei", "帮助", "7"), timestamp=int(NOW.timestamp()) - 3600)
    assert isinstance(wecom.parse(post(args, body), NOW), Inbound)


def test_unknown_sub_path_is_404(wecom, fake):
    args, body = fake.callback(fake.text_xml("LiLei", "帮助", "7"))
    resp = wecom.parse(post(args, body, path="robot"), NOW)
    assert isinstance(resp, WebResponse) and resp.status == 404


# ---------------------------------------------------------------- URL verification (GET)


def test_get_verification_answers_the_bare_decrypted_echostr(wecom, fake):
    args, echo = fake.verify_url(echo="1616140317555161061")
    resp = wecom.parse(get(args), NOW)
    assert isinstance(resp, WebResponse)
    assert (resp.status, resp.body, resp.content_type) == (
        200,
        "1616140317555161061",
        "text/plain; charset=utf-8",
    )


def test_get_verification_survives_a_plus_decoded_as_a_space(wecom, fake):
    for n in range(50):  # find an echostr whose base64 has a "+"
        args, echo = fake.verify_url(echo=f"echo-{n}-中文")
        if "+" in args["echostr"]:
            break
    else:
        pytest.skip("no '+' in 50 tries")
    args = {**args, "echostr": args["echostr"].replace("+", " ")}
    resp = wecom.parse(get(args), NOW)
    assert isinstance(resp, WebResponse) and resp.body == echo


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda a: {**a, "msg_signature": "f" * 40}, SignatureError),
        (lambda a: {k: v for k, v in a.items() if k != "echostr"}, BadRequest),
        (lambda a: {**a, "echostr": a["echostr"][:-4]}, SignatureError),
    ],
)
def test_get_verification_rejections(wecom, fake, mutate, error):
    args, _ = fake.verify_url()
    with pytest.raises(error):
        wecom.parse(get(mutate(args)), NOW)


def test_get_verification_with_a_stale_timestamp_is_refused(wecom, fake):
    args, _ = fake.verify_url(timestamp=int(NOW.timestamp()) - 7200)
    with pytest.raises(SignatureError, match="hour"):
        wecom.parse(get(args), NOW)


def test_our_sign_twin_builds_requests_the_verifier_accepts(wecom):
    env = WxEnvelope(TOKEN, AES, CORP)
    args, body = sign_callback(env, TEXT.format("进度"), str(int(NOW.timestamp())), "n1", str(AGENT))
    event = wecom.parse(post(args, body), NOW)
    assert isinstance(event, Inbound) and event.text == "进度"


# ---------------------------------------------------------------- inbound events


@pytest.mark.parametrize(
    "content",
    [
        "写计划",
        "计划\n优化详情页首屏 支付转化率 +2pp\n差评回访 投诉率 -10%",
        "  帮助  ",
        "emoji 😀 & <tags> ]]>",
    ],
)
def test_text_messages_arrive_exactly(wecom, fake, content):
    xml = fake.text_xml("LiLei", content.replace("]]>", "]]]]><![CDATA[>"), "7001")
    event = wecom.parse(post(*fake.callback(xml)), NOW)
    assert event == Inbound(
        "wecom", "wecom-main", "msg:7001", "text", "LiLei", "LiLei", "dm", text=content, received_at=NOW
    )


def test_a_button_click_becomes_an_action_with_its_value_and_response_code(wecom, fake):
    key = render.encode_key("plan.confirm", {"week": "2026-W48", "note": "中文|&="})
    xml, code = fake.click_xml("LiLei", key)
    event = wecom.parse(post(*fake.callback(xml)), NOW)
    assert isinstance(event, Inbound)
    assert (event.kind, event.action, dict(event.values), event.reply_handle) == (
        "action",
        "plan.confirm",
        {"week": "2026-W48", "note": "中文|&="},
        code,
    )
    assert event.event_id == f"card:{code}" and event.actor == event.chat == "LiLei"


@pytest.mark.parametrize("spelling", ["OptionId", "OpitonId"])
def test_select_submit_becomes_a_form_with_the_chosen_options(wecom, fake, spelling):
    key = render.encode_key("item.status", {"item": "42"})
    xml, code = fake.click_xml(
        "LiLei",
        key,
        card_type="multiple_interaction",
        selected={"kpi": ["ctr"], "status": ["done", "blocked"]},
        spelling=spelling,
    )
    event = wecom.parse(post(*fake.callback(xml)), NOW)
    assert isinstance(event, Inbound)
    assert (event.kind, event.action) == ("form", "item.status")
    assert dict(event.values) == {"item": "42", "kpi": "ctr", "status": "done,blocked"}


def test_menu_event_without_response_code_dedupes_on_user_and_time(wecom, fake):
    xml, _ = fake.click_xml("LiLei", "help", event="template_card_menu_event", create_time=1795000000)
    xml = xml.replace("<ResponseCode>", "<X>").replace("</ResponseCode>", "</X>")
    event = wecom.parse(post(*fake.callback(xml)), NOW)
    assert isinstance(event, Inbound)
    assert event.event_id == "event:LiLei:1795000000:template_card_menu_event" and event.reply_handle is None


@pytest.mark.parametrize(
    "xml",
    [
        "<xml><FromUserName>LiLei</FromUserName><MsgType>image</MsgType><MediaId>m</MediaId><MsgId>5</MsgId></xml>",
        "<xml><FromUserName>LiLei</FromUserName><MsgType>event</MsgType><Event>enter_agent</Event></xml>",
    ],
)
def test_other_messages_and_events_are_acknowledged_and_ignored(wecom, fake, xml):
    resp = wecom.parse(post(*fake.callback(xml)), NOW)
    assert isinstance(resp, WebResponse) and (resp.status, resp.body) == (200, b"")


# ---------------------------------------------------------------- answers


def click(wecom, fake, kind="action"):
    xml, code = fake.click_xml("LiLei", "plan.confirm|week=2026-W48", card_type="button_interaction")
    event = wecom.parse(post(*fake.callback(xml)), NOW)
    return event if kind == "action" else replace(event, kind=kind)


@pytest.mark.parametrize(
    "kind, card, label, via_outbox",
    [
        ("action", None, "已处理", False),
        ("form", plan_receipt(), "已提交", True),
        ("action", Card("x", toast="已确认"), "已确认", False),
        ("action", Card("已确认计划", blocks=(Markdown("好的"),), toast="已确认"), "已确认", True),
    ],
)
def test_a_click_is_answered_with_an_encrypted_update_button(
    wecom, fake, clock, kind, card, label, via_outbox
):
    event = click(wecom, fake, kind)
    resp, outbox = wecom.answer(event, card)
    assert outbox is via_outbox
    assert resp.status == 200 and resp.content_type.startswith("application/xml")
    plain = parse_xml(fake.open_reply(resp.body.encode()).encode())  # wechatpy checks the signature
    assert plain.value("MsgType") == "update_button"
    assert plain.find("Button").value("ReplaceName") == label  # type: ignore[union-attr]
    assert (plain.value("ToUserName"), plain.value("FromUserName")) == ("LiLei", CORP)
    assert plain.value("CreateTime") == str(int(clock().timestamp()))


@pytest.mark.parametrize(
    "card",
    [
        error_card(),
        Card("更新计划项状态", form=Form("item.status", (Input("k", "指标", "select"),), error="请选择指标")),
    ],
)
def test_an_error_leaves_the_button_clickable(wecom, fake, card):
    resp, outbox = wecom.answer(click(wecom, fake, "form"), card)
    assert (resp.body, outbox) == (b"", True)


def test_text_commands_answer_empty_and_send_the_card_through_the_outbox(wecom, fake):
    event = wecom.parse(
        post(
            *fake.callback(fake.text_xml("LiLei", "帮助", "8")),
        ),
        NOW,
    )
    assert wecom.answer(event, Card("帮助")) == (
        WebResponse(200, b"", content_type="text/plain; charset=utf-8"),
        True,
    )
    assert wecom.answer(event, None)[1] is False
    assert wecom.ack_duplicate(event).body == b""


# ---------------------------------------------------------------- sending


def out(
    card: Card,
    channel: str = "user",
    target: str = "LiLei",
    id: str = "0b6a7c1e-5f2d-4c1a-9a57-3f1d2b3c4d5e",
    **kw,
) -> Outbound:
    return Outbound(id=id, channel=channel, target=target, card=card, **kw)


def test_send_to_a_person_uses_one_cached_token_and_keeps_the_response_code(wecom, fake):
    first = wecom.send(out(plan_receipt()))
    second = wecom.send(out(plan_receipt(), id="11111111-2222-3333-4444-555555555555"))
    assert fake.token_calls == 1
    assert first.reply_handle in fake.response_codes and second.reply_handle in fake.response_codes
    assert first.reply_handle != second.reply_handle
    sent = fake.sent[0]
    assert (sent["touser"], sent["agentid"], sent["msgtype"]) == ("LiLei", AGENT, "template_card")
    assert sent["template_card"]["task_id"] == "pl-0b6a7c1e-5f2d-4c1a-9a57-3f1d2b3c4d5e"


@pytest.mark.parametrize("elapsed, fetches", [(7200 - 301, 1), (7200 - 299, 2), (7300, 2)])
def test_the_token_is_refreshed_five_minutes_before_it_expires(wecom, fake, clock, elapsed, fetches):
    wecom.send(out(plan_receipt(), id="a1"))
    clock.advance(seconds=elapsed)
    wecom.send(out(plan_receipt(), id="a2"))
    assert fake.token_calls == fetches
    assert len(fake.sent) == 2


@pytest.mark.parametrize("how", ["expire", 40014, 42001, 40001])
def test_a_refused_token_is_fetched_again_once_and_the_call_retried(wecom, fake, how):
    wecom.send(out(plan_receipt(), id="b1"))
    if how == "expire":
        fake.expire_tokens()
    else:
        fake.fail_next("message/send", errcode=how)
    wecom.send(out(plan_receipt(), id="b2"))
    assert fake.token_calls == 2 and len(fake.sent) == 2


def test_a_token_refused_twice_gives_up_with_the_code(wecom, fake):
    fake.fail_next("message/send", errcode=40014, times=2)
    with pytest.raises(DeliveryError) as err:
        wecom.send(out(plan_receipt()))
    assert (err.value.retry, err.value.code) == (False, "40014")
    assert fake.token_calls == 2


@pytest.mark.parametrize(
    "knobs, retry, code, retry_after",
    [
        ({"errcode": 45009}, True, "45009", 60.0),
        ({"errcode": -1}, True, "-1", 5.0),
        ({"status": 502}, True, "http_502", None),
        ({"status": 503}, True, "http_503", None),
        ({"status": 404}, False, "http_404", None),
        ({"delay": 1.5}, True, "timeout", None),
        ({"errcode": 40058}, False, "40058", None),
    ],
)
def test_failures_are_classified(fake, clock, knobs, retry, code, retry_after):
    deps = Deps(http=requests.Session(), clock=clock, sessions=None)  # type: ignore[arg-type]
    wecom = WeComPlatform(make_bot(fake.url, timeout=0.5), deps)
    fake.fail_next("message/send", **knobs)
    with pytest.raises(DeliveryError) as err:
        wecom.send(out(plan_receipt()))
    assert (err.value.retry, err.value.code, err.value.retry_after) == (retry, code, retry_after)


def test_wrong_secret_unknown_user_and_unrenderable_cards_give_up(fake, clock):
    deps = Deps(http=requests.Session(), clock=clock, sessions=None)  # type: ignore[arg-type]
    bad = WeComPlatform(
        BotConfig(
            "w",
            "wecom",
            {"corp_id": CORP, "agent_id": AGENT, "api_base": fake.url},
            {"secret": Secret("wrong"), "token": Secret(TOKEN), "aes_key": Secret(AES)},
        ),
        deps,
    )
    with pytest.raises(DeliveryError) as err:
        bad.send(out(plan_receipt()))
    assert (err.value.retry, err.value.code) == (False, "40001")
    good = WeComPlatform(make_bot(fake.url), deps)
    with pytest.raises(DeliveryError) as err:
        good.send(out(plan_receipt(), target="NoSuchUser"))
    assert (err.value.retry, err.value.code) == (False, "81013")
    with pytest.raises(DeliveryError) as err:
        good.send(out(Card("计划", form=Form("plan.submit", (Input("items", "计划"),)))))
    assert (err.value.retry, err.value.code) == (False, "render")


def test_errors_never_carry_the_secret_token_or_robot_key(clock):
    deps = Deps(http=requests.Session(), clock=clock, sessions=None)  # type: ignore[arg-type]
    wecom = WeComPlatform(make_bot("http://127.0.0.1:9", timeout=0.5), deps)  # nothing listens on port 9
    with pytest.raises(DeliveryError) as err:
        wecom.send(out(plan_receipt()))
    assert err.value.retry and "app-secret" not in str(err.value) and "corpsecret" not in str(err.value)
    with pytest.raises(DeliveryError) as err:
        wecom.send(
            out(
                lag_alert(),
                channel="webhook",
                target="ops",
                extra={
                    "allow_private": "true",
                    "url": "http://127.0.0.1:9/cgi-bin/webhook/send?key=SECRETKEY",
                },
            )
        )
    assert err.value.retry and "SECRETKEY" not in str(err.value)


def test_a_long_card_goes_as_markdown_then_card_and_a_retry_resumes_where_it_stopped(wecom, fake):
    card = monday_summary(rows=40)
    parts = render.app_messages(card, task_id="pl-x", fallback_url="http://planloop.test")
    assert len(parts) >= 3
    fake.fail_next("message/send", errcode=45009, after=1)
    message = out(card)
    with pytest.raises(DeliveryError) as err:
        wecom.send(message)
    assert err.value.retry and len(fake.sent) == 1
    result = wecom.send(message)  # the relay's retry of the same outbox row
    assert [m["msgtype"] for m in fake.sent] == [p["msgtype"] for p in parts]
    # a text_notice card has no callbacks, so WeCom gives no response_code to keep
    assert fake.sent[-1]["template_card"]["card_type"] == "text_notice" and result.reply_handle is None


def test_a_reply_to_a_click_is_a_new_message_not_an_update(wecom, fake):
    """dispatch keeps the click's response_code on the reply row; only the update channel spends it."""
    _, code = fake.click_xml("LiLei", "plan.form")
    wecom.send(out(plan_receipt(), reply_handle=code))
    assert len(fake.sent) == 1 and fake.updates == [] and not fake.response_codes[code]["used"]


def test_update_replaces_the_clicked_card_once(wecom, fake):
    _, code = fake.click_xml("LiLei", "plan.confirm")
    new = Card(
        "计划已确认",
        theme="green",
        blocks=(Markdown("第48周计划已确认。"),),
        buttons=(Button("查看详情", url="http://planloop.test/p/x"),),
    )
    wecom.send(out(new, channel="update", reply_handle=code))
    (update,) = fake.updates
    assert (update["response_code"], update["userids"], update["agentid"]) == (code, ["LiLei"], AGENT)
    assert update["template_card"]["main_title"]["title"] == "计划已确认"
    with pytest.raises(DeliveryError) as err:  # single use
        wecom.send(out(new, channel="update", reply_handle=code, id="again"))
    assert (err.value.retry, err.value.code) == (False, "40058")


def test_update_with_only_a_toast_turns_the_button_grey(wecom, fake):
    _, code = fake.click_xml("LiLei", "plan.confirm")
    wecom.send(out(Card("", toast="已确认"), channel="update", reply_handle=code))
    assert fake.updates[0]["button"] == {"replace_name": "已确认"}
    with pytest.raises(DeliveryError, match="response_code"):
        wecom.send(out(Card("", toast="已确认"), channel="update"))


def test_lag_alert_and_monday_summary_reach_the_group_robot(wecom, fake):
    url = fake.add_robot("robot-ops")
    wecom.send(out(lag_alert(), channel="webhook", target="ops", extra={"allow_private": "true", "url": url}))
    wecom.send(
        out(
            monday_summary(rows=60),
            channel="webhook",
            target="ops",
            extra={"allow_private": "true", "url": url},
            id="m2",
        )
    )
    got = fake.robot["robot-ops"]
    assert got[0]["msgtype"] == "markdown" and "进度落后提醒：李雷" in got[0]["markdown"]["content"]
    assert got[0]["markdown"]["content"].endswith("<@LiLei>")
    summary = got[1:]
    assert [m["msgtype"] for m in summary] == ["markdown", "markdown", "text"]
    whole = "".join(m["markdown"]["content"] for m in summary[:2])
    assert all(f"第{i}项" in whole for i in range(1, 61))
    assert summary[-1]["text"]["mentioned_list"] == ["@all"]


def test_the_robot_allows_twenty_a_minute_and_the_21st_waits(wecom, fake, clock):
    url = fake.add_robot("busy")
    for n in range(20):
        wecom.send(
            out(
                lag_alert(),
                channel="webhook",
                target="ops",
                extra={"allow_private": "true", "url": url},
                id=f"r{n}",
            )
        )
    with pytest.raises(DeliveryError) as err:
        wecom.send(
            out(
                lag_alert(),
                channel="webhook",
                target="ops",
                extra={"allow_private": "true", "url": url},
                id="r20",
            )
        )
    assert (err.value.retry, err.value.retry_after, err.value.code) == (True, 60.0, "45009")
    clock.advance(seconds=61)
    wecom.send(
        out(
            lag_alert(),
            channel="webhook",
            target="ops",
            extra={"allow_private": "true", "url": url},
            id="r20",
        )
    )
    assert len(fake.robot["busy"]) == 21


@pytest.mark.parametrize(
    "extra, code",
    [
        ({}, "no_webhook"),
        ({"url": "not a url"}, "no_webhook"),
        ({"allow_private": "true", "url": "FAKE/cgi-bin/webhook/send?key=unknown"}, "93000"),
    ],
)
def test_robot_configuration_errors_give_up(wecom, fake, extra, code):
    extra = {k: v.replace("FAKE", fake.url) for k, v in extra.items()}
    with pytest.raises(DeliveryError) as err:
        wecom.send(out(lag_alert(), channel="webhook", target="ops", extra=extra))
    assert (err.value.retry, err.value.code) == (False, code)


def test_app_chat_gets_markdown_and_an_unknown_chat_gives_up(wecom, fake):
    fake.chats.add("wrOgQhDgAAh")
    wecom.send(out(lag_alert(), channel="chat", target="wrOgQhDgAAh"))
    assert fake.chat_messages[0]["msgtype"] == "markdown"
    with pytest.raises(DeliveryError) as err:
        wecom.send(out(lag_alert(), channel="chat", target="wrNOPE"))
    assert err.value.code == "86003"
    with pytest.raises(DeliveryError) as err:
        wecom.send(out(lag_alert(), channel="carrier-pigeon"))
    assert err.value.code == "channel"


def test_limits_key_the_robot_by_a_hash_of_its_url(wecom):
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    (robot,) = wecom.limits(out(lag_alert(), channel="webhook", extra={"allow_private": "true", "url": url}))
    assert (robot.count, robot.per_seconds) == (20, 61)  # 20 a minute, with a second of margin
    assert "693a91f6" not in robot.key and robot.key.startswith("wecom-robot:")
    other = wecom.limits(
        out(lag_alert(), channel="webhook", extra={"allow_private": "true", "url": url + "b"})
    )[0]
    assert other.key != robot.key
    per_user = wecom.limits(out(plan_receipt()))
    assert [(r.count, r.per_seconds) for r in per_user] == [(30, 60), (1000, 3600)]
    assert wecom.limits(out(plan_receipt(), channel="chat")) == []
