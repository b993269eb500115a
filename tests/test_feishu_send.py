"""Feishu outbound through the fake open platform: token life, send/update/robot, failure classes, limits."""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta

import pytest
import requests
from requests.adapters import HTTPAdapter

from bot.platforms import Deps
from bot.platforms import feishu as feishu_module
from bot.platforms.base import DeliveryError, Outbound
from bot.platforms.feishu import FeishuPlatform, sign_webhook
from cards.model import Button, Card, Form, Input, Markdown
from cards.render.feishu import render
from tests.fakes import feishu as ff

CARD = Card(
    "本周进度",
    blocks=(Markdown("**支付转化率** 3.00 % → 3.06 %"),),
    buttons=(Button("查看", "progress.open"),),
)


@pytest.fixture
def fake(clock):
    server = ff.FakeFeishu(clock=clock)
    with server.running():
        yield server


def make(fake_or_base, clock, **kwargs) -> FeishuPlatform:
    base = fake_or_base if isinstance(fake_or_base, str) else fake_or_base.base_url
    return FeishuPlatform(
        ff.bot_config(base, **kwargs), Deps(http=requests.Session(), clock=clock, sessions=None)
    )


def out(
    channel: str = "chat", target: str = "oc_team", *, id: str = "m-1", card: Card = CARD, **kw
) -> Outbound:
    return Outbound(id=id, channel=channel, target=target, card=card, **kw)


# --- sending ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "channel, target, id_type", [("chat", "oc_team", "chat_id"), ("user", "ou_lilei", "open_id")]
)
def test_send_posts_the_card_as_a_json_string_with_the_outbox_id_as_uuid(
    fake, clock, channel, target, id_type
):
    result = make(fake, clock).send(out(channel, target, id="outbox-42"))
    [sent] = fake.sent
    assert (sent.receive_id_type, sent.receive_id, sent.uuid) == (id_type, target, "outbox-42")
    assert sent.card == render(CARD)
    assert result.platform_message_id == sent.message_id == result.reply_handle


def test_the_token_is_fetched_once_and_reused(fake, clock):
    p = make(fake, clock)
    for n in range(3):
        p.send(out(id=f"m-{n}"))
    assert fake.token_requests == 1 and len(fake.sent) == 3


def test_the_token_is_refreshed_early(fake, clock):
    p = make(fake, clock)
    p.send(out(id="a"))
    clock.advance(seconds=7200 - 30 * 60 - 1)  # just before the last half hour: still cached
    p.send(out(id="b"))
    assert fake.token_requests == 1
    clock.advance(seconds=2)  # inside the last half hour: Feishu would hand out a new one
    p.send(out(id="c"))
    assert fake.token_requests == 2


def test_an_expired_token_is_refreshed_once_and_the_send_goes_through(fake, clock):
    p = make(fake, clock)
    p.send(out(id="a"))
    fake.expire_tokens()
    p.send(out(id="b"))
    assert fake.token_requests == 2 and [s.uuid for s in fake.sent] == ["a", "b"]
    assert fake.requests.count(("POST", "/open-apis/im/v1/messages")) == 3  # a, b refused, b again


def test_a_token_refused_twice_is_retried_later(fake, clock):
    p = make(fake, clock)
    fake.fail_next(
        "/open-apis/im/v1/messages",
        times=2,
        status=400,
        code=99991663,
        msg="Invalid access token",
        reset=None,
    )
    with pytest.raises(DeliveryError) as err:
        p.send(out())
    assert err.value.retry and err.value.code == "99991663" and fake.token_requests == 2


def test_concurrent_senders_share_one_token_fetch(fake, clock):
    p = make(fake, clock)
    errors: list[Exception] = []

    def worker(n: int) -> None:
        try:
            p.send(out(id=f"t-{n}"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and fake.token_requests == 1 and len(fake.sent) == 8


def test_update_by_message_id_patches_the_sent_card(fake, clock):
    p = make(fake, clock)
    first = p.send(out(id="a"))
    new = Card("本周进度（已更新）", theme="green")
    p.send(out("update", "", id="u", card=new, reply_handle=first.reply_handle))
    assert fake.patched == [(first.platform_message_id, render(new))]


def test_update_by_callback_token_sends_the_card_object_and_the_token_wears_out(fake, clock):
    p = make(fake, clock)
    fake.issue_callback_token("c-abc")
    new = Card("已处理", theme="green")
    for n in range(2):
        p.send(out("update", "", id=f"u{n}", card=new, reply_handle="token:c-abc"))
    assert fake.card_updates == [("c-abc", render(new))] * 2
    with pytest.raises(DeliveryError) as err:
        p.send(out("update", "", id="u3", card=new, reply_handle="token:c-abc"))
    assert not err.value.retry and err.value.code == "300040"


def test_lark_is_a_different_api_base(clock):
    seen: list[str] = []

    class Recorder(HTTPAdapter):
        def send(self, request, **kwargs):  # noqa: ANN001, ANN003, ANN201
            seen.append(request.url)
            raise requests.ConnectionError("recorded, not sent")

    http = requests.Session()
    http.mount("https://", Recorder())
    p = FeishuPlatform(
        ff.bot_config("https://open.larksuite.com"), Deps(http=http, clock=clock, sessions=None)
    )
    with pytest.raises(DeliveryError) as err:
        p.send(out())
    assert seen == ["https://open.larksuite.com/open-apis/auth/v3/tenant_access_token/internal"]
    assert err.value.retry and err.value.code == "connection"
    default = FeishuPlatform(ff.bot_config(""), Deps(http=http, clock=clock, sessions=None))
    assert default.api_base == "https://open.feishu.cn"


# --- failure classes -----------------------------------------------------------------------------

FAILURES = [
    # status, code, retry, retry_after
    (429, 99991400, True, 2.0),
    (400, 99991400, True, 2.0),  # older APIs throttle with HTTP 400
    (400, 230020, True, None),
    (200, 11232, True, 60.0),  # a robot refusal has no reset header: the relay pauses it a minute
    (500, 0, True, None),
    (502, 1, True, None),
    (400, 230001, False, None),  # invalid parameter
    (400, 230002, False, None),  # the bot is not in the chat
    (400, 230027, False, None),  # no permission
    (403, 99991672, False, None),  # the app lacks the scope
    (400, 230025, False, None),  # content too long
]


@pytest.mark.parametrize("status, code, retry, retry_after", FAILURES)
def test_failures_are_classified_with_feishus_code(fake, clock, status, code, retry, retry_after):
    reset = 2.0 if retry_after == 2.0 else None  # the rows with 2.0 come with a reset header
    fake.fail_next("/open-apis/im/v1/messages", status=status, code=code, msg=f"msg-{code}", reset=reset)
    with pytest.raises(DeliveryError) as err:
        make(fake, clock).send(out())
    assert (err.value.retry, err.value.retry_after, err.value.code) == (retry, retry_after, str(code))
    assert f"msg-{code}" in str(err.value) and "log_id=fake-" in str(err.value)
    assert fake.sent == []


def test_a_timeout_is_retried(fake, clock, monkeypatch):
    monkeypatch.setattr(feishu_module, "HTTP_TIMEOUT", (1.0, 0.2))
    fake.fail_next("/open-apis/im/v1/messages", delay=0.6)
    with pytest.raises(DeliveryError) as err:
        make(fake, clock).send(out())
    assert err.value.retry and err.value.code == "timeout"


def test_a_refused_connection_is_retried(clock):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(DeliveryError) as err:
        make(f"http://127.0.0.1:{port}", clock).send(out())
    assert err.value.retry and err.value.code == "connection"


def test_wrong_app_secret_gives_up(fake, clock):
    fake.app_secret = "rotated"
    with pytest.raises(DeliveryError) as err:
        make(fake, clock).send(out())
    assert not err.value.retry and err.value.code == "10014" and "app secret invalid" in str(err.value)
    assert ff.APP_SECRET not in str(err.value)


def test_an_oversize_card_gives_up_before_calling_feishu(fake, clock):
    huge = Card("太长", blocks=tuple(Markdown("很长的说明 " * 400) for _ in range(10)))
    with pytest.raises(DeliveryError) as err:
        make(fake, clock).send(out(card=huge))
    assert not err.value.retry and err.value.code == "render" and "30" in str(err.value)
    assert fake.requests == []


def test_a_429_storm_ends_with_every_message_delivered_once(fake, clock):
    """A relay that retries on DeliveryError(retry=True): throttling, a lost answer, an expired token
    on the way — and still each outbox message is in the chat exactly once (uuid idempotency)."""
    p = make(fake, clock)
    fake.fail_next("/open-apis/im/v1/messages", times=25, status=429, code=99991400, reset=1.0)
    fake.lose_next_answer("/open-apis/im/v1/messages", delay=0.5, times=2)
    ids = [f"storm-{n}" for n in range(10)]
    pending = list(ids)
    waited = 0.0
    rounds = 0
    original = feishu_module.HTTP_TIMEOUT
    feishu_module.HTTP_TIMEOUT = (1.0, 0.25)
    try:
        while pending and rounds < 100:
            rounds += 1
            message_id = pending.pop(0)
            if rounds == 20:
                fake.expire_tokens()
            try:
                p.send(out(id=message_id))
            except DeliveryError as exc:
                assert exc.retry, exc
                waited += exc.retry_after or 0.0
                pending.append(message_id)
    finally:
        feishu_module.HTTP_TIMEOUT = original
    assert pending == []
    assert sorted(s.uuid for s in fake.sent) == sorted(ids)
    assert waited >= 25  # every 429 said "wait 1 s" and the relay was told so


# --- the custom group robot ------------------------------------------------------------------------


def test_robot_gets_a_signed_card_object(fake, clock):
    url = fake.add_robot("robot-secret")
    make(fake, clock).send(
        out("webhook", "ops", extra={"allow_private": "true", "url": url, "secret": "robot-secret"})
    )
    [post] = fake.robot_posts
    ts = str(int(clock().timestamp()))
    assert post["timestamp"] == ts and post["sign"] == sign_webhook(ts, "robot-secret")
    assert post["msg_type"] == "interactive" and isinstance(post["card"], dict)
    assert post["card"] == render(CARD, interactive=False)
    assert fake.token_requests == 0  # a robot needs no app token


def test_robot_signature_matches_the_documented_formula():
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"1700000000\nsec", b"", hashlib.sha256).digest()).decode()
    assert sign_webhook("1700000000", "sec") == expected


@pytest.mark.parametrize(
    "secret, skew, code",
    [("wrong-secret", 0, "19021"), ("robot-secret", 3601, "19021"), ("robot-secret", -3601, "19021")],
)
def test_robot_refuses_a_bad_sign_or_timestamp_and_we_give_up(fake, clock, secret, skew, code):
    url = fake.add_robot("robot-secret")
    p = make(fake, clock)
    p.deps.clock = lambda: clock() + timedelta(seconds=skew)
    with pytest.raises(DeliveryError) as err:
        p.send(out("webhook", "ops", extra={"allow_private": "true", "url": url, "secret": secret}))
    assert not err.value.retry and err.value.code == code and fake.robot_posts == []
    assert "robot-secret" not in str(err.value) and url not in str(err.value)


def test_unsigned_robot(fake, clock):
    url = fake.add_robot("")
    make(fake, clock).send(out("webhook", "ops", extra={"allow_private": "true", "url": url}))
    assert "sign" not in fake.robot_posts[0] and "timestamp" not in fake.robot_posts[0]


@pytest.mark.parametrize("lost_answer", [True, False])
def test_an_unanswered_robot_post_is_an_unknown_outcome_not_a_retry(fake, clock, monkeypatch, lost_answer):
    """A custom robot has no idempotency key: a post sent but not answered may be in the group.
    (Feishu acted, answer lost: the message is there; a connect failure: it surely is not.)"""
    monkeypatch.setattr(feishu_module, "HTTP_TIMEOUT", (1.0, 0.2))
    url = fake.add_robot("s")
    if lost_answer:
        fake.lose_next_answer("/open-apis/bot/v2/hook/", delay=0.6)
    else:
        url = "http://127.0.0.1:9/open-apis/bot/v2/hook/x"  # nothing listens: never sent
    with pytest.raises(DeliveryError) as err:
        make(fake, clock).send(
            out("webhook", "ops", extra={"allow_private": "true", "url": url, "secret": "s"})
        )
    assert (err.value.retry, err.value.code) == (
        (False, "outcome_unknown") if lost_answer else (True, "connection")
    )


def test_robot_throttle_11232_is_retried(fake, clock):
    url = fake.add_robot("s")
    p = make(fake, clock)
    for n in range(5):
        p.send(out("webhook", "ops", id=f"r{n}", extra={"allow_private": "true", "url": url, "secret": "s"}))
    with pytest.raises(DeliveryError) as err:
        p.send(out("webhook", "ops", id="r5", extra={"allow_private": "true", "url": url, "secret": "s"}))
    assert err.value.retry and err.value.code == "11232" and err.value.retry_after == 60.0
    clock.advance(seconds=1)
    p.send(out("webhook", "ops", id="r5", extra={"allow_private": "true", "url": url, "secret": "s"}))
    assert len(fake.robot_posts) == 6


def test_robot_cards_turn_forms_into_links_and_drop_callbacks(fake, clock):
    url = fake.add_robot("s")
    card = Card(
        "请填写本周计划",
        form=Form("plan.submit", (Input("item1_text", "事项"),), link="https://plan.example.com/p/abc"),
        buttons=(Button("提醒我", "remind"), Button("说明", url="https://plan.example.com/help")),
    )
    make(fake, clock).send(
        out("webhook", "ops", card=card, extra={"allow_private": "true", "url": url, "secret": "s"})
    )
    text = json.dumps(fake.robot_posts[0]["card"], ensure_ascii=False)
    assert '"callback"' not in text and '"form"' not in text
    assert "https://plan.example.com/p/abc" in text and "https://plan.example.com/help" in text


def test_robot_without_url_gives_up(fake, clock):
    with pytest.raises(DeliveryError) as err:
        make(fake, clock).send(out("webhook", "ops", extra={}))
    assert not err.value.retry and err.value.code == "config"


# --- limits -------------------------------------------------------------------------------------


def test_limits(clock):
    p = make("http://127.0.0.1:9", clock)
    robot = p.limits(
        out("webhook", "ops", extra={"url": "https://open.feishu.cn/open-apis/bot/v2/hook/SECRET"})
    )
    # a margin over 5/s and 100/min
    assert sorted((r.count, r.per_seconds) for r in robot) == [(5, 1.2), (100, 61.0)]
    assert all("SECRET" not in r.key for r in robot) and len({r.key for r in robot}) == 1
    chat = p.limits(out("chat", "oc_team"))
    assert {(r.key, r.count, r.per_seconds) for r in chat} == {
        (f"feishu:app:{ff.APP_ID}", 50, 1.0),
        (f"feishu:app:{ff.APP_ID}", 1000, 60.0),
        ("feishu:chat:oc_team", 5, 1.0),
    }
