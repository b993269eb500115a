"""Editing a template in the console (issue 22): weights, cap, curves and grades, checked as you type,
with last week's scores under the edited template before saving.

- The form becomes a team-file entry (:func:`entry_from_form`) laid over the stored one, so the
  fields the form does not show (ratings, adjustments, role…) are kept.
- The check is handlers/catalog_edits.check_template (``planloop apply``'s own validation), the
  save handlers/catalog_edits.put_template (a new version, audited as ``console.template.put``).
- The preview scores last week's appraised people with handlers/appraisals.compute twice, under
  the templates now and with this one edited, and writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, redirect, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from appraisal.selection import NoTemplate
from appraisal.templates import TemplateError, parse_template
from bot.console.render import environment, page
from bot.console.texts import texts
from bot.console.web import Current, Refusal, check_post, current, field, nav, to_login
from bot.services import Services
from bot.web.pages import html
from handlers.appraisal_runs import appraised_people
from handlers.appraisals import WeekInputs, compute
from handlers.catalog_edits import TeamFileError, check_template, put_template
from handlers.pages import previous_weeks
from handlers.template_versions import WEEK_ZONE, entry_of
from handlers.workdays import iso_week
from storage.db import transaction
from storage.models import Kpi, Person, Template

ACTION = "edit_template"
_GRADE = re.compile(r"\s*([^=,:\s]{1,8})\s*[=:]\s*([^,]*)")


@dataclass(frozen=True)
class PreviewRow:
    person: str
    name: str
    before: str  # "—" when the person had no template or was not under this one
    after: str
    grade_before: str
    grade_after: str
    changed: bool


def _number(text: str) -> Any:
    """A form's number as the team file holds it; anything else as typed, for the check to name."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    return int(value) if value == value.to_integral_value() else float(value)


def entry_from_form(stored: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """The stored entry with the form's weights (``w.<kpi>``), cap, grades (``S=120, A=100``) and
    curves (``c.<kpi>``: ``60:0, 80:60`` = below 60 % scores 0, below 80 % scores 60)."""
    entry = dict(stored)
    weights = {k[2:]: _number(v.strip()) for k, v in form.items() if k.startswith("w.") and v.strip()}
    entry["weights"] = weights
    cap = form.get("cap", "").strip()
    entry["cap"] = _number(cap) if cap else None
    grades_text = form.get("grades", "").strip()
    if grades_text:
        grades: dict[str, Any] = {}
        for part in grades_text.split(","):
            match = _GRADE.fullmatch(part)
            if match is None:
                grades[part.strip()] = part.strip()  # the check names it
            else:
                grades[match.group(1)] = _number(match.group(2).strip())
        entry["grades"] = grades
    else:
        entry.pop("grades", None)
    curves: dict[str, Any] = {}
    for key, text in form.items():
        if not key.startswith("c.") or not text.strip():
            continue
        steps = []
        for part in text.split(","):
            below, _, scored = part.partition(":")
            steps.append({"below": _number(below.strip()), "score": _number(scored.strip())})
        curves[key[2:]] = steps
    if curves:
        entry["curves"] = curves
    else:
        entry.pop("curves", None)
    return {k: v for k, v in entry.items() if v is not None}


def problems_of(session: Session, template_id: str, entry: dict[str, Any]) -> list[str]:
    """The check's problems, each without the "templates (id)." every line starts with."""
    try:
        check_template(session, template_id, entry)
    except TeamFileError as exc:
        prefix = f"templates ({template_id})."
        return [p.removeprefix(prefix) for p in exc.problems]
    return []


def last_week(now: datetime) -> str:
    return previous_weeks(iso_week(now.astimezone(WEEK_ZONE).date()), 2)[0]


def preview(session: Session, template_id: str, entry: dict[str, Any], week: str) -> list[PreviewRow]:
    """Last week's people under the template now → under ``entry``; only those either run puts under
    ``template_id``. The edited entry must have passed :func:`problems_of`. Writes nothing."""
    edited = parse_template({**entry, "id": template_id})
    inputs = WeekInputs.load(session, week, current_rules=True)
    others = [t for t in inputs.rules.templates if t.id != template_id]
    after = replace(inputs, rules=replace(inputs.rules, templates=[*others, edited]))
    rows = []
    for person in appraised_people(session, week, None, inputs):
        was = _scored(session, person, week, inputs)
        now = _scored(session, person, week, after)
        if template_id not in (was[0], now[0]):
            continue
        before = was if was[0] == template_id else ("", "—", "")
        rows.append(
            PreviewRow(person.id, person.name, before[1], now[1], before[2], now[2], before[1:] != now[1:])
        )
    return rows


def _scored(session: Session, person: Person, week: str, inputs: WeekInputs) -> tuple[str, str, str]:
    try:
        selection, result = compute(session, person, week, inputs)
    except NoTemplate:
        return ("", "—", "")
    return (selection.template.id, f"{result.score:.1f}", result.grade)


def _form_values(row: Template) -> dict[str, str]:
    """The stored template as the form shows it."""
    spec = row.spec or {}
    values = {
        f"w.{k}": f"{v:g}" if isinstance(v, float) else str(v) for k, v in (spec.get("weights") or {}).items()
    }
    values["cap"] = str(spec.get("cap", ""))
    values["grades"] = ", ".join(f"{k}={v}" for k, v in (spec.get("grades") or {}).items())
    for key, steps in (spec.get("curves") or {}).items():
        values[f"c.{key}"] = ", ".join(f"{s.get('below')}:{s.get('score')}" for s in steps)
    return values


def add_routes(bp: Blueprint, services: Services) -> None:
    """GET /templates/<id>/edit, POST …/check (the fragment), POST …/edit (preview or save)."""
    locale = services.settings.locale
    t = texts(locale)

    def admin(found: Current) -> None:
        if not found.viewer.may_open("templates") or not found.viewer.may(ACTION):
            raise Refusal(403, "action_denied")

    def stored(session: Session, template_id: str) -> Template:
        row = session.get(Template, template_id[:64])
        if row is None:
            raise Refusal(404, "no_template", id=template_id[:64])
        return row

    def kpis(session: Session) -> list[Kpi]:
        return list(session.scalars(select(Kpi).order_by(Kpi.key)))

    def checked(session: Session, row: Template) -> tuple[dict[str, str], list[str], list[PreviewRow], str]:
        form = {k: field(k) for k in request.form if k != "_csrf"}  # refused when too long, never cut
        entry = entry_from_form(entry_of(row), form)
        problems = problems_of(session, row.id, entry)
        week = last_week(services.clock())
        rows: list[PreviewRow] = []
        if not problems:
            try:
                rows = preview(session, row.id, entry, week)
            except (TemplateError, ValueError, TypeError, ArithmeticError) as exc:
                problems = [str(exc)]
        return form, problems, rows, week

    def show(
        found: Current, session: Session, row: Template, form: dict[str, str], **values: Any
    ) -> Response:
        resp = page(
            "template_edit.html", locale=locale, title=f"{t['edit_template']} · {row.name or row.id}",
            here="templates", viewer=found.viewer, csrf=found.signed.csrf, template=row, kpis=kpis(session),
            form=form, check_url=url_for("console.template_check", template_id=row.id),
            save_url=url_for("console.template_save", template_id=row.id), **nav(found.viewer), **values,
        )  # fmt: skip
        # the check as you type is a same-origin POST from this page's own script
        resp.headers["Content-Security-Policy"] += "; connect-src 'self'"
        return resp

    @bp.get("/templates/<template_id>/edit")
    def template_edit(template_id: str) -> Response:
        with services.sessions() as session:
            found = current(services, session)
            if found is None:
                return to_login()
            admin(found)
            row = stored(session, template_id)
            return show(
                found,
                session,
                row,
                _form_values(row),
                problems=[],
                rows=None,
                week=last_week(services.clock()),
            )

    @bp.post("/templates/<template_id>/check")
    def template_check(template_id: str) -> Response:
        with services.sessions() as session:
            found = check_post(services, session)
            admin(found)
            _, problems, rows, week = checked(session, stored(session, template_id))
            body = (
                environment()
                .get_template("template_preview.html")
                .render(t=t, problems=problems, rows=rows, week=week)
            )
            session.rollback()  # nothing was written; say so to the database too
        return html(body)

    @bp.post("/templates/<template_id>/edit")
    def template_save(template_id: str) -> Response:
        with transaction(services.sessions) as session:
            found = check_post(services, session)
            admin(found)
            row = stored(session, template_id)
            form, problems, rows, week = checked(session, row)
            if problems or request.form.get("do") != "save":
                return show(found, session, row, form, problems=problems, rows=rows, week=week)
            entry = entry_from_form(entry_of(row), form)
            put_template(
                session, row.id, entry, actor=found.viewer.person_id, now=services.clock(), via="console"
            )
        return redirect(url_for("console.templates", done="template_saved"), code=303)
