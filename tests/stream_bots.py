"""The three ``connection = "stream"`` bots pointed at their fakes, and a polling wait.

Shared by the per-platform stream tests (test_feishu_stream.py, test_dingtalk_stream.py,
test_wecom_stream.py), the three-platforms-at-once worker test (test_streams_e2e.py) and the
doctor's stream checks. The bot ids are the ones examples/team.toml names people on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.config import BotConfig, Secret
from tests.fakes import feishu as ff
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom_aibot import FakeWeComAIBot

DINGTALK_TEMPLATE = "tpl-planloop.schema"
AIBOT = "aib-planloop-01"
AIBOT_SECRET = "aibot-secret-0123"


def feishu_stream_bot(api_base: str, **values: Any) -> BotConfig:
    """Feishu on its long connection: no encrypt key nor verification token (no callbacks)."""
    bot: BotConfig = ff.bot_config(
        api_base, encrypt_key=None, verification_token=None, connection="stream", **values
    )
    return bot


def dingtalk_stream_bot(fake: FakeDingTalk, app_secret: str | None = None, **values: Any) -> BotConfig:
    plain = {
        "connection": "stream",
        "app_key": fake.app_key,
        "robot_code": fake.robot_code,
        "api_base": fake.url,
        "oapi_base": fake.url,
        "card_template_id": DINGTALK_TEMPLATE,
        **values,
    }
    return BotConfig(
        "dingtalk-main", "dingtalk", plain, {"app_secret": Secret(app_secret or fake.app_secret)}
    )


def wecom_stream_bot(fake: FakeWeComAIBot, secret: str = AIBOT_SECRET, **values: Any) -> BotConfig:
    """The WeCom 智能机器人 (AI bot) on its long connection, dialling the fake instead of WeCom."""
    return BotConfig(
        "wecom-main",
        "wecom",
        {"connection": "stream", "bot_id": AIBOT, "ws_url": fake.url, **values},
        {"bot_secret": Secret(secret)},
    )


def until(predicate: Callable[[], Any], seconds: float = 5.0) -> Any:
    """The predicate's first truthy value within ``seconds`` (polled), else None."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value or None
        time.sleep(0.02)
