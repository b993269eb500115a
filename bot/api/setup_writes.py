"""Custom KPIs and templates without a file (issue 21): PUT /kpis/{key} and PUT /templates/{id} for a
token with templates:write. handlers.catalog_edits checks them as ``planloop apply`` does, versions a
template and audits both with the token's id."""

from __future__ import annotations

from decimal import InvalidOperation
from typing import Any

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy.orm import Session

from bot.api import models as m
from bot.api.auth import Caller, caller, services
from bot.api.paging import dump
from bot.api.problems import ApiProblem, FieldError
from bot.api.writes import ANSWERS, write_once
from handlers import catalog
from handlers.catalog_edits import TeamFileError, put_kpi, put_template

SCOPE = "templates:write"


def _refused(problems: list[str]) -> ApiProblem:
    """The team file's problems ("templates (x).weights: …") as field errors ("weights")."""
    errors = []
    for problem in problems:
        where, _, message = problem.partition(": ")
        field = where.split(").", 1)[1] if ")." in where else where.rsplit(".", 1)[-1]
        errors.append(FieldError(field=field, message=message or problem))
    return ApiProblem(422, problems[0], errors=errors)


def _checked(who: Caller) -> None:
    if who.team is not None:
        raise ApiProblem(
            403, "KPIs and templates are shared by every team: a token limited to one team may not edit them"
        )


def put_kpi_op(path: m.KpiPath, header: m.WriteHeaders, body: m.KpiIn) -> Response:
    who = caller(SCOPE)
    _checked(who)
    return write_once(who, header.idempotency_key, lambda session: _kpi(session, who, path.key, body))


def _kpi(session: Session, who: Caller, key: str, body: m.KpiIn) -> dict[str, Any]:
    try:
        put_kpi(session, key, body.model_dump(exclude_none=True), actor=who.actor, now=services().clock())
    except TeamFileError as exc:
        raise _refused(exc.problems) from None
    (out,) = [k for k in catalog.kpis(session) if k["key"] == key]
    return dump(m.KpiOut(**out))


def put_template_op(path: m.TemplatePath, header: m.WriteHeaders, body: m.TemplateIn) -> Response:
    who = caller(SCOPE)
    _checked(who)
    return write_once(
        who, header.idempotency_key, lambda session: _template(session, who, path.template_id, body)
    )


def _template(session: Session, who: Caller, template_id: str, body: m.TemplateIn) -> dict[str, Any]:
    entry = body.model_dump(exclude_none=True)
    try:
        _, version = put_template(session, template_id, entry, actor=who.actor, now=services().clock())
    except TeamFileError as exc:
        raise _refused(exc.problems) from None
    except (TypeError, ValueError, KeyError, AttributeError, InvalidOperation) as exc:
        # a shape the team file's checks did not foresee: still the caller's to fix, never a 500
        raise ApiProblem(422, f"the template cannot be read: {exc}") from None
    (out,) = [t for t in catalog.templates(session) if t["id"] == template_id]
    return dump(m.TemplateWritten(template=m.TemplateOut(**out), version=version))


def register(bp: APIBlueprint) -> None:
    """Add the KPI and template writes to the API's blueprint."""
    tag = Tag(name="setup", description="custom KPIs and templates without a file, checked as planloop apply")
    bp.put(
        "/kpis/<key>",
        tags=[tag],
        summary="create or replace a KPI (templates:write)",
        responses={200: m.KpiOut, **ANSWERS},
    )(put_kpi_op)
    bp.put(
        "/templates/<template_id>",
        tags=[tag],
        summary="create or replace a template, a new version when it changes (templates:write)",
        responses={200: m.TemplateWritten, **ANSWERS},
    )(put_template_op)
