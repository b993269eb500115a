"""One module per chat platform, all with the face of base.Platform; ``build`` makes one per bot."""

from __future__ import annotations

from bot.config import BotConfig
from bot.platforms.base import Deps, Platform

__all__ = ["Deps", "Platform", "build"]


def build(bot: BotConfig, deps: Deps) -> Platform:
    if bot.platform == "simulator":
        from bot.platforms.simulator import SimulatorPlatform

        return SimulatorPlatform(bot, deps)
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
