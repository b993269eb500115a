"""An app with one bot of every platform plus the simulator, for the hostile-input tests (issue 17).

The bots point at port 9 (nothing listens): inbound parsing never needs the network.
"""

from __future__ import annotations

from dataclasses import replace

from bot.config import BotConfig, Secret
from tests.fakes import feishu as ff
from tests.fakes.dingtalk import robot_sign

DT_APP_SECRET = "fake-app-secret-0123456789"
DT_TOKEN = "dingtoken"
AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

WEBHOOK_URLS = {
    "feishu": "/webhooks/feishu/feishu-main",
    "dingtalk-event": "/webhooks/dingtalk/dingtalk-main",
    "dingtalk-robot": "/webhooks/dingtalk/dingtalk-main/robot",
    "wecom": "/webhooks/wecom/wecom-main",
    "sim-say": "/sim/api/say",
    "sim-act": "/sim/api/act",
}


def bots() -> tuple[BotConfig, ...]:
    dingtalk = BotConfig(
        "dingtalk-main",
        "dingtalk",
        {"app_key": "dingfakeappkey", "api_base": "http://127.0.0.1:9", "oapi_base": "http://127.0.0.1:9"},
        {"app_secret": Secret(DT_APP_SECRET), "token": Secret(DT_TOKEN), "aes_key": Secret(AES)},
    )
    wecom = BotConfig(
        "wecom-main",
        "wecom",
        {"corp_id": "wwcorp", "agent_id": "1000002", "api_base": "http://127.0.0.1:9"},
        {"secret": Secret("app-secret"), "token": Secret("wtoken"), "aes_key": Secret(AES)},
    )
    return (ff.bot_config(), dingtalk, wecom)


def make_app(settings, engine, clock):  # noqa: ANN001, ANN201
    from bot.services import build_services
    from bot.web.app import create_app

    cfg = replace(settings, bots=bots(), simulator=True)
    services = build_services(cfg, clock=clock, engine=engine)
    app = create_app(cfg, services)
    app.testing = False  # exceptions become answers, as in production
    return app, services


def robot_headers(clock) -> dict[str, str]:  # noqa: ANN001
    """Genuine DingTalk robot-callback headers for now."""
    ts = str(int(clock().timestamp() * 1000))
    return {"timestamp": ts, "sign": robot_sign(DT_APP_SECRET, ts)}
