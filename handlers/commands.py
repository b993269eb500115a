"""Text commands (帮助, 写计划, 计划 …): the first word picks the handler."""

from __future__ import annotations

from cards.model import Card, Markdown
from handlers.inbound import Inbound
from handlers.router import Context, router

HELP = (
    "**可用命令**\n"
    "写计划 / plan —— 打开本周计划表单\n"
    "计划（换行后每行一项：内容 指标 目标）—— 用文字提交本周计划\n"
    "进度 / progress —— 查看本周进度\n"
    "考核 —— 查看上周考核结果\n"
    "帮助 / help —— 显示本帮助"
)


@router.command("帮助", "help", "?", "？", public=True)
@router.fallback
def help_card(event: Inbound, ctx: Context) -> Card:
    return Card(title="planloop 帮助", blocks=(Markdown(HELP),))
