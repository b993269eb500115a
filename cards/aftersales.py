"""After-sales lines on the cards: the week's cases by cause, open cases, cause against last week.

Pure rendering: the numbers come from storage.cases (counted from the stored cases)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from cards.model import Card, Markdown, Note
from sources.causes import CAUSES


def _by_cause(counts: Mapping[str, int]) -> str:
    shown = [f"{c} {counts.get(c, 0)}" for c in CAUSES if counts.get(c, 0)]
    return " · ".join(shown) if shown else "无"


def week_cases_block(
    by_cause: Mapping[str, int],
    open_count: int,
    oldest_open: tuple[str, str, datetime] | None,
    tz: ZoneInfo,
) -> tuple[Markdown, Note]:
    """``本周售后 9 件：物流 5 · 产品 2 …；未结 3 件，最早 11-22 11:00 开始（pdd-after P2）``."""
    total = sum(by_cause.values())
    text = f"**本周售后 {total} 件**：{_by_cause(by_cause)}"
    if open_count:
        text += f"\n未结 {open_count} 件"
        if oldest_open is not None:
            shop, case_id, opened = oldest_open
            text += f"，最早的 {opened.astimezone(tz):%m-%d %H:%M} 开始（{shop} {case_id}）"
    else:
        text += "\n没有未结的售后单"
    return Markdown(text), Note(
        "按售后单的申请时间计入当天；原因按 [aftersales] 规则归类，未识别的原因计入“其他”。"
    )


def with_blocks(card: Card, blocks: tuple[Markdown | Note, ...]) -> Card:
    """The card with ``blocks`` added at the end (cards are immutable)."""
    from dataclasses import replace

    return replace(card, blocks=card.blocks + blocks)


def cause_changes_line(last: Mapping[str, int], this: Mapping[str, int]) -> str:
    """``物流 12 → 7 · 产品 3 → 4``: each cause seen in either week, last week first."""
    parts = [f"{c} {last.get(c, 0)} → {this.get(c, 0)}" for c in CAUSES if last.get(c, 0) or this.get(c, 0)]
    return " · ".join(parts)


def largest_causes(counts: Mapping[str, int], n: int = 3) -> list[str]:
    """The causes with the most cases, largest first (ties in the table's order); none with 0."""
    ranked = sorted((c for c in CAUSES if counts.get(c, 0)), key=lambda c: -counts[c])
    return ranked[:n]
