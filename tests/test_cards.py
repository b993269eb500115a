"""The neutral card model round-trips through the outbox; text and HTML renderings are exact and safe."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cards import format as fmt
from cards.builders import FormRow, KpiChoice, plan_form
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
from cards.render import html, text

FULL = Card(
    title="标题",
    theme="orange",
    blocks=(
        Markdown("**粗体** 和 [链接](https://x.test/a)"),
        Fields((Field("基线", "3.00 %"), Field("目标", "3.06 %"))),
        Progress("支付转化率", 0.83, "3.05 %", lagging=True),
        Progress("投诉率", None),
        Table(("人", "分"), (("李雷", "107"),)),
        Note("数据截至 11-22"),
        Divider(),
    ),
    buttons=(
        Button("需要支持", action="alert.help", value={"item": "7"}, style="primary"),
        Button("详情", url="https://x.test/p"),
    ),
    form=Form(
        "plan.submit",
        (Input("k", "指标", "select", (Option("a", "甲"),), value="a", required=True),),
        values={"week": "2026-W48"},
        link="https://x.test/f",
    ),
    mentions=("ou_1",),
    toast="已提交",
)


def test_card_round_trips_through_a_dict():
    assert Card.from_dict(FULL.to_dict()) == FULL


def test_text_rendering_shows_every_number_and_link():
    assert text.render(FULL).splitlines() == [
        "标题",
        "粗体 和 链接 https://x.test/a",
        "基线：3.00 %",
        "目标：3.06 %",
        "支付转化率 ████████░░ 83%（落后） 3.05 %",
        "投诉率 暂无数据",
        "人 | 分",
        "李雷 | 107",
        "数据截至 11-22",
        "—",
        "[指标] a",
        "<提交>",
        "<需要支持>",
        "<详情> https://x.test/p",
    ]


@pytest.mark.parametrize(
    "ratio, bar",
    [(None, "暂无数据"), (0.0, "░░░░░░░░░░ 0%"), (1.25, "██████████ 125%"), (-0.3, "░░░░░░░░░░ -30%")],
)
def test_text_bar(ratio, bar):
    assert text.bar(ratio) == bar


def test_html_escapes_user_text():
    card = Card(
        title="<script>x</script>",
        blocks=(Markdown("<img src=x onerror=alert(1)> [a](javascript:alert(1))"),),
    )
    out = html.render(card)
    assert "<script>" not in out and "<img" not in out
    assert 'href="javascript' not in out


@pytest.mark.parametrize(
    "value, unit, shown",
    [
        (Decimal("3"), "%", "3.00 %"),
        (Decimal("3.055"), "%", "3.06 %"),
        (Decimal("35000.5"), "元", "35,000.50 元"),
        (Decimal("12000"), "", "12,000"),
        (Decimal("35.0"), "秒", "35 秒"),
        (Decimal("0.333"), "天", "0.33 天"),
        (None, "%", "—"),
    ],
)
def test_value_format(value, unit, shown):
    assert fmt.value(value, unit) == shown


def test_plan_form_has_four_inputs_per_row_and_keeps_errors():
    card = plan_form(
        week="2026-W48",
        person_name="李雷",
        kpis=[KpiChoice("ctr", "点击率", "%")],
        rows=[FormRow("活动策划", errors={"kpi": "每一项都要关联一个指标"}), FormRow()],
        link="https://x/f",
    )
    assert [i.name for i in card.form.inputs] == [
        "item1_text",
        "item1_kpi",
        "item1_target",
        "item1_scope",
        "item2_text",
        "item2_kpi",
        "item2_target",
        "item2_scope",
    ]
    assert card.form.inputs[1].error == "每一项都要关联一个指标"
    assert card.form.values == {"week": "2026-W48", "item1_section": "活动策划"}
    assert card.form.link == "https://x/f" and card.buttons[0].url == "https://x/f"
