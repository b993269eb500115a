"""Card builders for progress and lag alerts (to be merged into cards/builders.py by the lead).

Builders are pure: they take plain values (anything shaped like ``ItemView``) and return
a ``Card``. "No data" is always shown as such, never as 0 %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from cards.format import arrow, percent, value
from cards.model import Button, Card, Field, Fields, Form, Input, Markdown, Note, Progress, Table

MAX_TEAM_ROWS = 30  # a folded card stays readable (and inside every platform's size limit)
MAX_NOTE = 1000


class ItemView(Protocol):
    """What the builders read of a plan item's progress (handlers.progress.ItemProgress has it)."""

    @property
    def item_id(self) -> int: ...

    @property
    def text(self) -> str: ...

    @property
    def kpi_name(self) -> str: ...

    @property
    def unit(self) -> str: ...

    @property
    def baseline(self) -> Decimal | None: ...

    @property
    def target(self) -> Decimal | None: ...

    @property
    def actual(self) -> Decimal | None: ...

    @property
    def actual_day(self) -> date | None: ...

    @property
    def completion(self) -> Decimal | None: ...

    @property
    def pace(self) -> Decimal | None: ...

    @property
    def status(self) -> str: ...

    @property
    def note(self) -> str: ...

    @property
    def lagging(self) -> bool: ...

    @property
    def ratio(self) -> float | None: ...


@dataclass(frozen=True)
class Pace:
    """Where the week stands: ``elapsed`` of ``total`` workdays are over; ``ratio`` the expected pace."""

    elapsed: int
    total: int
    ratio: Decimal | None


@dataclass(frozen=True)
class MemberRow:
    name: str
    items: Sequence[ItemView] | None  # None: no plan this week


def _pace_text(pace: Pace) -> str:
    if pace.ratio is None:
        return "本周没有工作日"
    return f"{percent(pace.ratio)}（已过 {pace.elapsed}/{pace.total} 个工作日）"


def _caption(item: ItemView) -> str:
    target = f"目标 {arrow(item.baseline, item.target, item.unit)}"
    if item.actual is None:
        return f"{target}，暂无数据"
    when = f"（{item.actual_day:%m-%d}）" if item.actual_day else ""
    return f"最新 {value(item.actual, item.unit)}{when}，{target}"


def _label(n: int, item: ItemView) -> str:
    return f"{n}. {item.text}（{item.kpi_name}）"


def progress_card(
    name: str, week: str, items: Sequence[ItemView], pace: Pace, *, this_week: bool = True
) -> Card:
    """A person's live progress: one bar per plan item against the week's expected pace."""
    blocks: list = [Fields((Field("周", week), Field("应达进度", _pace_text(pace))))]
    if not items:
        blocks.append(
            Markdown(
                "本周还没有提交计划。发送“写计划”开始。" if this_week else f"{name} 在 {week} 没有提交计划。"
            )
        )
    for n, item in enumerate(items, start=1):
        blocks.append(Progress(_label(n, item), item.ratio, _caption(item), item.lagging))
        if item.note:
            blocks.append(Note(f"说明：{item.note}"))
    lagging = sum(1 for i in items if i.lagging)
    if lagging:
        blocks.append(Markdown(f"**{lagging} 项落后于进度。** 落后提醒里可以补充说明或请组长支持。"))
    blocks.append(
        Note("完成度 =（最新值 − 基线）÷（目标 − 基线）；没有数据的事项显示“暂无数据”，不计为 0 %。")
    )
    return Card(
        title=f"{name} · {week} 进度",
        blocks=tuple(blocks),
        theme="orange" if lagging else "blue",
    )


def _average(items: Sequence[ItemView]) -> Decimal | None:
    known = [i.completion for i in items if i.completion is not None]
    if not known:
        return None
    return sum(known, Decimal(0)) / len(known)


def team_progress_card(
    team_name: str, week: str, rows: list[MemberRow], pace: Pace, uncounted: Sequence[str] = ()
) -> Card:
    """A leader's view: one line per member (plan items, average completion, items lagging);
    ``uncounted`` lists items the week's template does not score ("李雷 第2项 投诉率：…")."""
    table_rows: list[tuple[str, ...]] = []
    planned = lagging_total = 0
    for row in rows:
        if row.items is None:
            table_rows.append((row.name, "未提交", "—", "—"))
            continue
        planned += 1
        lagging = sum(1 for i in row.items if i.lagging)
        lagging_total += lagging
        table_rows.append(
            (row.name, str(len(row.items)), percent(_average(row.items)), f"{lagging} 项" if lagging else "—")
        )
    blocks: tuple[Fields | Markdown | Table | Note, ...] = (
        Fields((Field("周", week), Field("应达进度", _pace_text(pace)))),
        Markdown(f"已提交计划 {planned}/{len(rows)} 人，落后 {lagging_total} 项。"),
        Table(("成员", "计划项", "平均完成度", "落后"), tuple(table_rows)),
    )
    if uncounted:
        blocks += (Note("\n".join(uncounted)),)
    blocks += (Note("平均完成度只计有数据的事项。发送“进度 姓名”查看某位成员的明细。"),)
    return Card(
        title=f"{team_name} · {week} 团队进度", blocks=blocks, theme="orange" if lagging_total else "blue"
    )


def _item_buttons(item_id: int) -> tuple[Button, ...]:
    ref = {"item": str(item_id)}
    return (
        Button("更新说明", "progress.note", ref, style="primary"),
        Button("需要支持", "progress.help", ref),
        Button("本周不再提醒", "progress.snooze", ref),
    )


def lag_alert_card(item: ItemView, margin: int) -> Card:
    """To the employee: this item trails the week's pace; add a note, ask for help, or snooze."""
    blocks = (
        Markdown(
            f"**{item.text}** 目前完成 {percent(item.completion)}，"
            f"按已过的工作日应达 {percent(item.pace)}（落后超过 {margin} 个百分点）。"
        ),
        Fields(
            (
                Field("指标", item.kpi_name),
                Field("基线 → 目标", arrow(item.baseline, item.target, item.unit)),
                Field("最新值", _latest(item)),
                Field("完成度", percent(item.completion)),
            )
        ),
        Note("每个工作日最多提醒一次，只在 9:00–18:00。"),
    )
    return Card(
        title=f"进度提醒：{item.text}", blocks=blocks, buttons=_item_buttons(item.item_id), theme="orange"
    )


def _latest(item: ItemView) -> str:
    if item.actual is None:
        return "暂无数据"
    when = f"（{item.actual_day:%m-%d}）" if item.actual_day else ""
    return f"{value(item.actual, item.unit)}{when}"


def team_lag_card(team_id: str, team_name: str, day: date, lagging: Sequence[tuple[str, ItemView]]) -> Card:
    """To the leader: every lagging item of the team folded into one card."""
    shown = lagging[:MAX_TEAM_ROWS]
    rows = tuple((name, item.text, percent(item.completion), percent(item.pace)) for name, item in shown)
    people = len({name for name, _ in lagging})
    blocks: list = [
        Markdown(f"{day:%m-%d}：{people} 人的 {len(lagging)} 项计划落后于本周进度。"),
        Table(("成员", "事项", "完成度", "应达"), rows),
    ]
    if len(lagging) > len(shown):
        blocks.append(Note(f"另有 {len(lagging) - len(shown)} 项未列出；发送“进度”查看全部。"))
    blocks.append(Note("每个工作日最多一张汇总，只在 9:00–18:00。"))
    return Card(
        title=f"{team_name} · 进度落后 {len(lagging)} 项",
        blocks=tuple(blocks),
        buttons=(
            Button("查看团队进度", "progress.show", style="primary"),
            Button("本周不再提醒", "progress.team.snooze", {"team": team_id}),
        ),
        theme="orange",
    )


def note_form_card(item: ItemView, link: str = "") -> Card:
    """The note form; ``link`` is the same form as a signed web page (for cards without text inputs)."""
    return Card(
        title="更新进度说明",
        blocks=(Markdown(f"**{item.text}**（{item.kpi_name}）完成 {percent(item.completion)}"),),
        form=Form(
            action="progress.note.save",
            inputs=(
                Input(
                    "note",
                    "说明",
                    "textarea",
                    value=item.note,
                    required=True,
                    placeholder="例如：详情页改版周四上线，预计周五起转化率回升",
                ),
            ),
            values={"item": str(item.item_id)},
            submit_label="保存",
            link=link,
        ),
    )


def help_request_card(person_name: str, item: ItemView) -> Card:
    """To the leader: a member asks for support on one item."""
    blocks: list = [
        Markdown(f"**{person_name}** 在“{item.text}”上需要支持。"),
        Fields(
            (
                Field("指标", item.kpi_name),
                Field("基线 → 目标", arrow(item.baseline, item.target, item.unit)),
                Field("最新值", _latest(item)),
                Field("完成度", f"{percent(item.completion)}（应达 {percent(item.pace)}）"),
            )
        ),
    ]
    if item.note:
        blocks.append(Note(f"说明：{item.note}"))
    return Card(
        title=f"{person_name} 需要支持",
        blocks=tuple(blocks),
        buttons=(Button("查看团队进度", "progress.show"),),
        theme="red",
    )


def done_card(title: str, text: str) -> Card:
    return Card(title=title, blocks=(Markdown(text),), theme="green", toast=text)


def progress_error(message: str) -> Card:
    return Card(title="进度", blocks=(Markdown(message),), theme="red")
