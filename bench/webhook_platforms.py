"""Signed platform requests for bench/webhook_wrk.py, made with each adapter's own signing twin
(and the Feishu fake's event builders), stamped with the real clock: `planloop serve` checks
the signed timestamp against its own time."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

BOTS_TOML = """
[[bots]]
id = "feishu-main"
platform = "feishu"
app_id = "cli_fake_app"
app_secret = "fake-app-secret"
encrypt_key = "fake-encrypt-key"
verification_token = "fake-verification-token"
api_base = "http://127.0.0.1:9"

[[bots]]
id = "dingtalk-main"
platform = "dingtalk"
app_key = "dingbenchapp"
app_secret = "bench-dingtalk-app-secret"
token = "benchtoken"
aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
robot_code = "dingbenchapp"
api_base = "http://127.0.0.1:9"
oapi_base = "http://127.0.0.1:9"

[[bots]]
id = "wecom-main"
platform = "wecom"
corp_id = "ww0123456789abcdef"
agent_id = 1000002
secret = "bench-wecom-secret"
token = "QDG6eK"
aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
api_base = "http://127.0.0.1:9"
"""

FEISHU_PEOPLE = ["ou_lilei", "ou_hanmeimei", "ou_zhangwei", "ou_liuyang", "ou_chenjing"]
DINGTALK_PEOPLE = ["0102", "0103", "0101"]
WECOM_PEOPLE = ["LiLei", "HanMeimei", "ZhangWei"]

Built = tuple[str, dict[str, str], bytes]


def _now() -> datetime:
    return datetime.now(UTC)


def feishu_text(i: int, run: str) -> Built:
    from tests.fakes import feishu as ff

    payload = ff.text_message(
        "帮助", open_id=FEISHU_PEOPLE[i % len(FEISHU_PEOPLE)], chat_type="p2p", event_id=f"{run}-{i}"
    )
    event = ff.deliver(payload, now=_now())
    return "POST", event.headers, event.body


def feishu_plan(i: int, run: str) -> Built:
    """A plan form submitted from the card: validated, stored as a new version, receipt card answered."""
    from tests.fakes import feishu as ff

    year, week, _ = _now().astimezone(ZoneInfo("Asia/Shanghai")).isocalendar()
    form = {
        "item1_text": "优化详情页首屏",
        "item1_kpi": "conversion_rate",
        "item1_target": f"+{1 + i % 2}%",
        "item2_text": "主图测试",
        "item2_kpi": "ctr",
        "item2_target": "+0.5pp",
    }
    payload = ff.card_action(
        {"action": "plan.submit", "week": f"{year}-W{week:02d}"},
        form_value=form,
        open_id=FEISHU_PEOPLE[i % len(FEISHU_PEOPLE)],
        event_id=f"{run}-{i}",
    )
    event = ff.deliver(payload, now=_now())
    return "POST", event.headers, event.body


def dingtalk_robot(i: int, run: str) -> Built:
    from bot.platforms.dingtalk import sign_robot

    ts = str(int(time.time() * 1000))
    body: dict[str, Any] = {
        "msgId": f"{run}-{i}",
        "msgtype": "text",
        "text": {"content": "帮助"},
        "conversationType": "1",
        "conversationId": "cid-bench",
        "senderStaffId": DINGTALK_PEOPLE[i % len(DINGTALK_PEOPLE)],
        "senderNick": "bench",
        "robotCode": "dingbenchapp",
        "createAt": int(ts),
    }
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "timestamp": ts,
        "sign": sign_robot("bench-dingtalk-app-secret", ts),
    }
    return "POST", headers, json.dumps(body, ensure_ascii=False).encode()


def wecom_text(i: int, run: str) -> tuple[str, dict[str, str], bytes, str]:
    from bot.platforms.crypto import WxEnvelope
    from bot.platforms.wecom import sign_callback

    corp = "ww0123456789abcdef"
    user = WECOM_PEOPLE[i % len(WECOM_PEOPLE)]
    msg_id = int(run, 16) * 10**7 + i  # unique per request: WeCom's dedupe key
    xml = (
        f"<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[{user}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[帮助]]></Content><MsgId>{msg_id}</MsgId><AgentID>1000002</AgentID></xml>"
    )
    envelope = WxEnvelope("QDG6eK", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", corp)
    args, body = sign_callback(envelope, xml, str(int(time.time())), uuid.uuid4().hex[:10], "1000002")
    return "POST", {"Content-Type": "text/xml"}, body, "?" + urlencode(args)


def paths() -> tuple[list[dict[str, Any]], list[str]]:
    """Path specs for webhook_wrk.Path_, and notes on platforms this checkout lacks."""
    out: list[dict[str, Any]] = []
    missing: list[str] = []
    try:
        import bot.platforms.feishu  # noqa: F401

        out.append(
            dict(
                name="feishu-text",
                url="/webhooks/feishu/feishu-main",
                build=feishu_text,
                note="Feishu im.message 帮助 (encrypted, signed; reply via outbox)",
            )
        )
        out.append(
            dict(
                name="feishu-plan",
                url="/webhooks/feishu/feishu-main",
                build=feishu_plan,
                note="Feishu card form submit: a 2-item plan stored, receipt card in the answer",
            )
        )
    except ImportError:
        missing.append("feishu: no adapter")
    try:
        import bot.platforms.dingtalk  # noqa: F401

        out.append(
            dict(
                name="dingtalk-robot",
                url="/webhooks/dingtalk/dingtalk-main/robot",
                build=dingtalk_robot,
                note="DingTalk robot message 帮助 (HMAC-signed headers)",
            )
        )
    except ImportError:
        missing.append("dingtalk: no adapter")
    try:
        import bot.platforms.wecom  # noqa: F401

        out.append(
            dict(
                name="wecom-text",
                url="/webhooks/wecom/wecom-main",
                build=wecom_text,
                note="WeCom encrypted XML text 帮助 (msg_signature query)",
            )
        )
    except ImportError:
        missing.append("wecom: no adapter")
    return out, missing
