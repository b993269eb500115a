"""One explanation of an appraisal row, for the card and the web page alike (pure).

A stored row (``scoring.Row.to_dict()``) becomes the sentence people read: the completion with
its formula filled in, what the curve or the cap did, or why the row counts 0. The card and the
page both call :func:`explain`, so they never disagree on a row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from cards import format as fmt
from cards.i18n import Texts, texts


def combine_rule(locale: str = "zh-CN") -> str:
    """How several plan items on one KPI combine: stated on the card, the page and in docs/appraisal.md."""
    return texts(locale)("explain.combine")


COMBINE_RULE = combine_rule()


def _dec(value: object) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def formula_number(v: Decimal, unit: str = "") -> str:
    """A number inside a formula: 2–4 decimals for fractional or percent values ("3.00", "1.104"),
    thousands separators for large whole ones ("130,000")."""
    if unit != "%" and v == v.to_integral_value():
        return f"{int(v):,}"
    q = v.quantize(Decimal("0.0001")).normalize()
    exponent = q.as_tuple().exponent
    places = max(2, -exponent if isinstance(exponent, int) else 2)
    return f"{v:,.{places}f}"


def _completion_text(row: Mapping[str, object], raw: Decimal | None, tr: Texts) -> str | None:
    """The completion sentence; None when the row has no completion (the caller says why)."""
    kind, unit = str(row.get("kind", "metric")), str(row.get("unit", ""))
    if kind == "rating":
        stars = row.get("stars")
        return (
            None
            if stars is None or raw is None
            else tr("explain.rating", stars=stars, percent=fmt.percent(raw))
        )
    if kind == "checklist":
        done, planned = row.get("done"), row.get("planned")
        return (
            None
            if raw is None
            else tr("explain.checklist", done=done, planned=planned, percent=fmt.percent(raw))
        )
    b, t, a = _dec(row.get("baseline")), _dec(row.get("target")), _dec(row.get("actual"))
    if b is None or t is None or a is None or raw is None:
        return None
    n = lambda v: formula_number(v, unit)  # noqa: E731 - a local shorthand for the formula below
    if row.get("direction") == "down":
        return f"({n(b)} − {n(a)}) / ({n(b)} − {n(t)}) = {fmt.percent(raw)}"
    return f"({n(a)} − {n(b)}) / ({n(t)} − {n(b)}) = {fmt.percent(raw)}"


def _why_zero(row: Mapping[str, object], tr: Texts) -> str:
    kind = str(row.get("kind", "metric"))
    if kind in ("rating", "checklist"):
        return tr(f"explain.zero.{kind}")
    if _dec(row.get("baseline")) is None or _dec(row.get("target")) is None:
        return tr("explain.zero.levels")
    if _dec(row.get("actual")) is None:
        return tr("explain.zero.data")
    return tr("explain.zero.other")


def explain(row: Mapping[str, object], locale: str = "zh-CN") -> str:
    """The row's completion with its formula filled in, e.g. "(3.05 − 3.00) / (3.06 − 3.00) = 83 %"."""
    tr = texts(locale)
    status = row.get("status")
    raw, counted = _dec(row.get("raw")), _dec(row.get("completion"))
    if raw is None:
        raw = counted  # a row stored without its raw completion (older exports): the counted one
    text = _completion_text(row, raw, tr)
    if status in ("excluded", "outside"):
        return tr(f"explain.{status}") + (tr("explain.aside", text=text) if text else "")
    if status == "unplanned":
        return tr("explain.unplanned")
    if text is None:
        return _why_zero(row, tr)
    if raw is None or counted is None or counted == raw:
        return text
    if raw < 0 and counted == 0 and not row.get("curve"):
        return tr("explain.negative", text=text)
    if row.get("curve") and (counted < raw or raw < 0):
        return tr("explain.curve", text=text, percent=fmt.percent(counted))
    return tr("explain.cap", text=text, percent=fmt.percent(counted))


# Sentences stored with an appraisal (appraisal/scoring.py's flags, appraisal/completion.py's curve
# description and reasons) are Chinese data; in en-US they are reworded by these patterns, matched
# whole, first match wins. A sentence no pattern knows is shown as stored.
_WHY_ZERO_EN: tuple[tuple[str, str], ...] = (
    (r"本周尚未评分", "not rated this week"),
    (r"本周没有登记完成情况", "nothing recorded as done this week"),
    (r"目标等于基线，无法计算完成度", "the target equals the baseline, so completion cannot be computed"),
    (r"评分应为 1–5 星，收到 (?P<x>.+)", "a rating is 1–5 stars, got {x}"),
    (r"没有计划任务数，无法计算完成度", "no tasks were planned, so completion cannot be computed"),
    (r"完成任务数不能为负（(?P<x>.+)）", "tasks done cannot be negative ({x})"),
)
_STORED_EN: tuple[tuple[str, str], ...] = (
    (
        r"(?P<k>[^：]+)：申诉后实际值更正为 (?P<new>.+)（原 (?P<old>.+)）",
        "{k}: actual corrected after an appeal to {new} (was {old})",
    ),
    (
        r"(?P<k>[^：]+)：申诉后更正为 (?P<new>.+)（原 (?P<old>.+)）",
        "{k}: corrected after an appeal to {new} (was {old})",
    ),
    (
        r"(?P<k>[^：]+)：计划项缺少基线或目标，计 0 分",
        "{k}: the plan item has no baseline or target, counts 0 points",
    ),
    (r"(?P<k>[^：]+)：本周没有数据，计 0 分", "{k}: no data this week, counts 0 points"),
    (
        r"(?P<k>[^：]+)：模板要求的指标本周没有计划项，计 0 分",
        "{k}: the template counts this KPI but there is no plan item this week, counts 0 points",
    ),
    (r"(?P<k>[^：]+)：反向变化，按 0 计", "{k}: moved the wrong way, counts 0"),
    (
        r"(?P<k>[^：]+)：完成度超过封顶 (?P<cap>.+)，按封顶计",
        "{k}: completion above the cap of {cap}, counts the cap",
    ),
    (
        r"(?P<k>[^：]+)：申诉后剔除，不计分（其余指标权重按比例放大到 100）",
        "{k}: removed after an appeal, not scored (the other KPIs' weights scale up to 100)",
    ),
    (r"(?P<k>[^：]+)：不在模板“(?P<t>.+)”内，不计分", "{k}: not in the template “{t}”, not scored"),
    (r"(?P<k>[^：]+)：(?P<why>.+)，计 0 分", "{k}: {why}, counts 0 points"),
    (r"所有指标都已剔除，本周不计分", "every KPI was removed after appeals: no score this week"),
    (r"总分 (?P<x>.+) 超出 0–(?P<y>.+)，按边界计", "the total {x} is outside 0–{y}: the bound counts"),
    (r"低于 (?P<x>.+?) 计 (?P<y>.+)", "below {x} counts {y}"),
    (r"其余照实", "otherwise as is"),
)


def _reword(sentence: str, table: tuple[tuple[str, str], ...]) -> str | None:
    for pattern, english in table:
        found = re.fullmatch(pattern, sentence)
        if found:
            return english.format(**found.groupdict())
    return None


def stored_text(sentence: str, locale: str = "zh-CN") -> str:
    """A flag or curve description as stored (zh-CN), in the card's locale."""
    if locale != "en-US":
        return sentence
    if "；" in sentence:  # a curve: "低于 60 % 计 0 %；其余照实"
        return "; ".join(stored_text(part, locale) for part in sentence.split("；"))
    english = _reword(sentence, _STORED_EN)
    if english is None:
        return sentence
    found = re.fullmatch(r"(?P<k>[^：]+)：(?P<why>.+)，计 0 分", sentence)
    if found:  # the reason inside is appraisal/completion.py's own sentence
        why = _reword(found["why"], _WHY_ZERO_EN) or found["why"]
        return english.replace(found["why"], why) if why != found["why"] else english
    return english
