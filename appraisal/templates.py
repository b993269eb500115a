"""Appraisal templates from the team file's ``[[templates]]`` table: validation and a value object.

```toml
[[templates]]
id = "ops-promo"
name = "大促模板"
role = "operations"
period = "double11"                      # or scenario = "…", employee_type = "new" | "veteran"
weights = { activity_sales = 70, conversion_rate = 30 }   # must sum to 100
cap = 150                                # % one KPI's completion may reach (default 150)
grades = { S = 120, A = 100, B = 80, C = 60 }              # lower bounds; below every band is D
allow_negative = false                   # true: wrong-way moves count negative (down to −cap)
curves = { conversion_rate = [{ below = 60, score = 0 }, { below = 80, score = 60 }] }
ratings = { 1 = 0, 2 = 60, 3 = 80, 4 = 100, 5 = 120 }       # 1–5 stars → %, rating KPIs
adjustments = [{ kpi = "bad_reviews", name = "差评事件", points = -5, min = -20, max = 0 }]
```

``validate(entry, kpi_keys)`` returns one problem line per bad field (the caller, ``planloop
apply``, prints them); ``parse_template(entry)`` builds a :class:`Template` or raises
:class:`TemplateError` with the same lines. The database keeps the scoring keys
(``spec_of(entry)``) in ``templates.spec``; the rest are columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from appraisal.completion import DEFAULT_CAP, DEFAULT_RATING_SCALE, HUNDRED, Curve, Step

DEFAULT_GRADES: tuple[tuple[str, Decimal], ...] = (
    ("S", Decimal(120)),
    ("A", Decimal(100)),
    ("B", Decimal(80)),
    ("C", Decimal(60)),
)
LOWEST_GRADE = "D"
EMPLOYEE_TYPES = ("new", "veteran")

COLUMN_KEYS = ("id", "name", "role", "period", "scenario", "employee_type")
SPEC_KEYS = ("weights", "cap", "grades", "curves", "allow_negative", "ratings", "adjustments")
KNOWN_KEYS = frozenset(COLUMN_KEYS + SPEC_KEYS)

MAX_CAP = Decimal(1000)  # %; beyond this a cap is a typo
MAX_POINTS = Decimal(100)  # an adjustment's range stays within ±100 points


class TemplateError(ValueError):
    """A template that cannot be used; ``problems`` are the lines ``validate`` returned."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Adjustment:
    """A bonus or penalty item: ``points`` per occurrence of ``kpi``'s count, total kept in [low, high]."""

    kpi: str
    name: str
    points: Decimal
    low: Decimal
    high: Decimal

    def total(self, count: Decimal) -> Decimal:
        return min(max(self.points * count, self.low), self.high)


@dataclass(frozen=True)
class Template:
    """One appraisal template. Percent figures from the file are kept as ratios (150 → 1.5),
    weights and grade bounds as points out of 100."""

    id: str
    name: str = ""
    role: str | None = None
    period: str | None = None
    scenario: str | None = None
    employee_type: str | None = None
    weights: Mapping[str, Decimal] = field(default_factory=dict)
    cap: Decimal = DEFAULT_CAP
    grades: tuple[tuple[str, Decimal], ...] = DEFAULT_GRADES
    curves: Mapping[str, Curve] = field(default_factory=dict)
    allow_negative: bool = False
    ratings: Mapping[int, Decimal] = field(default_factory=lambda: dict(DEFAULT_RATING_SCALE))
    adjustments: tuple[Adjustment, ...] = ()

    @property
    def label(self) -> str:
        """What people read: the name, else the id."""
        return self.name or self.id

    @property
    def conditions(self) -> tuple[str, ...]:
        """The conditions under which the template applies, highest precedence first."""
        named = (("scenario", self.scenario), ("period", self.period), ("employee_type", self.employee_type))
        return tuple(kind for kind, value in named if value)

    def grade(self, score: Decimal) -> str:
        """The grade band ``score`` falls in (lower bounds inclusive); below every band, D."""
        for letter, bound in sorted(self.grades, key=lambda g: g[1], reverse=True):
            if score >= bound:
                return letter
        return LOWEST_GRADE


def spec_of(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The scoring part of a team-file entry, as stored in ``templates.spec`` (JSON)."""
    return {key: entry[key] for key in SPEC_KEYS if key in entry}


def _where(entry: Mapping[str, Any]) -> str:
    """The prefix every team-file problem uses: table (entry)."""
    tid = entry.get("id")
    return f"templates ({tid})" if isinstance(tid, str) and tid else "templates (?)"


def _number(value: Any) -> Decimal | None:
    """A TOML number as an exact Decimal; None for anything else (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def validate(
    entry: Mapping[str, Any],
    kpi_keys: Iterable[str] | None,
    *,
    periods: Iterable[str] | None = None,
    scenarios: Iterable[str] | None = None,
    roles: Iterable[str] | None = None,
) -> list[str]:
    """Problems with one ``[[templates]]`` entry, one line per bad field, each naming the template
    and the field. Empty when the entry is usable. ``kpi_keys`` (and optionally the known period,
    scenario and role ids) are checked when given; None skips that check."""
    where = _where(entry)
    problems: list[str] = []

    def bad(field_name: str, message: str) -> None:
        problems.append(f"{where}.{field_name}: {message}")

    kpis = set(kpi_keys) if kpi_keys is not None else None
    tid = entry.get("id")
    if not isinstance(tid, str) or not tid.strip():
        bad("id", "必须写模板 id（字符串）")
    elif len(tid) > 64:
        bad("id", "不能超过 64 个字符")
    for key in sorted(set(entry) - KNOWN_KEYS):
        bad(key, f"不认识的字段（可用：{'、'.join(sorted(KNOWN_KEYS))}）")
    for key in ("name", "role", "period", "scenario", "employee_type"):
        if key in entry and entry[key] is not None and not isinstance(entry[key], str):
            bad(key, "应为字符串")
    if isinstance(entry.get("employee_type"), str) and entry["employee_type"] not in EMPLOYEE_TYPES:
        bad("employee_type", f"应为 new 或 veteran，不是“{entry['employee_type']}”")
    for key, known, what in (
        ("period", periods, "时段"),
        ("scenario", scenarios, "场景"),
        ("role", roles, "岗位"),
    ):
        value = entry.get(key)
        if known is not None and isinstance(value, str) and value and value not in set(known):
            bad(key, f"没有 id 为“{value}”的{what}")

    weights = _check_weights(entry.get("weights"), kpis, bad)
    cap = _check_cap(entry.get("cap"), bad)
    _check_grades(entry.get("grades"), cap, bad)
    _check_curves(entry.get("curves"), weights, bad)
    if "allow_negative" in entry and not isinstance(entry["allow_negative"], bool):
        bad("allow_negative", "应为 true 或 false")
    _check_ratings(entry.get("ratings"), bad)
    _check_adjustments(entry.get("adjustments"), kpis, weights, bad)
    return problems


def _check_weights(raw: Any, kpis: set[str] | None, bad: Any) -> dict[str, Decimal]:
    if raw is None:
        bad("weights", "必须写各指标权重，例如 { conversion_rate = 60, ctr = 40 }")
        return {}
    if not isinstance(raw, Mapping) or not raw:
        bad("weights", "应为非空的表：{ 指标 key = 权重 }")
        return {}
    weights: dict[str, Decimal] = {}
    for key, value in raw.items():
        number = _number(value)
        if number is None:
            bad(f"weights.{key}", f"权重应为数字，不是“{value}”")
            continue
        if number <= 0 or number > HUNDRED:
            bad(f"weights.{key}", f"权重应在 0–100 之间（不含 0），不是 {value}")
            continue
        if kpis is not None and key not in kpis:
            bad(f"weights.{key}", f"没有 key 为“{key}”的指标（[[kpis]]）")
        weights[key] = number
    if len(weights) == len(raw):
        total = sum(weights.values(), Decimal(0))
        if total != HUNDRED:
            bad("weights", f"权重合计为 {total.normalize():f}，必须等于 100")
    return weights


def _check_cap(raw: Any, bad: Any) -> Decimal:
    if raw is None:
        return DEFAULT_CAP * HUNDRED
    number = _number(raw)
    if number is None or number < HUNDRED or number > MAX_CAP:
        bad("cap", f"封顶应为 100–{MAX_CAP} 之间的百分数，不是“{raw}”")
        return DEFAULT_CAP * HUNDRED
    return number


def _check_grades(raw: Any, cap: Decimal, bad: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, Mapping) or not raw:
        bad("grades", "应为非空的表：{ S = 120, A = 100, B = 80, C = 60 }")
        return
    bounds: dict[Decimal, str] = {}
    for letter, value in raw.items():
        number = _number(value)
        if not (1 <= len(letter) <= 2):
            bad(f"grades.{letter}", "等级名应为 1–2 个字符")
        if number is None or number < 0 or number > cap:
            bad(f"grades.{letter}", f"下限应为 0–{cap.normalize():f} 之间的数字，不是“{value}”")
        elif number in bounds:
            bad(f"grades.{letter}", f"与 {bounds[number]} 的下限相同（{value}）")
        else:
            bounds[number] = letter


def _check_curves(raw: Any, weights: Mapping[str, Decimal], bad: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        bad("curves", "应为表：{ 指标 key = [{ below = 60, score = 0 }, …] }")
        return
    for key, steps in raw.items():
        where = f"curves.{key}"
        if key not in weights:
            bad(where, "曲线只能给本模板 weights 里的指标")
        if not isinstance(steps, list) or not steps:
            bad(where, "应为非空数组：[{ below = 60, score = 0 }, { below = 80, score = 60 }]")
            continue
        last_below = last_score = None
        for n, step in enumerate(steps, 1):
            if not isinstance(step, Mapping) or set(step) != {"below", "score"}:
                bad(f"{where}[{n}]", "每段应写 { below = 完成度%, score = 计分% }")
                continue
            below, score = _number(step["below"]), _number(step["score"])
            if below is None or below <= 0:
                bad(f"{where}[{n}].below", f"应为大于 0 的百分数，不是“{step['below']}”")
                continue
            if score is None or score < 0:
                bad(f"{where}[{n}].score", f"应为不小于 0 的百分数，不是“{step['score']}”")
                continue
            if last_below is not None and below <= last_below:
                bad(f"{where}[{n}].below", "各段的 below 应逐段递增")
            if last_score is not None and score < last_score:
                bad(f"{where}[{n}].score", "各段的 score 不能比前一段低（曲线须单调）")
            if score > below:
                bad(
                    f"{where}[{n}].score",
                    f"计分 {score.normalize():f}% 不能高于本段上限 {below.normalize():f}%",
                )
            last_below, last_score = below, score


def _check_ratings(raw: Any, bad: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, Mapping) or {str(k) for k in raw} != {"1", "2", "3", "4", "5"}:
        bad("ratings", "应写全 1–5 星各自对应的百分数：{ 1 = 0, 2 = 60, 3 = 80, 4 = 100, 5 = 120 }")
        return
    by_stars = {str(k): v for k, v in raw.items()}
    previous = None
    for stars in ("1", "2", "3", "4", "5"):
        value = by_stars[stars]
        number = _number(value)
        if number is None or number < 0 or number > MAX_CAP:
            bad(f"ratings.{stars}", f"应为 0–{MAX_CAP} 之间的百分数，不是“{value}”")
            return
        if previous is not None and number < previous:
            bad(f"ratings.{stars}", "星级越高，百分数不能越低")
        previous = number


def _check_adjustments(raw: Any, kpis: set[str] | None, weights: Mapping[str, Decimal], bad: Any) -> None:
    if raw is None:
        return
    if not isinstance(raw, list):
        bad("adjustments", "应为数组：[{ kpi = …, points = -5, min = -20, max = 0 }]")
        return
    seen: set[str] = set()
    for n, item in enumerate(raw, 1):
        where = f"adjustments[{n}]"
        if not isinstance(item, Mapping):
            bad(where, "每项应为表：{ kpi = …, points = -5, min = -20, max = 0 }")
            continue
        unknown = set(item) - {"kpi", "name", "points", "min", "max"}
        if unknown:
            bad(where, f"不认识的字段：{'、'.join(sorted(unknown))}")
        kpi = item.get("kpi")
        if not isinstance(kpi, str) or not kpi:
            bad(f"{where}.kpi", "必须写计数用的指标 key")
        else:
            if kpis is not None and kpi not in kpis:
                bad(f"{where}.kpi", f"没有 key 为“{kpi}”的指标（[[kpis]]）")
            if kpi in weights:
                bad(f"{where}.kpi", f"“{kpi}”已在 weights 里计分，不能同时作加减分项")
            if kpi in seen:
                bad(f"{where}.kpi", f"“{kpi}”重复")
            seen.add(kpi)
        if "name" in item and not isinstance(item["name"], str):
            bad(f"{where}.name", "应为字符串")
        points = _number(item.get("points"))
        low, high = _number(item.get("min", 0)), _number(item.get("max", 0))
        if points is None or points == 0:
            bad(f"{where}.points", f"每次加减的分数应为非零数字，不是“{item.get('points')}”")
        if low is None or high is None or not (-MAX_POINTS <= low <= 0 <= high <= MAX_POINTS):
            bad(f"{where}.min/max", f"范围应满足 -{MAX_POINTS} ≤ min ≤ 0 ≤ max ≤ {MAX_POINTS}")


def parse_template(entry: Mapping[str, Any], kpi_keys: Iterable[str] | None = None) -> Template:
    """A :class:`Template` from a team-file entry (or a stored row's columns + spec)."""
    problems = validate(entry, kpi_keys)
    if problems:
        raise TemplateError(problems)
    ratings_raw = entry.get("ratings")
    ratings = (
        {int(k): Decimal(str(v)) / HUNDRED for k, v in ratings_raw.items()}
        if ratings_raw
        else dict(DEFAULT_RATING_SCALE)
    )
    grades_raw = entry.get("grades")
    grades = (
        tuple((letter, Decimal(str(bound))) for letter, bound in grades_raw.items())
        if grades_raw
        else DEFAULT_GRADES
    )
    curves = {
        key: Curve(
            tuple(Step(Decimal(str(s["below"])) / HUNDRED, Decimal(str(s["score"])) / HUNDRED) for s in steps)
        )
        for key, steps in (entry.get("curves") or {}).items()
    }
    adjustments = tuple(
        Adjustment(
            kpi=a["kpi"],
            name=a.get("name", ""),
            points=Decimal(str(a["points"])),
            low=Decimal(str(a.get("min", 0))),
            high=Decimal(str(a.get("max", 0))),
        )
        for a in entry.get("adjustments") or []
    )
    cap = entry.get("cap")
    return Template(
        id=entry["id"],
        name=entry.get("name") or "",
        role=entry.get("role") or None,
        period=entry.get("period") or None,
        scenario=entry.get("scenario") or None,
        employee_type=entry.get("employee_type") or None,
        weights={key: Decimal(str(value)) for key, value in entry["weights"].items()},
        cap=Decimal(str(cap)) / HUNDRED if cap is not None else DEFAULT_CAP,
        grades=grades,
        curves=curves,
        allow_negative=bool(entry.get("allow_negative", False)),
        ratings=ratings,
        adjustments=adjustments,
    )


def conflicts(templates: Iterable[Template]) -> list[str]:
    """Templates that would tie under the selection rule (same role and the same conditions):
    the selection would fall back to the id order, so ``apply`` should refuse them."""
    seen: dict[tuple[Any, ...], str] = {}
    problems: list[str] = []
    for t in sorted(templates, key=lambda t: t.id):
        key = (t.role, t.scenario, t.period, t.employee_type)
        if key in seen:
            problems.append(
                f"templates ({t.id}): 与 {seen[key]} 的适用条件完全相同（岗位、场景、时段、员工类型），无法确定用哪个"
            )
        else:
            seen[key] = t.id
    return problems
