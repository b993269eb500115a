"""The template a person's week is scored by, as the plan needs it: which KPIs count this week.

The plan form lists the counted KPIs first and marks the others; the receipt, the web form and the
leader's team progress card say "本周模板不计此指标（不计分）" for an item whose KPI the week's
template does not weigh (such an item is stored, it just scores nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from handlers.appraisals import select_for
from storage.models import Kpi, Person, Role

UNCOUNTED = "本周模板不计此指标（不计分）"


@dataclass(frozen=True)
class WeekTemplate:
    """The template that applies to one person in one week, reduced to what planning needs."""

    label: str
    counted: tuple[str, ...]  # KPI keys the template weighs, heaviest first

    def counts(self, kpi_key: str) -> bool:
        return kpi_key in self.counted


def week_template(session: Session, person: Person, week: str, rules: Any = None) -> WeekTemplate | None:
    """The person's template for ``week``; None when no template applies (nothing to warn about)."""
    from appraisal.selection import NoTemplate
    from appraisal.templates import TemplateError

    try:
        template = select_for(session, person, week, rules).template
    except (NoTemplate, TemplateError, ValueError):
        return None
    heaviest = sorted(template.weights.items(), key=lambda kv: (-kv[1], kv[0]))
    return WeekTemplate(template.label, tuple(key for key, _ in heaviest))


def role_kpi_keys(session: Session, person: Person, kpis: Iterable[Kpi]) -> list[str]:
    """The KPIs the person's role sections suggest (normal and promotion sections), in order."""
    role = session.get(Role, person.role)
    if role is None:
        return []
    by_metric = {k.metric: k.key for k in kpis if k.metric}
    keys: list[str] = []
    for section in [*role.sections, *role.promo_sections]:
        key = by_metric.get(section[1]) if len(section) > 1 else None
        if key and key not in keys:
            keys.append(key)
    return keys


def ordered(kpis: Sequence[Kpi], template: WeekTemplate | None, role_keys: Sequence[str] = ()) -> list[Kpi]:
    """The template's KPIs first (heaviest first), then the role's, then the rest as given."""
    first = [*(template.counted if template else ()), *role_keys]
    rank = {key: n for n, key in reversed(list(enumerate(first)))}
    return sorted(kpis, key=lambda k: (rank.get(k.key, len(first)), kpis.index(k)))


def uncounted_lines(template: WeekTemplate | None, items: Iterable[tuple[int, str, str]]) -> list[str]:
    """ "第2项 投诉率：本周模板不计此指标（不计分）" for each (position, kpi key, kpi name) not counted."""
    if template is None:
        return []
    return [f"第{n}项 {name}：{UNCOUNTED}" for n, key, name in items if not template.counts(key)]
