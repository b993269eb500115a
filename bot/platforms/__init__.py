"""One module per chat platform, all with the face of base.Platform; ``build`` makes one per bot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from sqlalchemy.orm import Session, sessionmaker

from bot.config import BotConfig
from bot.platforms.base import Platform


@dataclass
class Deps:
    """What an adapter may use: an HTTP session (tests point api_base at a fake), the clock, the DB."""

    http: requests.Session
    clock: Callable[[], datetime]
    sessions: sessionmaker[Session]
    public_url: str = ""
    extra: dict[str, Any] | None = None


def build(bot: BotConfig, deps: Deps) -> Platform:
    if bot.platform == "simulator":
        from bot.platforms.simulator import SimulatorPlatform

        return SimulatorPlatform(bot.id, deps)
    if bot.platform == "feishu":
        from bot.platforms.feishu import FeishuPlatform

        return FeishuPlatform(bot, deps)
    if bot.platform == "dingtalk":
        from bot.platforms.dingtalk import DingTalkPlatform

        return DingTalkPlatform(bot, deps)
    if bot.platform == "wecom" and bot.get("connection") == "stream":
        from bot.platforms.wecom_aibot import WeComAIBotPlatform

        return WeComAIBotPlatform(bot, deps)
    if bot.platform == "wecom":
        from bot.platforms.wecom import WeComPlatform

        return WeComPlatform(bot, deps)
    raise ValueError(f"unknown platform {bot.platform}")
