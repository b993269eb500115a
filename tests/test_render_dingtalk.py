"""DingTalk renderings: golden files pin each one; the platform limits and @mention rules are
checked against values computed from the input card, not from the renderer's output.

Regenerate the golden files (then read the diff!) with ``UPDATE_GOLDEN=1 pytest tests/test_render_dingtalk.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cards.model import Button, Card, Divider, Field, Fields, Form, Input, Markdown, Note, Progress, Table
from cards.render import dingtalk as render

GOLDEN = Path(__file__).parent / "golden" / "dingtalk"
LINK = "https://plan.example.com/p/eyJwIjoibGlsZWkifQ.sig"

CARDS = {
    "plan_form": Card(
        "本周计划 2026-W48",
        blocks=(Markdown("每项写：内容、指标、目标。\n例如：优化详情页首屏 支付转化率 +2pp"),),
        form=Form("plan.submit", (Input("items", "计划内容", "textarea", required=True),), link=LINK),
    ),
    "progress": Card(
        "本周进度 2026-W48",
        blocks=(
            Progress("支付转化率", 0.83, "3.00% → 3.06%，当前 3.05%"),
            Progress("投诉率", 0.2, "1.20% → 1.08%", lagging=True),
            Progress("活动销量", None),
            Note("数据来源：生意参谋，更新于 11-23 09:00"),
        ),
        buttons=(
            Button("刷新", action="progress.refresh", value={"week": "2026-W48"}, style="primary"),
            Button("查看详情", url="https://plan.example.com/p/detail"),
        ),
        theme="green",
    ),
    "monday_summary": Card(
        "周一汇总 2026-W48",
        blocks=(
            Fields((Field("已提交", "3/4"), Field("未提交", "韩梅梅"))),
            Divider(),
            Table(("成员", "计划项", "上周完成度"), (("李雷", "3", "92%"), ("韩梅梅", "0", "—"))),
        ),
        buttons=(Button("查看详情", url="https://plan.example.com/p/summary"),),
        mentions=("staff-hanmeimei",),
        theme="orange",
    ),
    "error": Card(
        "操作未完成", blocks=(Markdown("第 2 行：找不到指标“转化”。"),), theme="red", mentions=("all",)
    ),
}


@pytest.mark.parametrize("name", sorted(CARDS))
def test_golden(name):
    got = render.render(CARDS[name])
    path = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    assert got == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(CARDS))
def test_card_params_are_all_strings_and_buttons_round_trip(name):
    card = CARDS[name]
    params = render.card_params(card)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    buttons = json.loads(params["buttons"])
    assert [b["text"] for b in buttons] == [b.label for b in card.buttons]
    for spec, button in zip(buttons, card.buttons, strict=True):
        if button.url:
            assert (spec["type"], spec["url"]) == ("link", button.url)
        else:
            assert (spec["type"], spec["action"], json.loads(spec["value"])) == (
                "callback",
                button.action,
                dict(button.value),
            )


def test_a_form_becomes_a_link_button_to_its_web_page():
    card = CARDS["plan_form"]
    msg = render.robot_message(card)
    assert msg["msgtype"] == "actionCard"
    assert (msg["actionCard"]["singleTitle"], msg["actionCard"]["singleURL"]) == (
        render.FORM_BUTTON,
        card.form.link,
    )
    key, param = render.app_robot_message(card)
    assert (key, param["singleURL"]) == ("sampleActionCard", card.form.link)


@pytest.mark.parametrize("count", [2, 3, 5, 8])
def test_app_robot_action_cards_stack_up_to_five_link_buttons(count):
    buttons = tuple(Button(f"链接{n}", url=f"https://x.example/{n}") for n in range(count))
    key, param = render.app_robot_message(Card("标题", buttons=buttons))
    shown = min(count, render.MAX_BUTTONS)
    assert key == f"sampleActionCard{shown}"
    assert [param[f"actionTitle{n}"] for n in range(1, shown + 1)] == [b.label for b in buttons[:shown]]
    assert [param[f"actionURL{n}"] for n in range(1, shown + 1)] == [b.url for b in buttons[:shown]]
    assert len(json.loads(render.card_params(Card("t", buttons=buttons))["buttons"])) == shown


def test_mentions_are_listed_and_written_in_the_text():
    card = Card(
        "提醒",
        blocks=(Markdown("请提交计划"),),
        mentions=("u1", "u2"),
        buttons=(Button("填写", url="https://x/p"),),
    )
    msg = render.robot_message(card)
    assert msg["msgtype"] == "markdown"  # an ActionCard cannot @ anyone
    assert msg["at"] == {"atUserIds": ["u1", "u2"], "isAtAll": False}
    assert "@u1" in msg["markdown"]["text"] and "@u2" in msg["markdown"]["text"]
    assert "https://x/p" in msg["markdown"]["text"]  # the link button is still there, inline


def test_at_all():
    msg = render.robot_message(CARDS["error"])
    assert msg["at"] == {"atUserIds": [], "isAtAll": True}


def test_callback_buttons_need_the_card_platform_and_never_appear_in_link_messages():
    card = CARDS["progress"]
    assert render.needs_callbacks(card)
    assert not render.needs_callbacks(CARDS["monday_summary"])
    text = json.dumps(render.robot_message(card), ensure_ascii=False)
    assert "progress.refresh" not in text and "刷新" not in text and "查看详情" in text


def test_an_enormous_card_is_cut_under_the_size_limit_and_says_so():
    rows = tuple((f"成员{n}", "计划" * 20, f"{n}%") for n in range(2000))
    card = Card("周报" * 100, blocks=(Table(("成员", "计划", "完成度"), rows),))
    msg = render.robot_message(card)
    text = msg["markdown"]["text"]
    assert len(text.encode()) <= render.MAX_TEXT_BYTES
    assert text.endswith(render.TRUNCATED)
    assert len(msg["markdown"]["title"]) <= render.MAX_TITLE
    assert len(render.card_params(card)["markdown"].encode()) <= render.MAX_TEXT_BYTES


def test_one_enormous_line_is_cut_too():
    text = render.fit("字" * 10_000, 1000)
    assert len(text.encode()) <= 1000 and text.endswith(render.TRUNCATED)


@pytest.mark.parametrize(
    "ratio, shown",
    [(None, "暂无数据"), (0.0, "0%"), (0.5, "50%"), (1.5, "150%")],
)
def test_progress_numbers_are_shown(ratio, shown):
    text = render.markdown(Card("进度", blocks=(Progress("支付转化率", ratio),)))
    assert shown in text


def test_line_breaks_inside_a_paragraph_survive_dingtalk_markdown():
    text = render.body(Card("t", blocks=(Markdown("第一行\n第二行"),)))
    assert text == "第一行  \n第二行"


def test_a_form_link_already_on_a_button_is_not_shown_twice():
    form = Form("plan.submit", (Input("items", "计划内容"),), link=LINK)
    card = Card("计划", form=form, buttons=(Button("在网页中填写", url=LINK),))
    assert [b.label for b in render.link_buttons(card)] == ["在网页中填写"]
    assert render.robot_message(card)["actionCard"]["singleURL"] == LINK


def test_inline_code_backticks_are_dropped():
    assert render.body(Card("t", blocks=(Markdown("写 `+2pp` 或 `=3.5`"),))) == "写 +2pp 或 =3.5"
