"""Card -> Feishu JSON 2.0: golden files, escaping, known properties only, size and name limits.

Goldens live in tests/golden/feishu/<card>.json. After a deliberate rendering change, rewrite
them with ``PLANLOOP_UPDATE_GOLDEN=1 python -m pytest tests/test_render_feishu.py`` and review
the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

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
from cards.render.feishu import (
    MAX_API_BYTES,
    MAX_WEBHOOK_BYTES,
    CardTooLarge,
    RenderError,
    check_size,
    escape_markdown,
    render,
)

GOLDEN = Path(__file__).parent / "golden" / "feishu"
KPIS = (Option("pay_conversion_rate", "支付转化率（%）"), Option("complaint_rate", "投诉率（%）"))

CARDS: dict[str, Card] = {
    "plan_form": Card(
        "本周计划 · 2026-W48",
        blocks=(
            Markdown("李雷，请填写本周计划：每项关联一个指标和目标。"),
            Note("目标写法：+2pp / +2% / +0.5 / =3.5"),
        ),
        form=Form(
            "plan.submit",
            (
                Input(
                    "item1_text",
                    "1. 详情页优化",
                    placeholder="这周要做的事",
                    required=True,
                    value="优化详情页首屏",
                ),
                Input(
                    "item1_kpi",
                    "关联指标",
                    "select",
                    options=KPIS,
                    value="pay_conversion_rate",
                    required=True,
                ),
                Input(
                    "item1_target",
                    "目标",
                    placeholder="+2pp / +2% / +0.5 / =3.5",
                    value="+2",
                    error="写成 +2pp 或 +2%",
                ),
                Input("item2_text", "2. 其他事项"),
                Input("item2_kpi", "关联指标", "select", options=KPIS),
                Input("item2_target", "目标", "number"),
                Input("causes", "上周未达成原因", "textarea", placeholder="可选"),
            ),
            submit_label="提交计划",
            values={"week": "2026-W48", "item1_section": "详情页优化"},
            error="第 1 项的目标写法不对",
            link="https://plan.example.com/p/form-token",
        ),
    ),
    "receipt": Card(
        "计划已提交",
        theme="green",
        toast="计划已提交",
        blocks=(
            Markdown("**2026-W48** 共 3 项，基线取自 11-22。"),
            Fields(
                (
                    Field("支付转化率", "3.00 % → 3.06 %"),
                    Field("投诉率", "1.20 % → 1.08 %"),
                    Field("活动销量", "12,000 → 14,400"),
                )
            ),
            Note("提交于 2026-11-23 10:02"),
        ),
        buttons=(
            Button("修改", "plan.edit", {"week": "2026-W48"}, style="primary"),
            Button("在网页查看", url="https://plan.example.com/p/plan-token"),
        ),
    ),
    "progress": Card(
        "本周进度 · 周三",
        blocks=(
            Progress("优化详情页首屏 · 支付转化率", 0.83, "3.00 % → 3.05 %（目标 3.06 %）"),
            Progress("差评回访 · 投诉率", 0.2, "落后于进度 60 %", lagging=True),
            Progress("双11会场 · 活动销量", None, "等待数据"),
            Divider(),
            Table(
                ("事项", "实际", "目标"), (("支付转化率", "3.05 %", "3.06 %"), ("投诉率", "1.18 %", "1.08 %"))
            ),
        ),
    ),
    "lag_alert": Card(
        "进度落后提醒",
        theme="orange",
        mentions=("ou_7d8a6e6df7621556ce0d21922b676706", "all"),
        blocks=(Markdown("**差评回访 · 投诉率** 按进度应完成 60 %，目前 20 %。"),),
        buttons=(Button("查看详情", "progress.open", {"item": "17"}),),
    ),
    "monday_summary": Card(
        "上周总结 · 2026-W47",
        theme="grey",
        blocks=(
            Markdown("运营组 5 人，4 人完成计划。"),
            Table(
                ("成员", "完成", "得分"),
                (("李雷", "100 %", "107"), ("韩梅梅", "80 %", "92"), ("张伟", "—", "—")),
            ),
            Divider(),
            Note("数据来源：生意参谋 11-22 导出"),
        ),
    ),
    "appraisal": Card(
        "考核结果 · 2026-W47",
        theme="blue",
        blocks=(
            Fields((Field("得分", "107.0"), Field("等级", "A"))),
            Table(
                ("指标", "权重", "完成", "贡献"),
                (("支付转化率", "60", "125 %", "75.0"), ("点击率", "40", "80 %", "32.0")),
            ),
            Note("模板：运营默认模板"),
        ),
        buttons=(Button("申诉", "appeal.open", {"week": "2026-W47"}, style="danger"),),
    ),
    "error": Card(
        "操作未完成", theme="red", blocks=(Markdown("还不认识你：请让管理员加上你的账号 id：ou_x"),)
    ),
}


def _builder_cards() -> dict[str, Card]:
    """Every card cards/builders.py makes, with representative values (errors, late, long text)."""
    from decimal import Decimal

    from cards import builders as b

    kpis = [
        b.KpiChoice("conversion_rate", "支付转化率", "%"),
        b.KpiChoice("complaint_rate", "投诉率", "%"),
        b.KpiChoice("activity_sales", "活动销量", "件"),
    ]
    rows = [
        b.FormRow(
            section="活动策划", text="双11会场", kpi="activity_sales", target="+20%", scope="双11主会场"
        ),
        b.FormRow(
            section="数据优化",
            text="优化详情页首屏",
            kpi="conversion_rate",
            target="+2",
            errors={"target": "看不懂“+2”，请写成 +2pp、+2%、+0.5 或 =3.5"},
        ),
        b.FormRow(text="差评回访 <at id=all></at>", kpi="complaint_rate", target="-10%", causes="物流延迟"),
        b.FormRow(),
    ]
    items = [
        b.ItemView(
            "双11会场", "活动销量", "件", Decimal("12000"), Decimal("14400"), "+20%", scope="双11主会场"
        ),
        b.ItemView("优化详情页首屏", "支付转化率", "%", Decimal("3.00"), Decimal("3.06"), "+2%"),
        b.ItemView("新品上架", "支付转化率", "%", None, None, "+0.5"),
        b.ItemView("团队协作", "协作评分", "", None, None, ""),
    ]
    return {
        "builders.plan_form": b.plan_form(
            week="2026-W48",
            person_name="李雷",
            rows=rows[:2] + rows[3:],
            kpis=kpis,
            link="https://plan.example.com/p/form",
        ),
        "builders.plan_form_error": b.plan_form(
            week="2026-W48",
            person_name="王芳",
            rows=rows,
            kpis=kpis,
            error="计划未保存。第2项：目标写法不对",
            with_causes=True,
            note="上周投诉率未达标，请写明针对的原因",
        ),
        "builders.plan_receipt": b.plan_receipt(
            week="2026-W48",
            person_name="李雷",
            version=2,
            status="late",
            items=items,
            submitted_at="11-25 21:40",
            detail_url="https://plan.example.com/p/plan",
            note="已保存为第 2 版，之前的版本保留在历史里。",
        ),
        "builders.text_plan_errors": b.text_plan_errors(
            ["第2行：需要“事项 指标 目标”三部分", "第3行：不认识的指标“转化”", "第4行：看不懂“+abc”"]
        ),
    }


@pytest.mark.parametrize("name", sorted(_builder_cards()))
def test_builder_golden(name):
    card = _builder_cards()[name]
    _golden(name, render(card))
    _golden(f"{name}.robot", render(card, interactive=False))


def _golden(name: str, payload: dict) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    if os.environ.get("PLANLOOP_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; run with PLANLOOP_UPDATE_GOLDEN=1 and review it"
    assert json.loads(path.read_text(encoding="utf-8")) == payload


@pytest.mark.parametrize("name", sorted(CARDS))
def test_golden(name):
    _golden(name, render(CARDS[name]))


@pytest.mark.parametrize("name", ["plan_form", "receipt", "lag_alert"])
def test_golden_for_a_group_robot(name):
    _golden(f"{name}.robot", render(CARDS[name], interactive=False))


# --- what a golden cannot see -----------------------------------------------------------------------

# Properties named in the JSON 2.0 component docs (open.feishu.cn card-json-v2-components); 2.0
# refuses anything else, so the renderer must stay inside these sets.
ALLOWED = {
    None: {"schema", "config", "header", "body"},
    "markdown": {"tag", "content", "text_size", "text_align", "margin", "element_id", "icon"},
    "div": {"tag", "text", "width", "margin", "element_id", "icon"},
    "plain_text": {"tag", "content", "text_size", "text_color", "text_align", "lines"},
    "column_set": {"tag", "columns", "flex_mode", "horizontal_spacing", "margin", "element_id"},
    "column": {"tag", "width", "weight", "elements", "vertical_align", "padding"},
    "hr": {"tag", "margin", "element_id"},
    "table": {"tag", "page_size", "row_height", "header_style", "columns", "rows", "margin", "element_id"},
    "form": {"tag", "name", "elements", "element_id", "direction", "vertical_spacing"},
    "input": {
        "tag",
        "name",
        "required",
        "placeholder",
        "default_value",
        "width",
        "max_length",
        "input_type",
        "rows",
        "auto_resize",
        "max_rows",
        "label",
        "label_position",
        "disabled",
        "element_id",
    },
    "select_static": {"tag", "name", "required", "placeholder", "options", "initial_option", "width", "type"},
    "button": {"tag", "text", "type", "behaviors", "name", "form_action_type", "width", "size", "disabled"},
}


def _walk(node, root=True):
    """The root and every component (a dict with a "tag"); table rows are data and skipped."""
    if isinstance(node, dict):
        if root or "tag" in node:
            yield node
        for key, value in node.items():
            if key == "rows" and node.get("tag") == "table":
                continue
            yield from _walk(value, False)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, False)


@pytest.mark.parametrize("name", sorted(CARDS))
@pytest.mark.parametrize("interactive", [True, False])
def test_only_documented_properties(name, interactive):
    for element in _walk(render(CARDS[name], interactive=interactive)):
        tag = element.get("tag")
        assert tag in ALLOWED, f"undocumented component {tag!r}"
        assert set(element) <= ALLOWED[tag], (tag, set(element) - ALLOWED[tag])


def test_form_submit_button_submits_with_the_action_and_hidden_values():
    payload = render(CARDS["plan_form"])
    [form] = [e for e in payload["body"]["elements"] if e["tag"] == "form"]
    submit = form["elements"][-1]
    assert submit["form_action_type"] == "submit"
    assert submit["behaviors"] == [
        {
            "type": "callback",
            "value": {"action": "plan.submit", "week": "2026-W48", "item1_section": "详情页优化"},
        }
    ]
    names = [e["name"] for e in form["elements"] if "name" in e]
    assert len(names) == len(set(names)) == 8  # seven inputs and the submit button


def test_form_is_at_the_body_root_and_holds_no_table():
    payload = render(CARDS["plan_form"])
    forms = [e for e in payload["body"]["elements"] if e["tag"] == "form"]
    assert len(forms) == 1
    assert all(e["tag"] not in ("form", "table") for e in forms[0]["elements"])


@pytest.mark.parametrize(
    "hostile",
    [
        "<at id=all></at>",
        '<at user_id="all">所有人</at>',
        "&lt;at id=all&gt;",
        "<font color='red'>x</font>",
        "<link url='x'>y</link>",
    ],
)
def test_markdown_cannot_inject_tags_or_mentions(hostile):
    payload = render(Card("t", blocks=(Markdown(f"备注：{hostile}"), Note(hostile))))
    text = json.dumps(payload, ensure_ascii=False)
    assert "<at" not in text and "<font" not in text and "<link" not in text
    assert payload["body"]["elements"][0]["content"] == "备注：" + hostile.replace("&", "&amp;").replace(
        "<", "&lt;"
    ).replace(">", "&gt;")


@pytest.mark.parametrize("hostile", ["<at id=all></at>", "**粗体** [x](https://evil.example)"])
def test_plain_user_text_goes_into_plain_text(hostile):
    card = Card(
        hostile,
        blocks=(
            Fields((Field(hostile, hostile),)),
            Progress(hostile, 0.5, hostile),
            Table((hostile,), ((hostile,),)),
        ),
        form=Form("a", (Input("x", hostile, placeholder=hostile, value=hostile),)),
        buttons=(Button(hostile, "b"),),
    )
    payload = render(card)
    strings = []
    for element in _walk(payload):
        if element.get("tag") == "markdown":
            assert "<at" not in element["content"]
        if element.get("tag") == "plain_text":
            strings.append(element["content"])
    assert any(hostile in s for s in strings)
    assert payload["header"]["title"] == {"tag": "plain_text", "content": hostile}


def test_escape_markdown_is_the_html_entity_set():
    assert escape_markdown("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert escape_markdown("&#60;at") == "&amp;#60;at"


def test_mentions_are_the_only_at_tags():
    payload = render(CARDS["lag_alert"])
    assert payload["body"]["elements"][0] == {
        "tag": "markdown",
        "content": "<at id=ou_7d8a6e6df7621556ce0d21922b676706></at> <at id=all></at>",
    }


@pytest.mark.parametrize("bad", ["ou_x></at><at id=all", "", "ou x", "a" * 65])
def test_bad_mention_ids_are_refused(bad):
    with pytest.raises(RenderError, match="mention"):
        render(Card("t", mentions=(bad,)))


@pytest.mark.parametrize(
    "form, match",
    [
        (Form("a", (Input("x", "X"), Input("x", "Y"))), "two inputs named 'x'"),
        (Form("a", (Input("", "X"),)), "without a name"),
        (Form("a", (Input("planloop_submit", "X"),)), "reserved"),
        (Form("a", (Input("week", "X"),), values={"week": "W48"}), "share names"),
        (Form("a", (Input("x", "X"),), values={"action": "evil"}), "reserved key"),
    ],
)
def test_form_names_must_be_unique_and_unreserved(form, match):
    with pytest.raises(RenderError, match=match):
        render(Card("t", form=form))


def test_button_needs_an_action_or_url():
    with pytest.raises(RenderError, match="neither"):
        render(Card("t", buttons=(Button("?"),)))


def test_size_limit_counts_the_escaped_content_string():
    """The API gets the card as a JSON string inside JSON: quotes double. Compute that independently."""
    card = Card("t", blocks=(Markdown('"' * 12000),))
    payload = {"schema": "2.0", "body": {"elements": [{"tag": "markdown", "content": '"' * 12000}]}}
    as_content = json.dumps(
        json.dumps(payload, ensure_ascii=False, separators=(",", ":")), ensure_ascii=False
    )
    assert len(as_content.encode()) > MAX_API_BYTES  # 24 000 escaped quotes plus the rest
    with pytest.raises(CardTooLarge, match="30 KB"):
        render(card)


@pytest.mark.parametrize("chars, ok", [(9000, True), (11000, False)])
def test_chinese_text_counts_in_utf8_bytes(chars, ok):
    card = Card("t", blocks=(Markdown("汉" * chars),))  # 3 bytes each
    if ok:
        render(card)
    else:
        with pytest.raises(CardTooLarge):
            render(card)


def test_robot_limit_is_twenty_kb():
    card = Card("t", blocks=(Markdown("x" * 25000),))
    render(card)  # fine for the API
    with pytest.raises(CardTooLarge, match="20 KB"):
        render(card, interactive=False)
    assert MAX_WEBHOOK_BYTES < 20 * 1024


def test_component_cap():
    card = Card("t", blocks=tuple(Markdown(str(n)) for n in range(250)))
    with pytest.raises(CardTooLarge, match="components"):
        render(card)


def test_check_size_accepts_a_small_card():
    check_size(render(CARDS["receipt"]))


def _big_form(link: str) -> Card:
    options = tuple(Option(f"metric_{i}", f"很长的指标名称 {i}") for i in range(18))
    inputs = []
    for n in range(1, 21):
        inputs += [
            Input(f"item{n}_text", f"{n}. 事项"),
            Input(f"item{n}_kpi", "指标", "select", options=options),
        ]
    return Card("填写本周计划", form=Form("plan.submit", tuple(inputs), link=link))


def test_a_form_too_big_for_a_card_falls_back_to_its_web_page():
    payload = render(_big_form("https://plan.example.com/p/big"))
    text = json.dumps(payload, ensure_ascii=False)
    assert '"form"' not in text and "卡片放不下" in text
    [button] = [e for e in _walk(payload) if e.get("tag") == "button"]
    assert button["behaviors"] == [{"type": "open_url", "default_url": "https://plan.example.com/p/big"}]


def test_a_form_too_big_without_a_web_page_is_refused():
    with pytest.raises(CardTooLarge, match="30 KB"):
        render(_big_form(""))
