"""The texts of the digest, reminder and leave cards in zh-CN (the default) and en-US.

One key, one sentence per locale, ``str.format`` placeholders. ``texts(locale)`` gives a
small callable the builders and handlers use; an unknown locale falls back to zh-CN.
``tests/test_digest_cards.py`` checks both catalogues have the same keys and placeholders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

DEFAULT = "zh-CN"

ZH: dict[str, str] = {
    # shared words
    "no_data": "暂无数据",
    "none": "无",
    "sep": "、",
    "people": "{count} 人",
    "button.fill": "填写计划",
    "button.web": "在网页中填写",
    "button.team_progress": "查看团队进度",
    "button.remind_again": "再提醒一次",
    "button.leave": "{name}本周请假",
    # plan reminders
    "reminder.title": "提醒：填写 {week} 周计划",
    "reminder.nudge_title": "{leader}提醒：填写 {week} 周计划",
    "reminder.body": (
        "{name}，本周（{days}）的计划还没有提交，请在 **{deadline}** 前提交："
        "每一项关联一个指标并写目标（+2pp / +2% / +0.5 / =3.5）。"
    ),
    "reminder.late_body": (
        "{name}，本周（{days}）的计划还没有提交。截止时间 {deadline} 已过，现在提交会记为迟交。"
    ),
    "reminder.hint": (
        "也可以直接发送“计划”，换行后每行一项：事项 指标 目标。"
        "请假请发送“请假 至 12-01”；不想收到计划提醒可发送“暂停提醒”。"
    ),
    "missing.title": "{team} · {week} 未提交计划 {count} 人",
    "missing.body": "截至 **{deadline}**，以下成员还没有提交本周（{days}）的计划：",
    "missing.member": "成员",
    "missing.state": "提醒",
    "missing.reminded": "已提醒",
    "missing.paused": "已暂停提醒",
    "missing.unreminded": "—",
    "missing.on_leave": "请假：{names}",
    "missing.hint": "迟交的计划仍可提交（记为迟交）。为成员登记请假：请假 姓名 至 12-01。",
    # the weekly appraisal table (leader)
    "table.title": "{team} · {week} 考核汇总",
    "table.body": "{count} 人的考核结果已于 {at} 发布，每人已私信收到自己的计算说明。",
    "table.member": "成员",
    "table.score": "得分",
    "table.grade": "等级",
    "table.template": "模板",
    "table.average": "平均得分",
    "table.grades": "等级分布",
    "table.version": "（第 {version} 版）",
    "table.note": "按得分从高到低排列。得分只发给本人和组长；成员可在自己的卡片上申诉。",
    # the start-of-week summary
    "summary.title": "{team} · 周初汇总 · {week}",
    "summary.title_leader": "{team} · 周初汇总 · {week}（组长版）",
    "summary.last_week": "上周",
    "summary.week_days": "{week}（{days}）",
    "summary.avg_completion": "平均完成度",
    "summary.avg_score": "平均得分",
    "summary.grades": "等级分布",
    "summary.planned": "本周已提交计划",
    "summary.planned_value": "{planned}/{eligible} 人",
    "summary.member": "成员",
    "summary.completion": "完成度",
    "summary.lagging_items": "落后",
    "summary.score": "得分",
    "summary.grade": "等级",
    "summary.delta": "较前一周",
    "summary.no_plan": "未提交计划",
    "summary.movers": "**变化最大**：{movers}",
    "summary.mover": "{name} {before} → {after}（{delta}）",
    "summary.no_movers": "**变化最大**：前一周没有可比较的考核结果。",
    "summary.lagging": "**上周仍落后的事项（{count}）**",
    "summary.no_lagging": "上周没有落后的事项。",
    "summary.lag_flag": "· {name}：{text}（{kpi}）",
    "summary.more": "另有 {count} 项未列出；发送“进度 {week}”查看全部。",
    "summary.not_planned": "本周未提交计划",
    "summary.on_leave": "请假",
    "summary.templates": "**本周考核模板**",
    "summary.template_line": "· {reason}（{count}）",
    "summary.template_new": "（本周起）",
    "summary.no_template": "没有适用的模板，请在团队文件里补充",
    "summary.nothing": "上周没有计划，也没有考核结果。",
    "summary.private": "个人得分只私信发给本人和组长；群里只有团队整体数据和落后提醒。",
    "summary.leader_note": "这张卡片只发给组长。完成度只计有数据的事项；得分是上周发布的最新版本。",
    # leave and pauses (command replies)
    "leave.title": "请假",
    "leave.set_self": "已登记请假至 {until}（含当天），期间不会收到计划提醒。提前回来请发送“销假”。",
    "leave.set_other": "已登记 {name} 请假至 {until}（含当天），期间不提醒、不计入未提交名单。",
    "leave.set_range": "已登记 {name} 请假 {start} 至 {until}（含两端），期间不提醒、不计入未提交名单；考核只看与当周重叠的请假。",
    "leave.ended_self": "已销假，计划提醒恢复。",
    "leave.ended_other": "已为 {name} 销假。",
    "leave.not_on_leave": "{name} 当前没有请假。",
    "leave.usage": "格式：请假 12-01 至 12-05（不写开始日期则从今天起；组长为成员登记：请假 姓名 12-01 至 12-05；提前结束：销假）",
    "leave.past": "日期 {until} 已经过去，请写今天或以后的日期。",
    "leave.too_far": "请假最长登记一年（到 {limit} 为止）。",
    "leave.not_leader": "只有组长可以为其他成员登记请假或销假。",
    "leave.unknown": "你带的团队里没有叫“{who}”的成员。",
    "pause.title": "计划提醒",
    "pause.done": "已暂停你的计划提醒。发送“恢复提醒”重新开启。",
    "pause.already": "你的计划提醒已经是暂停状态。发送“恢复提醒”重新开启。",
    "resume.done": "已恢复你的计划提醒。",
    "resume.already": "你的计划提醒本来就是开启的。",
    "team_pause.title": "团队计划提醒",
    "team_pause.done": "{team} 的计划提醒暂停至 {until}（含当天）。发送“恢复团队提醒”可提前恢复。",
    "team_pause.usage": "格式：暂停团队提醒 至 02-20（多个团队时加：团队 团队id）",
    "team_pause.not_leader": "只有组长可以暂停或恢复团队的计划提醒。",
    "team_pause.which": "你是多个团队的组长，请写明团队：暂停团队提醒 至 02-20 团队 团队id",
    "team_resume.done": "{team} 的计划提醒已恢复。",
    "team_resume.none": "{team} 的计划提醒没有暂停。",
    "nudge.title": "再次提醒",
    "nudge.done": "已再次提醒 {count} 人：{names}。",
    "nudge.none": "没有需要再提醒的人（都已提交、请假或暂停了提醒）。",
    "nudge.already": "这些成员本周已经再提醒过一次，不会重复发送。",
    "nudge.stale": "这是 {week} 的名单，已经过期。",
    "bad_date": "日期“{text}”看不懂：请写 12-01 或 2026-12-01。",
    # why this template (the appraisal card and page; cards/template_why.py)
    "why.switch": "{by} 手动切换为“{template}”（{window}），手动切换优先于其他规则",
    "why.scenario": "场景规则：“{scenario}”场景进行中，用“{template}”",
    "why.period": "时段规则：本周在 {period}（每年 {since} 至 {until}）内，用“{template}”",
    "why.employee_type": "员工类型规则：{who}，用“{template}”",
    "why.default": "岗位默认：本周没有适用的手动切换、场景、时段或员工类型模板，用{role}岗位的默认模板“{template}”",
    "why.over": "，替代“{over}”",
    "why.order": "。规则顺序：手动切换 > 场景 > 时段 > 员工类型 > 岗位默认。",
    "why.window_open": "自 {since} 起",
    "why.window": "{since} 至 {until}",
    "why.new": "新员工",
    "why.new_days": "新员工（{since} 入职，至本周一 {days} 天）",
    "why.veteran": "老员工",
    # the appraisal explanation card
    "card.appraisal_title": "{week} 考核结果 · {name} · {score} 分 {grade}",
    "card.employee": "员工",
    "card.week": "周",
    "card.score": "总分",
    "card.grade": "等级",
    "card.template": "模板",
    "card.why_template": "为什么用这个模板",
    "card.version": "版本",
    "card.version_value": "第 {version} 版：{reason}",
    "card.recalculated": "重新计算",
    "card.details": "查看详情",
    "card.appeal_item": "申诉：{name}",
    "card.appeal_some": "申诉某一项",
    "card.row_head": "**{name}** · 权重 {weight} · 得 {points} 分",
    "card.row_item": "事项：{text}",
    "card.row_levels": "基线 → 目标：{levels}，实际 {actual}",
    "card.total_label": "Σ 权重 × 完成度",
    "card.total_label_adjusted": "Σ 权重 × 完成度 ± 加减分",
    "card.total": "**总分** = {label} = {formula} → **{score}（{grade}）**",
    "card.flags": "注意：",
    # one appraisal row explained (cards/explain.py), on the card and the page
    "explain.rating": "主管评分 {stars} 星 → {percent}",
    "explain.checklist": "完成 {done} / 计划 {planned} = {percent}",
    "explain.zero.rating": "尚未评分，计 0",
    "explain.zero.checklist": "没有登记完成情况，计 0",
    "explain.zero.levels": "缺少基线或目标，计 0",
    "explain.zero.data": "暂无数据，计 0",
    "explain.zero.other": "无法计算完成度，计 0",
    "explain.excluded": "申诉后剔除，不计分",
    "explain.outside": "不在本模板内，不计分",
    "explain.aside": "（{text}）",
    "explain.unplanned": "本周没有计划项，计 0",
    "explain.negative": "{text} → 反向变化，按 0 % 计",
    "explain.curve": "{text} → 按曲线计 {percent}",
    "explain.cap": "{text} → 封顶 {percent}",
    "explain.curve_line": "评分曲线：{curve}",
    "explain.adjustment": "**{name}** · {count} 次 × {per} 分 → {points} 分（范围 {low}–{high}）",
    "explain.combine": (
        "同一指标下有多个计划项时，各项平分该指标的权重；指标类各项按自己的数据分别计算完成度，"
        "评分类和清单类共用一个完成度（星级，或完成任务数 ÷ 各项计划任务数之和）。"
    ),
}

EN: dict[str, str] = {
    "no_data": "no data",
    "none": "none",
    "sep": ", ",
    "people": "{count} people",
    "button.fill": "File my plan",
    "button.web": "Open in browser",
    "button.team_progress": "Team progress",
    "button.remind_again": "Remind again",
    "button.leave": "{name}: on leave",
    "reminder.title": "Reminder: your plan for {week}",
    "reminder.nudge_title": "{leader} asks for your plan for {week}",
    "reminder.body": (
        "{name}, your plan for this week ({days}) is not in yet. Please file it by **{deadline}**: "
        "every item names a KPI and a target (+2pp / +2% / +0.5 / =3.5)."
    ),
    "reminder.late_body": (
        "{name}, your plan for this week ({days}) is not in yet. The deadline ({deadline}) has passed; "
        "a plan filed now is marked late."
    ),
    "reminder.hint": (
        "You can also send “plan” with one item per line: what, KPI, target. "
        "On leave? Send “leave until 12-01”. To stop plan reminders, send “pause-reminders”."
    ),
    "missing.title": "{team} · {week}: {count} without a plan",
    "missing.body": "As of **{deadline}**, these members have not filed a plan for this week ({days}):",
    "missing.member": "Member",
    "missing.state": "Reminder",
    "missing.reminded": "reminded",
    "missing.paused": "reminders paused",
    "missing.unreminded": "—",
    "missing.on_leave": "On leave: {names}",
    "missing.hint": "Late plans are still accepted (marked late). To record a leave: leave NAME until 12-01.",
    "table.title": "{team} · {week} appraisals",
    "table.body": "{count} results were published at {at}; each person got their own explanation by direct message.",
    "table.member": "Member",
    "table.score": "Score",
    "table.grade": "Grade",
    "table.template": "Template",
    "table.average": "Average score",
    "table.grades": "Grades",
    "table.version": " (v{version})",
    "table.note": "Highest score first. Scores go only to each person and the leader; people appeal on their own card.",
    "summary.title": "{team} · Monday summary · {week}",
    "summary.title_leader": "{team} · Monday summary · {week} (leader)",
    "summary.last_week": "Last week",
    "summary.week_days": "{week} ({days})",
    "summary.avg_completion": "Average completion",
    "summary.avg_score": "Average score",
    "summary.grades": "Grades",
    "summary.planned": "Plans filed this week",
    "summary.planned_value": "{planned} of {eligible}",
    "summary.member": "Member",
    "summary.completion": "Completion",
    "summary.lagging_items": "Lagging",
    "summary.score": "Score",
    "summary.grade": "Grade",
    "summary.delta": "vs week before",
    "summary.no_plan": "no plan",
    "summary.movers": "**Biggest movers**: {movers}",
    "summary.mover": "{name} {before} → {after} ({delta})",
    "summary.no_movers": "**Biggest movers**: no results from the week before to compare with.",
    "summary.lagging": "**Items still lagging last week ({count})**",
    "summary.no_lagging": "Nothing was lagging last week.",
    "summary.lag_flag": "· {name}: {text} ({kpi})",
    "summary.more": "{count} more not shown; send “progress {week}” to see all.",
    "summary.not_planned": "No plan yet this week",
    "summary.on_leave": "On leave",
    "summary.templates": "**Appraisal templates this week**",
    "summary.template_line": "· {reason} ({count})",
    "summary.template_new": " (from this week)",
    "summary.no_template": "no template applies; add one to the team file",
    "summary.nothing": "No plans and no appraisals last week.",
    "summary.private": "Personal scores go only to each person and the leader; the group sees team figures and lag flags.",
    "summary.leader_note": "Only the leader gets this card. Completion counts items with data; scores are last week's newest version.",
    "leave.title": "Leave",
    "leave.set_self": "Leave recorded until {until} (inclusive): no plan reminders until then. Back early? Send “back”.",
    "leave.set_other": "Leave recorded for {name} until {until} (inclusive): no reminders, not listed as missing.",
    "leave.set_range": "Leave recorded for {name} from {start} to {until} (inclusive); appraisals count only the leave that overlaps their week.",
    "leave.ended_self": "Welcome back: plan reminders are on again.",
    "leave.ended_other": "{name} is back from leave.",
    "leave.not_on_leave": "{name} is not on leave.",
    "leave.usage": "Usage: leave until 12-01 (a leader for a member: leave NAME until 12-01; to end it: back)",
    "leave.past": "{until} is in the past; give today or a later day.",
    "leave.too_far": "A leave can be recorded for at most a year (until {limit}).",
    "leave.not_leader": "Only the team leader can record or end a member's leave.",
    "leave.unknown": "No member called “{who}” in your team.",
    "pause.title": "Plan reminders",
    "pause.done": "Your plan reminders are paused. Send “resume-reminders” to turn them on again.",
    "pause.already": "Your plan reminders are already paused. Send “resume-reminders” to turn them on.",
    "resume.done": "Your plan reminders are on again.",
    "resume.already": "Your plan reminders were on already.",
    "team_pause.title": "Team plan reminders",
    "team_pause.done": "Plan reminders for {team} are paused until {until} (inclusive). Send “resume-team-reminders” to resume early.",
    "team_pause.usage": "Usage: pause-team-reminders until 02-20 (leading several teams? add: team TEAM_ID)",
    "team_pause.not_leader": "Only a team leader can pause or resume the team's plan reminders.",
    "team_pause.which": "You lead several teams; name one: pause-team-reminders until 02-20 team TEAM_ID",
    "team_resume.done": "Plan reminders for {team} are on again.",
    "team_resume.none": "Plan reminders for {team} were not paused.",
    "nudge.title": "Reminded again",
    "nudge.done": "Reminded {count} again: {names}.",
    "nudge.none": "Nobody to remind (everyone filed, is on leave or paused reminders).",
    "nudge.already": "They were already reminded again this week; nothing sent twice.",
    "nudge.stale": "This list is for {week} and out of date.",
    "bad_date": "Cannot read the date “{text}”: write 12-01 or 2026-12-01.",
    "why.switch": "{by} switched to “{template}” by hand ({window}); a manual switch comes before every other rule",
    "why.scenario": "Scenario rule: the “{scenario}” scenario is on, so “{template}” applies",
    "why.period": "Period rule: this week falls in {period} ({since} to {until} every year), so “{template}” applies",
    "why.employee_type": "Employee-type rule: {who}, so “{template}” applies",
    "why.default": (
        "Role default: no manual switch, scenario, period or employee-type template applies this week, "
        "so the {role} role's default “{template}” applies"
    ),
    "why.over": " instead of “{over}”",
    "why.order": ". Rule order: manual switch > scenario > period > employee type > role default.",
    "why.window_open": "from {since}",
    "why.window": "{since} to {until}",
    "why.new": "a new employee",
    "why.new_days": "a new employee (hired {since}, {days} days before this week's Monday)",
    "why.veteran": "an experienced employee",
    "card.appraisal_title": "{week} appraisal · {name} · {score} points {grade}",
    "card.employee": "Employee",
    "card.week": "Week",
    "card.score": "Score",
    "card.grade": "Grade",
    "card.template": "Template",
    "card.why_template": "Why this template",
    "card.version": "Version",
    "card.version_value": "version {version}: {reason}",
    "card.recalculated": "recalculated",
    "card.details": "Details",
    "card.appeal_item": "Appeal: {name}",
    "card.appeal_some": "Appeal an item",
    "card.row_head": "**{name}** · weight {weight} · {points} points",
    "card.row_item": "Item: {text}",
    "card.row_levels": "Baseline → target: {levels}, actual {actual}",
    "card.total_label": "Σ weight × completion",
    "card.total_label_adjusted": "Σ weight × completion ± adjustments",
    "card.total": "**Score** = {label} = {formula} → **{score} ({grade})**",
    "card.flags": "Note:",
    "explain.rating": "leader's rating {stars} stars → {percent}",
    "explain.checklist": "done {done} / planned {planned} = {percent}",
    "explain.zero.rating": "not rated yet: counts 0",
    "explain.zero.checklist": "nothing recorded as done: counts 0",
    "explain.zero.levels": "no baseline or target: counts 0",
    "explain.zero.data": "no data yet: counts 0",
    "explain.zero.other": "completion cannot be computed: counts 0",
    "explain.excluded": "removed after an appeal: not scored",
    "explain.outside": "not in this template: not scored",
    "explain.aside": " ({text})",
    "explain.unplanned": "no plan item this week: counts 0",
    "explain.negative": "{text} → moved the wrong way, counts 0 %",
    "explain.curve": "{text} → {percent} on the scoring curve",
    "explain.cap": "{text} → capped at {percent}",
    "explain.curve_line": "Scoring curve: {curve}",
    "explain.adjustment": "**{name}** · {count} × {per} points → {points} points (range {low}–{high})",
    "explain.combine": (
        "Several plan items on one KPI share its weight equally; metric items each get their own "
        "completion from their own data, rating and checklist items share one completion (the stars, "
        "or tasks done ÷ the sum of the tasks planned)."
    ),
}

CATALOGUES: dict[str, dict[str, str]] = {"zh-CN": ZH, "en-US": EN}


@dataclass(frozen=True)
class Texts:
    """The catalogue of one locale: ``tr("reminder.title", week="2026-W48")``."""

    locale: str

    @property
    def table(self) -> dict[str, str]:
        return CATALOGUES.get(self.locale, ZH)

    def __call__(self, key: str, **values: object) -> str:
        return self.table[key].format(**values)

    def names(self, names: Iterable[str]) -> str:
        """ "李雷、韩梅梅" / "Li Lei, Han Meimei"; "无" / "none" for nobody."""
        listed = list(names)
        return self.table["sep"].join(listed) if listed else self.table["none"]

    def percent(self, ratio: Decimal | None) -> str:
        """0.834 -> "83 %"; None -> "暂无数据" / "no data" (never 0 %)."""
        if ratio is None:
            return self.table["no_data"]
        return f"{(Decimal(str(ratio)) * 100).quantize(Decimal(1), ROUND_HALF_UP)} %"


@dataclass(frozen=True)
class Catalogue:
    """Any pair of catalogues keyed by locale (the CLI's, bot/cli/texts.py): one locale's sentence,
    filled in; an unknown locale is zh-CN."""

    catalogues: Mapping[str, Mapping[str, str]]
    locale: str

    def __call__(self, key: str, /, **values: object) -> str:
        return self.catalogues.get(self.locale, self.catalogues[DEFAULT])[key].format(**values)


def texts(locale: str) -> Texts:
    return Texts(locale if locale in CATALOGUES else DEFAULT)
