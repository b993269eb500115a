"""Text commands (帮助, 写计划, 计划 …): the first word picks the handler; 帮助 lists them all."""

from __future__ import annotations

from cards.model import Card, Markdown
from handlers.inbound import Inbound
from handlers.router import Context, router

HELP_MEMBER = (
    "**可用命令**\n"
    "写计划 / plan —— 打开本周计划表单\n"
    "计划（换行后每行一项：事项 指标 目标）—— 用文字提交本周计划；只发“计划”查看本周计划\n"
    "进度 [我 | 姓名 | 2026-W47] / progress —— 查看本周进度（组长默认看全组）\n"
    "考核 [2026-W47] / appraisal —— 查看最近一次考核结果和计算过程，可在卡片上申诉\n"
    "请假 至 12-01 / leave —— 登记请假（期间不发计划提醒）；销假 / back —— 提前结束\n"
    "暂停提醒 / 恢复提醒 —— 关闭或重新打开自己的计划提醒\n"
    "帮助 / help —— 显示本帮助"
)
HELP_LEADER = (
    "**组长命令**\n"
    "请假 姓名 至 12-01 / 销假 姓名 —— 为成员登记或结束请假\n"
    "解锁 姓名 —— 允许成员在截止后再改一次本周计划\n"
    "评分 / rate —— 给评分类指标打星、登记清单类任务完成数\n"
    "切换模板 [模板id 至 12-01] —— 切换团队的考核模板；恢复模板 —— 恢复按规则自动选择\n"
    "暂停团队提醒 至 02-20 / 恢复团队提醒 —— 暂停或恢复全组的计划提醒（如春节）"
)

HELP_MEMBER_EN = (
    "**Commands**\n"
    "plan / 写计划 —— open this week's plan form\n"
    "plan (then one item per line: what KPI target) —— file this week's plan as text\n"
    "progress [me | NAME | 2026-W47] —— this week's progress (a leader sees the team)\n"
    "appraisal [2026-W47] —— your latest appraisal and how it was computed; appeal on the card\n"
    "leave until 12-01 —— record a leave (no plan reminders meanwhile); back —— end it early\n"
    "pause-reminders / resume-reminders —— turn your plan reminders off or on\n"
    "help —— this list"
)
HELP_LEADER_EN = (
    "**Leaders**\n"
    "leave NAME until 12-01 / back NAME —— record or end a member's leave\n"
    "解锁 NAME —— let a member change this week's plan once after the deadline\n"
    "rate —— star a rating KPI or record a checklist's tasks done\n"
    "switch-template [TEMPLATE until 12-01] —— switch the team's appraisal template; 恢复模板 —— back to the rules\n"
    "pause-team-reminders until 02-20 / resume-team-reminders —— pause or resume the team's plan reminders"
)


@router.command("帮助", "help", "?", "？", public=True)
@router.fallback
def help_card(event: Inbound, ctx: Context) -> Card:
    """The commands this person may use: a leader's only for someone who leads a team."""
    english = ctx.locale == "en-US"
    text = HELP_MEMBER_EN if english else HELP_MEMBER
    if ctx.leads_a_team():
        text += "\n\n" + (HELP_LEADER_EN if english else HELP_LEADER)
    return Card(title="planloop help" if english else "planloop 帮助", blocks=(Markdown(text),))
