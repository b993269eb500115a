"""The welcome card a person gets with their first message to the bot: what planloop does for
them, the three things to try as buttons, the guide; for a leader, the team's setup checklist.

Pure: the facts come in as values (``SetupCheck``), the card goes out.
"""

from __future__ import annotations

from dataclasses import dataclass

from cards.model import Button, Card, Markdown, Note, Table

# The commands a welcome button may run (``chat.command``): what a person would type.
TRY_FIRST = (("写计划", "写本周计划"), ("进度", "看本周进度"), ("考核", "看最近的考核"))


@dataclass(frozen=True)
class SetupCheck:
    """One line of a leader's checklist: what, whether it is in place, what it is or how to fix it."""

    what: str
    ok: bool
    detail: str


def welcome_card(name: str, guide_url: str = "", checklist: tuple[SetupCheck, ...] = ()) -> Card:
    blocks: list = [
        Markdown(
            f"{name}，你好！我是 planloop。\n"
            "每周一在这里写计划，每一项都对应一个业务指标；我每天从店铺数据算进度，落后时提醒你，"
            "周末按数据给出考核，每一步怎么算的都写在卡片上。"
        ),
        Markdown("先试试这三件事：**写计划**、**进度**、**考核**（点下面的按钮，或直接发这几个字）。"),
    ]
    if checklist:
        blocks.append(
            Markdown(
                f"**你是组长：团队的准备情况**（{sum(c.ok for c in checklist)}/{len(checklist)} 项就绪）"
            )
        )
        blocks.append(
            Table(
                header=("事项", "状态", "说明"),
                rows=tuple((c.what, "✅ 就绪" if c.ok else "⚠️ 待处理", c.detail) for c in checklist),
            )
        )
    if guide_url:
        blocks.append(Note("使用指南：半小时学会全部功能（见下方按钮）。"))
    else:
        blocks.append(Note("发送“帮助”查看你可以用的全部命令。"))
    buttons = [Button(label, action="chat.command", value={"command": word}) for word, label in TRY_FIRST]
    if guide_url:
        buttons.append(Button("使用指南", url=guide_url))
    return Card(title="欢迎使用 planloop", blocks=tuple(blocks), buttons=tuple(buttons), theme="green")
