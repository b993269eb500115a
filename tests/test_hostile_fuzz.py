"""Issue 17: generated bodies to each platform's parser and the simulator API: never a 5xx, never a
traceback. Bounded example counts keep it to seconds in CI (FUZZ_EXAMPLES raises them by hand)."""

from __future__ import annotations

import json
import logging
import os
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fakes import feishu as ff
from tests.fakes.dingtalk import FakeDingTalk
from tests.hostile import AES, DT_APP_SECRET, DT_TOKEN, WEBHOOK_URLS, make_app, robot_headers

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Keys the parsers look for, so generated objects reach past the first type check.
KEYS = st.sampled_from(
    ["as", "chat", "text", "action", "values", "id", "msgId", "msgtype", "conversationType", "senderStaffId",
     "conversationId", "content", "richText", "encrypt", "type", "challenge", "token", "header", "event",
     "schema", "message", "sender", "operator", "EventType", "userId", "outTrackId", "cardPrivateData",
     "params", "value", "spaceType", "spaceId", "sessionWebhook", "form_value", "option", "name", "tag"]
)  # fmt: skip
shaped = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(KEYS | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=25,
)
bodies = (
    st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | shaped.map(lambda v: json.dumps(v, ensure_ascii=False).encode())
    | st.text(max_size=200).map(lambda t: f"<xml><Encrypt>{t}</Encrypt></xml>".encode())
    | st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n)
)


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.ERROR:
            self.bad.append(record)


@pytest.fixture
def fuzz(settings, engine, clock):
    app, services = make_app(settings, engine, clock)
    recorder = Recorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    try:
        yield app.test_client(), recorder
    finally:
        root.removeHandler(recorder)


def _check(response, recorder: Recorder) -> None:
    assert response.status_code < 500, response.data[:300]
    assert not recorder.bad, [(r.getMessage(), r.exc_info) for r in recorder.bad]


@pytest.mark.parametrize("where", sorted(WEBHOOK_URLS))
def test_raw_bodies_never_fail_the_service(fuzz, clock, where):
    client, recorder = fuzz

    @FUZZ
    @given(body=bodies, query=st.dictionaries(st.sampled_from(["signature", "timestamp", "nonce", "msg_signature", "timeStamp", "echostr"]), st.text(max_size=20), max_size=4))  # fmt: skip
    def run(body: bytes, query: dict[str, str]) -> None:
        clock.advance(seconds=1)
        headers = robot_headers(clock) if where == "dingtalk-robot" else {}
        url = WEBHOOK_URLS[where] + ("?" + urlencode(query) if query else "")
        _check(client.post(url, data=body, headers=headers, content_type="application/json"), recorder)

    run()


def test_signed_feishu_events_with_any_content(fuzz, clock):
    client, recorder = fuzz

    @FUZZ
    @given(event=shaped)
    @example(event={"schema": "2.0", "header": []})  # found by this test: a 503 before the fix
    @example(event={"schema": "2.0", "header": "x", "event": []})
    def run(event) -> None:
        clock.advance(seconds=1)
        payload = event if isinstance(event, dict) else {"event": event}
        sealed = ff.deliver(payload, now=clock())
        _check(client.post(WEBHOOK_URLS["feishu"], data=sealed.body, headers=sealed.headers), recorder)

    run()


def test_signed_dingtalk_events_with_any_content(fuzz, clock):
    client, recorder = fuzz
    dingtalk = FakeDingTalk(clock, app_secret=DT_APP_SECRET, token=DT_TOKEN, aes_key=AES)

    @FUZZ
    @given(event=shaped, kind=st.sampled_from(["actionCallback", "check_url", "other"]))
    def run(event, kind: str) -> None:
        clock.advance(seconds=1)
        plain = {**(event if isinstance(event, dict) else {"value": event}), "EventType": kind}
        args, body = dingtalk.event(plain)
        url = f"{WEBHOOK_URLS['dingtalk-event']}?{urlencode(args)}"
        _check(client.post(url, data=body, content_type="application/json"), recorder)

    run()


def test_simulator_api_with_generated_calls(fuzz, demo_team, clock):
    client, recorder = fuzz
    people = st.sampled_from(["lilei", "zhangwei", "hanmeimei", "nobody", ""]) | st.text(max_size=10)

    @FUZZ
    @given(
        who=people,
        chat=st.sampled_from(["dm", "ops", "x"]) | json_values,
        text=st.text(max_size=300) | json_values,
        action=st.sampled_from(["plan.submit", "appeal.submit", "progress.refresh", "x"]) | json_values,
        values=st.dictionaries(st.text(max_size=20), json_values, max_size=6) | json_values,
    )
    def run(who, chat, text, action, values) -> None:
        clock.advance(seconds=1)
        said = client.post("/sim/api/say", json={"as": who, "chat": chat, "text": text})
        _check(said, recorder)
        acted = client.post(
            "/sim/api/act", json={"as": who, "chat": chat, "action": action, "values": values}
        )
        _check(acted, recorder)

    run()


WECOM_TAGS = st.sampled_from(
    ["MsgType", "Content", "FromUserName", "ToUserName", "MsgId", "Event", "EventKey", "TaskId", "CardType",
     "ResponseCode", "AgentID", "CreateTime", "SelectedItems", "SelectedItem", "QuestionKey", "OptionIds",
     "OptionId", "ChatId", "ChatType"]
)  # fmt: skip
xml_nodes = st.recursive(
    st.text(max_size=30).map(lambda t: t.replace("]]>", "")),
    lambda inner: st.lists(st.tuples(WECOM_TAGS, inner), max_size=5).map(
        lambda kids: "".join(f"<{k}>{v if v.startswith('<') else f'<![CDATA[{v}]]>'}</{k}>" for k, v in kids)
    ),
    max_leaves=15,
)


def test_signed_wecom_messages_with_any_xml(fuzz, clock):
    """Sealed and signed by wechatpy (an independent implementation), so the XML parser is reached."""
    from xml.etree import ElementTree

    from wechatpy.enterprise.crypto import WeChatCrypto

    client, recorder = fuzz
    crypto = WeChatCrypto("wtoken", AES, "wwcorp")

    @FUZZ
    @given(
        inner=xml_nodes,
        kind=st.sampled_from(["text", "event", "template_card_event", "image", "x"]),
        who=st.sampled_from(["LiLei", "ZhangWei"]) | st.text(max_size=10).map(lambda t: t.replace("]]>", "")),
    )
    def run(inner: str, kind: str, who: str) -> None:
        clock.advance(seconds=1)
        ts = str(int(clock().timestamp()))
        head = f"<MsgType><![CDATA[{kind}]]></MsgType><FromUserName><![CDATA[{who}]]></FromUserName>"
        xml = f"<xml>{head}{inner}</xml>"
        sealed = ElementTree.fromstring(crypto.encrypt_message(xml, "nonce1", ts))
        args = {"msg_signature": sealed.findtext("MsgSignature"), "timestamp": ts, "nonce": "nonce1"}
        body = f"<xml><Encrypt><![CDATA[{sealed.findtext('Encrypt')}]]></Encrypt></xml>".encode()
        url = f"{WEBHOOK_URLS['wecom']}?{urlencode(args)}"
        _check(client.post(url, data=body, content_type="text/xml"), recorder)

    run()
