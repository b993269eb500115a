"""Row 6 of issue 17: what a person typed is shown, not interpreted, in every platform's markdown."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cards.model import Card, Field, Fields, Markdown, Note, Progress, Table
from cards.render import dingtalk, feishu, wecom
from cards.render.literal import inert

HOSTILE = [
    "[点此查看考核明细](http://evil.example/phish)",
    "![x](http://evil.example/pixel.png)",
    "[a [b]](http://evil.example/nested)",
    "[click][1]\n\n[1]: http://evil.example/ref",
    "[点此] (http://evil.example/space)",
    "<at id=all></at> 请看",
    '<at user_id="ou_leader">主管</at>',
    "@all 开会",
    "@所有人 开会",
    "<@zhangwei> 看这里",
    "# 标题党",
    "  ### heading",
    "<font color=red>红字</font>",
    "<a href='http://evil.example/a'>x</a>",
    "<img src=http://evil.example/i.png>",
    "&lt;at id=all&gt;",
]

LINK = re.compile(r"\[[^\]]*\]\s*[(\[:]")
TAG = re.compile(r"<\s*/?\s*(at|a|img|font|@)\b", re.IGNORECASE)


def hostile_card(text: str) -> Card:
    """The same typed text in every slot a builder fills from user input."""
    return Card(
        title=text,
        blocks=(
            Markdown(f"**申诉理由**：{text}\n{text}"),
            Fields((Field(text, text),)),
            Progress(text, 0.5, caption=text),
            Table((text, "数值"), ((text, "1"),)),
            Note(text),
        ),
    )


def _feishu_markdown(card: Card) -> list[str]:
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("tag") == "markdown":
                out.append(node["content"])
            elif node.get("tag") == "plain_text":
                return  # never parsed by Feishu
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(feishu.render(card))
    walk(feishu.render(card, interactive=False))
    return out


def _dingtalk_markdown(card: Card) -> list[str]:
    rendered = dingtalk.render(card)
    robot = rendered["robot_message"]
    texts = [robot.get("markdown", {}).get("text", ""), robot.get("actionCard", {}).get("text", "")]
    texts.append(rendered["app_robot"]["msgParam"]["text"])
    texts.append(rendered["card_params"]["markdown"])
    return [t for t in texts if t]


def _wecom_markdown(card: Card) -> list[str]:
    texts = list(wecom.markdown_parts(card, 4096))
    for message in wecom.robot_messages(card) + wecom.chat_messages(card):
        if message.get("msgtype") == "markdown":
            texts.append(message["markdown"]["content"])
    # WeCom's own colour tags (with quotes, from the renderer) are not typed text
    return [OWN_FONT.sub("", t) for t in texts]


OWN_FONT = re.compile(r'<font color="(?:comment|warning|info)">|</font>')


RENDERERS = {"feishu": _feishu_markdown, "dingtalk": _dingtalk_markdown, "wecom": _wecom_markdown}


@pytest.mark.parametrize("platform", sorted(RENDERERS))
@pytest.mark.parametrize("text", HOSTILE)
def test_typed_markup_is_shown_not_interpreted(platform, text):
    texts = RENDERERS[platform](hostile_card(text))
    assert texts, "the card must produce markdown to check"
    joined = "\n".join(texts)
    assert not LINK.search(joined), joined  # no link, image or reference link
    assert not TAG.search(joined), joined  # no <at>, <@…>, <a>, <img>, <font> from the text
    for line in joined.splitlines():
        # the only heading is DingTalk's own "#### title", and the title in it is no heading
        if line.lstrip().startswith("#"):
            assert platform == "dingtalk" and line.startswith("#### ") and not line[5:].startswith("#")
    if platform == "dingtalk":  # @ in text + an at-list would notify; ours come from Card.mentions
        assert "@" not in joined
    # what was typed is still there to read
    for word in re.findall(r"[\w\u4e00-\u9fff.]{3,}", text):
        assert word in joined or word in joined.replace("＠", "@"), word


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("[x](http://e.example)", "［x］(http://e.example)"),
        ("![i](s)", "!［i］(s)"),
        ("[ref]: http://e.example", "［ref］: http://e.example"),
        ("格式：事项 指标 目标 [@范围]", "格式：事项 指标 目标 [@范围]"),  # no link shape: unchanged
        ("# h\n  ## h2\na # b", "＃ h\n  ＃# h2\na # b"),
        ("plain", "plain"),
    ],
)
def test_inert_table(typed, shown):
    assert inert(typed) == shown


def test_our_own_mentions_and_links_still_work():
    from cards.model import Button

    card = Card("进度", blocks=(Markdown("看 [这里](http://x)"),), buttons=(Button("打开", url="https://planloop.test/p/t"),),
                mentions=("staff-1", "all"))  # fmt: skip
    text = dingtalk.render(card)["robot_message"]["markdown"]["text"]
    assert "[打开](https://planloop.test/p/t)" in text and "@staff-1" in text and "@所有人" in text
    assert "[这里](" not in text
    assert dingtalk.render(card)["robot_message"]["at"] == {"atUserIds": ["staff-1"], "isAtAll": True}
    assert "<at id=all></at>" in json.dumps(feishu.render(card), ensure_ascii=False)
