"""The card a leader and the admins get when a week's appraisals are held for missing data (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cards.model import Button, Card, Markdown, Note


@dataclass(frozen=True)
class MissingLine:
    person: str  # name
    kpi: str  # name
    metric: str
    scope: str
    days: str  # "11-23、11-24" or "11-23 – 11-27"


@dataclass(frozen=True)
class SourceLine:
    source: str
    last_run: str  # "11-27 17:00" or "从未运行"
    error: str


def held_card(
    *, team_name: str, week: str, lines: Sequence[MissingLine], sources: Sequence[SourceLine], team_id: str
) -> Card:
    people = sorted({line.person for line in lines})
    body = [
        f"{team_name} {week} 有 {len(people)} 人的考核因数据缺失暂缓发布（未发给本人）：{'、'.join(people)}。"
    ]
    body += [
        f"· {line.person}：{line.kpi}（指标 {line.metric}，范围 {line.scope}）缺少 {line.days} 的数据"
        for line in lines
    ]
    blocks: list[Markdown | Note] = [Markdown("\n".join(body))]
    if sources:
        blocks.append(
            Markdown(
                "数据源最近一次运行：\n"
                + "\n".join(
                    f"· {s.source}：{s.last_run}" + (f"，错误：{s.error}" if s.error else "，没有报错")
                    for s in sources
                )
            )
        )
    blocks.append(
        Note(
            "数据到齐后会自动发布。“按现有数据发布”会把缺数据的项按 0 分计并标注“数据缺失”，原因记入版本说明。"
        )
    )
    value = {"team": team_id, "week": week}
    return Card(
        title=f"{week} 考核暂缓发布 · {team_name} · 数据缺失",
        theme="orange",
        blocks=tuple(blocks),
        buttons=(
            Button("重新拉取", action="appraisal.held.repoll", value=value, style="primary"),
            Button("按现有数据发布", action="appraisal.held.publish", value=value, style="danger"),
        ),
    )
