"""Plain-text rendering of a Card: every number a person would read, links as URLs.

Used by the simulator's JSON face, by screen readers, and as the fallback body of
platforms that only take text.
"""

from __future__ import annotations

import re

from cards.model import Card, Divider, Fields, Markdown, Note, Progress, Table

_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def plain(markdown: str) -> str:
    """Strip the markdown subset: ``**x**`` -> ``x``, ``[t](u)`` -> ``t u``."""
    text = _LINK.sub(lambda m: f"{m.group(1)} {m.group(2)}", markdown)
    return _BOLD.sub(r"\1", text)


def bar(ratio: float | None, width: int = 10) -> str:
    """A text progress bar; None is "暂无数据" (no data), never an empty bar."""
    if ratio is None:
        return "暂无数据"
    shown = max(0.0, min(ratio, 1.0))
    filled = round(shown * width)
    return "█" * filled + "░" * (width - filled) + f" {ratio * 100:.0f}%"


def render(card: Card) -> str:
    lines: list[str] = [card.title]
    for block in card.blocks:
        if isinstance(block, Markdown):
            lines.append(plain(block.text))
        elif isinstance(block, Fields):
            lines.extend(f"{row.label}：{row.value}" for row in block.rows)
        elif isinstance(block, Progress):
            flag = "（落后）" if block.lagging else ""
            caption = f" {block.caption}" if block.caption else ""
            lines.append(f"{block.label} {bar(block.ratio)}{flag}{caption}")
        elif isinstance(block, Table):
            lines.append(" | ".join(block.header))
            lines.extend(" | ".join(row) for row in block.rows)
        elif isinstance(block, Note):
            lines.append(plain(block.text))
        elif isinstance(block, Divider):
            lines.append("—")
    if card.form is not None:
        if card.form.error:
            lines.append(f"错误：{card.form.error}")
        for field in card.form.inputs:
            shown = field.value or field.placeholder
            lines.append(f"[{field.label}] {shown}".rstrip())
            if field.error:
                lines.append(f"  ✗ {field.error}")
        lines.append(f"<{card.form.submit_label}>")
    for button in card.buttons:
        lines.append(f"<{button.label}> {button.url}".rstrip() if button.url else f"<{button.label}>")
    return "\n".join(line for line in lines if line != "")
