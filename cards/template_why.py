"""Why a template applies, in words of the card's locale: which rule chose it (manual switch,
scenario, period, employee type, role default), over which template, since when.

Takes ``appraisal.selection.Why.to_dict()`` as stored with the appraisal (``rules["why"]``);
an appraisal stored before it was kept falls back to its stored one-line reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from cards.i18n import Texts, texts


def _who(why: Mapping[str, str], tr: Texts) -> str:
    if why.get("detail") != "new":
        return tr("why.veteran")
    if why.get("days"):
        return tr("why.new_days", since=why.get("since", ""), days=why["days"])
    return tr("why.new")


def _window(why: Mapping[str, str], tr: Texts) -> str:
    since, until = why.get("since", ""), why.get("until", "")
    return tr("why.window", since=since, until=until) if until else tr("why.window_open", since=since)


def why_text(why: Mapping[str, str] | None, fallback: str, *, locale: str = "zh-CN", role: str = "") -> str:
    """One sentence and the rule order; ``fallback`` (the stored reason) when ``why`` is missing.
    ``role`` is the role's display name (the stored role id otherwise)."""
    if not why or why.get("step") not in ("switch", "scenario", "period", "employee_type", "default"):
        return fallback
    tr = texts(locale)
    step, template = why["step"], why.get("template", "")
    if step == "switch":
        text = tr("why.switch", by=why.get("detail", ""), template=template, window=_window(why, tr))
    elif step == "scenario":
        text = tr("why.scenario", scenario=why.get("detail", ""), template=template)
    elif step == "period":
        text = tr(
            "why.period",
            period=why.get("detail", ""),
            since=why.get("since", ""),
            until=why.get("until", ""),
            template=template,
        )
    elif step == "employee_type":
        text = tr("why.employee_type", who=_who(why, tr), template=template)
    else:
        text = tr("why.default", role=role or why.get("role", ""), template=template)
    if why.get("over"):
        text += tr("why.over", over=why["over"])
    return text + tr("why.order")
