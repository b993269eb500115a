"""Cards shaped like the real ones (plan form, receipt, lag alert, Monday summary) for the WeCom tests."""

from __future__ import annotations

from cards.model import (
    Button,
    Card,
    Divider,
    Field,
    Fields,
    Form,
    Input,
    Markdown,
    Note,
    Option,
    Progress,
    Table,
)

FORM_LINK = "http://planloop.test/p/eyJwIjoibGlsZWkifQ.c2lnbmF0dXJl"
DETAIL_LINK = "http://planloop.test/p/detail.c2ln"

KPIS = (Option("conversion_rate", "支付转化率"), Option("ctr", "点击率"), Option("complaint_rate", "投诉率"))


def plan_form(link: str = FORM_LINK) -> Card:
    return Card(
        title="第48周计划（2026-W48）",
        blocks=(
            Markdown("请填写本周计划：每项写清**做什么**、对应指标和目标。"),
            Fields((Field("周次", "2026-W48"), Field("截止", "周一 14:00"))),
        ),
        form=Form(
            action="plan.submit",
            inputs=(
                Input(
                    "items",
                    "计划内容",
                    "textarea",
                    required=True,
                    placeholder="优化详情页首屏 支付转化率 +2pp",
                ),
                Input("kpi", "主要指标", "select", options=KPIS),
            ),
            values={"week": "2026-W48"},
            link=link,
        ),
    )


def plan_receipt() -> Card:
    return Card(
        title="计划已收到：李雷 第48周",
        theme="green",
        blocks=(
            Table(
                ("内容", "指标", "目标"),
                (
                    ("优化详情页首屏", "支付转化率", "3.00 % → 5.00 %"),
                    ("差评回访", "投诉率", "1.20 % → 1.08 %"),
                ),
            ),
            Note("提交于 11月23日 10:02"),
        ),
        buttons=(
            Button("确认", action="plan.confirm", value={"week": "2026-W48"}, style="primary"),
            Button("修改", action="plan.edit", value={"week": "2026-W48"}),
            Button("查看详情", url=DETAIL_LINK),
        ),
    )


def status_select() -> Card:
    return Card(
        title="更新计划项状态",
        blocks=(Markdown("优化详情页首屏（支付转化率）"),),
        form=Form(
            action="item.status",
            inputs=(
                Input("kpi", "指标", "select", options=KPIS, value="ctr"),
                Input(
                    "status",
                    "状态",
                    "select",
                    options=(Option("doing", "进行中"), Option("done", "已完成"), Option("blocked", "受阻")),
                ),
            ),
            values={"item": "42"},
            submit_label="更新",
        ),
    )


def lag_alert() -> Card:
    return Card(
        title="进度落后提醒：李雷",
        theme="orange",
        blocks=(
            Markdown("本周已过 **60%**，以下计划项低于预期进度（落后超过 20 个百分点）："),
            Progress("支付转化率", 0.25, caption="3.00 % → 3.50 %（目标 5.00 %）", lagging=True),
            Progress("投诉率", None, caption="还没有数据"),
            Note("数据来源：生意参谋 11月25日 09:00"),
        ),
        buttons=(Button("查看详情", url=DETAIL_LINK),),
        mentions=("LiLei",),
    )


def monday_summary(rows: int = 45) -> Card:
    names = ("李雷", "韩梅梅", "张伟", "王芳", "刘洋")
    items = tuple(
        (
            names[i % len(names)],
            f"第{i + 1}项：优化详情页首屏与主图，提升转化",
            "支付转化率",
            f"{i % 7}.00 % → {i % 7 + 2}.00 %",
        )
        for i in range(rows)
    )
    return Card(
        title="第48周计划汇总 · 运营组",
        blocks=(
            Markdown("本周共 5 人提交计划，1 人未提交（**王芳**）。"),
            Divider(),
            Table(("成员", "计划项", "指标", "目标"), items),
            Note("汇总生成于 11月23日 14:00"),
        ),
        buttons=(Button("查看全部", url=DETAIL_LINK),),
        mentions=("all",),
    )


def short_notice() -> Card:
    return Card(
        title="考核结果已发布",
        blocks=(Markdown("第47周考核已发布，点开查看你的得分。"), Fields((Field("周次", "2026-W47"),))),
        buttons=(Button("查看考核", url=DETAIL_LINK),),
    )


def error_card() -> Card:
    return Card(
        title="操作未完成", theme="red", blocks=(Markdown("第2行：目标“+2个点”看不懂，请写成 +2pp。"),)
    )


SAMPLES = {
    "plan_form": plan_form,
    "plan_receipt": plan_receipt,
    "status_select": status_select,
    "lag_alert": lag_alert,
    "monday_summary": monday_summary,
    "short_notice": short_notice,
    "error_card": error_card,
}
