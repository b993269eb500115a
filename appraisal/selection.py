"""Which appraisal template applies to a person in an ISO week, and why, in one sentence.

One deterministic rule (CONTRACT.md): a leader's manual switch > an active scenario > a
period > employee type > the role's default. A template applies when every condition it
names holds (its role, scenario, period, employee type); among those that apply, the one
whose highest condition ranks highest wins; ties go to the role-specific template, then
the one with more conditions, then the id. A period or a switch applies to every ISO week
that has a day inside it. Periods recur yearly by month-day and may cross New Year.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from appraisal.templates import Template

NEW_EMPLOYEE_DAYS = 90  # hired fewer days ago than this (at the week's Monday) → "new"

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

STEP_RANK = {"scenario": 3, "period": 2, "employee_type": 1, "default": 0}


def week_days(week: str) -> tuple[date, ...]:
    """The seven days (Monday first) of an ISO week written ``2026-W48``."""
    m = _WEEK.match(week)
    if not m:
        raise ValueError(f"周应写成 2026-W48 的形式，不是“{week}”")
    try:
        monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise ValueError(f"没有这一周：{week}") from None
    return tuple(monday + timedelta(days=n) for n in range(7))


def week_of(day: date) -> str:
    """The ISO week label of ``day``: ``2026-W48``."""
    year, number, _ = day.isocalendar()
    return f"{year}-W{number:02d}"


def _month_day(text: Any) -> tuple[int, int] | None:
    if not isinstance(text, str):
        return None
    m = _MONTH_DAY.match(text.strip())
    if not m:
        return None
    month, day = int(m.group(1)), int(m.group(2))
    if not (1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1]):
        return None
    return month, day


@dataclass(frozen=True)
class Period:
    """A yearly calendar window, month-day to month-day inclusive (warm-up included)."""

    id: str
    name: str
    start: tuple[int, int]
    end: tuple[int, int]

    def contains(self, day: date) -> bool:
        md = (day.month, day.day)
        if self.start <= self.end:
            return self.start <= md <= self.end
        return md >= self.start or md <= self.end  # crosses New Year, e.g. 12-20 → 01-05

    def touches(self, week: str) -> bool:
        return any(self.contains(day) for day in week_days(week))

    @property
    def window(self) -> str:
        """ "10-20–11-11" """
        return f"{self.start[0]:02d}-{self.start[1]:02d}–{self.end[0]:02d}-{self.end[1]:02d}"


# 618: Tmall and JD open pre-sales around 05-20; double11's warm-up starts around 10-20.
PRESET_PERIODS: Mapping[str, Period] = {
    "618": Period("618", "618", (5, 20), (6, 18)),
    "double11": Period("double11", "双11", (10, 20), (11, 11)),
}


def validate_period(entry: Mapping[str, Any]) -> list[str]:
    """Problems with one ``[[periods]]`` entry, one line per bad field."""
    pid = entry.get("id")
    where = f"periods ({pid})" if isinstance(pid, str) and pid else "periods (?)"
    problems = []
    if not isinstance(pid, str) or not pid.strip():
        problems.append(f"{where}.id: 必须写时段 id（字符串）")
    if "name" in entry and not isinstance(entry["name"], str):
        problems.append(f"{where}.name: 应为字符串")
    for key in ("from", "to"):
        if _month_day(entry.get(key)) is None:
            problems.append(f"{where}.{key}: 应为“月-日”，如 10-20，不是“{entry.get(key)}”")
    for key in sorted(set(entry) - {"id", "name", "from", "to"}):
        problems.append(f"{where}.{key}: 不认识的字段（可用：id、name、from、to）")
    return problems


def parse_period(entry: Mapping[str, Any]) -> Period:
    problems = validate_period(entry)
    if problems:
        raise ValueError("\n".join(problems))
    start, end = _month_day(entry["from"]), _month_day(entry["to"])
    assert start is not None and end is not None
    return Period(entry["id"], entry.get("name") or entry["id"], start, end)


def with_presets(periods: Iterable[Period]) -> dict[str, Period]:
    """The preset periods, overridden by any defined with the same id."""
    merged = dict(PRESET_PERIODS)
    merged.update({p.id: p for p in periods})
    return merged


@dataclass(frozen=True)
class Switch:
    """A leader's manual switch of the team's template, ``start`` to ``until`` inclusive (None: open)."""

    template_id: str
    start: date
    until: date | None
    by: str  # who switched, as people read it
    at: datetime

    def touches(self, week: str) -> bool:
        days = week_days(week)
        return self.start <= days[-1] and (self.until is None or self.until >= days[0])

    @property
    def window(self) -> str:
        if self.until is None:
            return f"自 {self.start:%m-%d} 起"
        return f"{self.start:%m-%d}–{self.until:%m-%d}"


@dataclass(frozen=True)
class Employee:
    id: str
    role: str
    type: str = "veteran"  # new | veteran, as written in the team file
    hire_date: date | None = None


def employee_type(person: Employee, week: str, new_days: int = NEW_EMPLOYEE_DAYS) -> tuple[str, str]:
    """("new" | "veteran", how we know): "new" when the file says so or the hire date is recent."""
    if person.type == "new":
        return "new", "新员工"
    if person.hire_date is not None:
        days = (week_days(week)[0] - person.hire_date).days
        if days < new_days:
            return "new", f"新员工，入职 {max(days, 0)} 天"
    return "veteran", "老员工"


@dataclass(frozen=True)
class Why:
    """Which rule chose the template, over what, since when: plain values a card words per locale
    (cards/template_why.py). Dates are ISO ("2026-11-20") or month-day ("10-20") strings."""

    step: str  # switch | scenario | period | employee_type | default
    template: str  # the chosen template's label
    over: str = ""  # the label of the template the rule replaced, if any
    detail: str = ""  # who switched | the scenario's name | the period's name | new | veteran
    since: str = ""  # switch start | period start (MM-DD) | hire date
    until: str = ""  # switch end | period end (MM-DD)
    days: str = ""  # employee_type from a hire date: days since hire at the week's Monday
    role: str = ""  # the person's role id

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class Selection:
    template: Template
    reason: str  # "大促模板（双11 10-20–11-11）替代 运营默认模板"
    step: str  # switch | scenario | period | employee_type | default
    replaced: Template | None = None
    why: Why | None = None


class NoTemplate(LookupError):
    """No template applies to the person; the message says what to add to the team file."""


def _applies(
    t: Template,
    person: Employee,
    week: str,
    kind: str,
    periods: Mapping[str, Period],
    scenarios: Mapping[str, str],
) -> bool:
    if t.role is not None and t.role != person.role:
        return False
    if t.scenario is not None and t.scenario not in scenarios:
        return False
    if t.period is not None:
        period = periods.get(t.period)
        if period is None or not period.touches(week):
            return False
    return t.employee_type is None or t.employee_type == kind


def _step(t: Template) -> str:
    return t.conditions[0] if t.conditions else "default"


def _rank(t: Template) -> tuple[int, int, int]:
    return (STEP_RANK[_step(t)], int(t.role is not None), len(t.conditions))


def _why(t: Template, periods: Mapping[str, Period], scenarios: Mapping[str, str], type_words: str) -> str:
    words = []
    if t.scenario is not None:
        words.append(f"{scenarios.get(t.scenario, t.scenario)}场景")
    if t.period is not None:
        period = periods[t.period]
        words.append(f"{period.name} {period.window}")
    if t.employee_type is not None:
        words.append(type_words)
    return f"{t.label}（{'，'.join(words)}）" if words else t.label


def _why_of(
    t: Template,
    over: Template | None,
    person: Employee,
    week: str,
    periods: Mapping[str, Period],
    scenarios: Mapping[str, str],
    kind: str,
) -> Why:
    step, base = _step(t), Why(_step(t), t.label, over.label if over else "", role=person.role)
    if step == "scenario" and t.scenario is not None:
        return replace(base, detail=scenarios.get(t.scenario, t.scenario))
    if step == "period" and t.period is not None:
        p = periods[t.period]
        return replace(
            base,
            detail=p.name,
            since=f"{p.start[0]:02d}-{p.start[1]:02d}",
            until=f"{p.end[0]:02d}-{p.end[1]:02d}",
        )
    if step == "employee_type":
        hired = person.hire_date
        days = "" if person.type == "new" or hired is None else str(max((week_days(week)[0] - hired).days, 0))
        return replace(base, detail=kind, since=hired.isoformat() if hired else "", days=days)
    return base


def select_template(
    templates: Sequence[Template],
    *,
    person: Employee,
    week: str,
    periods: Mapping[str, Period] = PRESET_PERIODS,
    scenarios: Mapping[str, str] | None = None,
    switches: Sequence[Switch] = (),
    new_days: int = NEW_EMPLOYEE_DAYS,
) -> Selection:
    """The template for ``person`` in ``week`` and the reason in words.

    ``scenarios`` maps each *active* scenario id to its name; ``switches`` are the team's
    manual switches (cancelled ones left out). Raises :class:`NoTemplate` when nothing applies.
    """
    active = dict(scenarios or {})
    kind, type_words = employee_type(person, week, new_days)
    ranked = sorted(
        (t for t in templates if _applies(t, person, week, kind, periods, active)),
        key=lambda t: (tuple(-x for x in _rank(t)), t.id),
    )
    auto: Selection | None = None
    if ranked:
        winner = ranked[0]
        replaced = next((t for t in ranked[1:] if _rank(t)[0] < _rank(winner)[0]), None)
        reason = _why(winner, periods, active, type_words)
        if replaced is not None:
            reason += f"替代 {replaced.label}"
        why = _why_of(winner, replaced, person, week, periods, active, kind)
        auto = Selection(winner, reason, _step(winner), replaced, why)

    by_id = {t.id: t for t in templates}
    for switch in sorted(switches, key=lambda s: s.at, reverse=True):
        chosen = by_id.get(switch.template_id)
        if chosen is None or not switch.touches(week):
            continue
        if chosen.role is not None and chosen.role != person.role:
            continue  # a team switch leaves members of other roles on their own templates
        reason = f"{chosen.label}（{switch.by} 手动切换，{switch.window}）"
        if auto is not None and auto.template.id != chosen.id:
            reason += f"替代 {auto.template.label}"
        over = auto.template if auto is not None and auto.template.id != chosen.id else None
        why = Why(
            "switch",
            chosen.label,
            over.label if over else "",
            detail=switch.by,
            since=switch.start.isoformat(),
            until=switch.until.isoformat() if switch.until else "",
            role=person.role,
        )
        return Selection(chosen, reason, "switch", auto.template if auto else None, why)

    if auto is None:
        raise NoTemplate(
            f"没有适用于 {person.id}（岗位 {person.role}）的考核模板：请在团队文件里为该岗位加一个默认模板"
        )
    return auto
