"""Card builders: pure functions from plain values to neutral Cards (plan form, receipt …)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from cards import format as fmt
from cards.model import Button, Card, Field, Fields, Form, Input, Markdown, Note, Option, Table

TARGET_HINT = "+2pp / +2% / +0.5 / =3.5"


@dataclass(frozen=True)
class KpiChoice:
    key: str
    name: str
    unit: str = ""


@dataclass(frozen=True)
class FormRow:
    """One item row of the plan form, pre-filled (role section, earlier values) and with its errors."""

    section: str = ""
    text: str = ""
    kpi: str = ""
    target: str = ""
    scope: str = ""
    causes: str = ""
    errors: Mapping[str, str] = field(default_factory=dict)


def plan_form(
    *,
    week: str,
    person_name: str,
    rows: Sequence[FormRow],
    kpis: Sequence[KpiChoice],
    link: str = "",
    error: str = "",
    with_causes: bool = False,
    note: str = "",
) -> Card:
    """The weekly plan form: one row per role section plus spare rows; every item needs a KPI and a target."""
    options = tuple(Option(k.key, f"{k.name}（{k.unit}）" if k.unit else k.name) for k in kpis)
    inputs: list[Input] = []
    hidden: dict[str, str] = {"week": week}
    for n, row in enumerate(rows, start=1):
        label = f"{n}. {row.section}" if row.section else f"{n}. 其他事项"
        if row.section:
            hidden[f"item{n}_section"] = row.section
        inputs.append(
            Input(
                f"item{n}_text",
                label,
                "text",
                value=row.text,
                placeholder="这周要做的事，例如：优化详情页首屏",
                error=row.errors.get("text", ""),
            )
        )
        inputs.append(
            Input(
                f"item{n}_kpi",
                "关联指标",
                "select",
                options=options,
                value=row.kpi,
                error=row.errors.get("kpi", ""),
            )
        )
        inputs.append(
            Input(
                f"item{n}_target",
                "目标",
                "text",
                value=row.target,
                placeholder=TARGET_HINT,
                error=row.errors.get("target", ""),
            )
        )
        inputs.append(
            Input(
                f"item{n}_scope",
                "范围（可选）",
                "text",
                value=row.scope,
                placeholder="店铺 / SKU / 活动，默认全店",
                error=row.errors.get("scope", ""),
            )
        )
        if with_causes:
            inputs.append(
                Input(
                    f"item{n}_causes",
                    "针对的投诉原因（可选）",
                    "text",
                    value=row.causes,
                    placeholder="物流延迟、产品质量 …",
                    error=row.errors.get("causes", ""),
                )
            )
    blocks: list[Markdown | Note] = [
        Markdown(
            f"**{person_name}** 的 {week} 周计划。每一项都要关联一个指标并写目标：\n"
            "`+2pp` 百分点 · `+2%` 相对变化 · `+0.5` 绝对变化 · `=3.5` 目标值"
        ),
    ]
    if note:
        blocks.append(Note(note))
    buttons = (Button("在网页中填写", url=link),) if link else ()
    return Card(
        title=f"填写本周计划 · {week}",
        theme="red" if error else "blue",
        blocks=tuple(blocks),
        form=Form(
            "plan.submit", tuple(inputs), submit_label="提交计划", values=hidden, error=error, link=link
        ),
        buttons=buttons,
    )


@dataclass(frozen=True)
class ItemView:
    text: str
    kpi_name: str
    unit: str
    baseline: Decimal | None
    target: Decimal | None
    target_text: str
    scope: str = "shop"
    section: str = ""


def _item_rows(items: Sequence[ItemView]) -> tuple[tuple[str, ...], ...]:
    rows = []
    for n, item in enumerate(items, start=1):
        scope = "" if item.scope in ("", "shop") else f" @{item.scope}"
        if item.baseline is None and item.target_text:
            level = "基线待首个数据确定"
        elif item.target is None:
            level = "由主管评分"
        else:
            level = fmt.arrow(item.baseline, item.target, item.unit)
        rows.append((f"{n}. {item.text}{scope}", item.kpi_name, item.target_text or "—", level))
    return tuple(rows)


def plan_receipt(
    *,
    week: str,
    person_name: str,
    version: int,
    status: str,
    items: Sequence[ItemView],
    submitted_at: str,
    detail_url: str = "",
    note: str = "",
    title: str = "",
) -> Card:
    """What a person sees after filing: each item, its KPI, the baseline and the resolved target level."""
    status_text = {"submitted": "已提交", "late": "已提交（迟交）"}.get(status, status)
    blocks: list[Markdown | Fields | Table | Note] = [
        Fields(
            (
                Field("员工", person_name),
                Field("周", week),
                Field("版本", f"第 {version} 版"),
                Field("状态", status_text),
                Field("提交时间", submitted_at),
            )
        ),
        Table(("事项", "指标", "目标写法", "基线 → 目标"), _item_rows(items)),
    ]
    if note:
        blocks.append(Note(note))
    buttons = [Button("修改计划", action="plan.form", style="default")]
    if detail_url:
        buttons.append(Button("查看详情", url=detail_url))
    return Card(
        title=title or f"本周计划已提交 · {week}",
        theme="green",
        blocks=tuple(blocks),
        buttons=tuple(buttons),
    )


def text_plan_errors(errors: Sequence[str]) -> Card:
    """The answer to a text plan with problems: numbered by line, nothing stored."""
    body = "\n".join(errors)
    return Card(
        title="计划未保存",
        theme="red",
        blocks=(
            Markdown(f"以下问题需要修改，**整份计划都没有保存**：\n{body}"),
            Note(
                "格式：第一行写“计划”，之后每行：事项 指标 目标 [@范围]，例如：优化详情页首屏 支付转化率 +2pp"
            ),
        ),
    )
