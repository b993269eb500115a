"""GET operations: the set-up (teams, people, KPIs, templates, periods, scenarios) and the week's
plans, progress and appraisals in the exports' shapes, paged, with ETags."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel

from bot.api import models as m
from bot.api.auth import Caller, caller, services
from bot.api.paging import cached, page
from bot.api.problems import PROBLEM_RESPONSE, RATE_LIMITED, ApiProblem
from handlers import catalog, exports
from storage.models import Person, Team


def responses(model: type[BaseModel]) -> dict[Any, Any]:
    return {
        200: model,
        304: None,
        401: PROBLEM_RESPONSE,
        403: PROBLEM_RESPONSE,
        404: PROBLEM_RESPONSE,
        422: PROBLEM_RESPONSE,
        429: RATE_LIMITED,
    }


def _catalog_list(
    scope: str, key: str, model: type[BaseModel], rows: Callable[[Any, Caller], list[dict[str, Any]]]
) -> Callable[[m.ListQuery], Response]:
    def view(query: m.ListQuery) -> Response:
        who = caller(scope)
        with services().sessions() as session:
            chunk, cursor = page(rows(session, who), query.limit, query.cursor)
        return cached(model.model_validate({key: chunk, "next_cursor": cursor}))

    return view


def _export(what: str, week: str, team: str | None) -> dict[str, Any]:
    svc = services()
    with svc.sessions() as session:
        if team is not None and session.get(Team, team) is None:
            raise ApiProblem(404, f"no team with id {team!r}")
        try:
            return exports.export(session, what, week, team=team, now=svc.clock())
        except exports.ExportError as exc:
            raise ApiProblem(404, str(exc)) from None


def _week_page(
    what: str,
    scope: str,
    model: type[BaseModel],
    query: m.WeekQuery,
    keep: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
) -> Response:
    """One page of a week's export (``plans``, ``progress``, ``appraisals``) in its own shape,
    with ``next_cursor`` when the page is cut."""
    who = caller(scope)
    data = _export(what, query.week, who.team_for(query.team))
    rows = data[what] if keep is None else keep(data[what])
    chunk, cursor = page(rows, query.limit, query.cursor)
    return cached(model.model_validate({**data, what: chunk, "next_cursor": cursor}))


def register(bp: APIBlueprint) -> None:
    """Add the read operations to the API's blueprint."""
    setup = Tag(name="set-up", description="teams, people, KPIs, templates, periods, scenarios")
    weeks = Tag(name="weeks", description="the week's plans, progress and appraisals, as the exports")

    lists: list[tuple[str, str, str, type[BaseModel], Callable[[Any, Caller], list[dict[str, Any]]]]] = [
        ("/teams", "teams", "plans:read", m.TeamList, lambda s, who: catalog.teams(s, who.team)),
        ("/people", "people", "plans:read", m.PeopleList, lambda s, who: catalog.people(s, who.team)),
        ("/kpis", "kpis", "templates:read", m.KpiList, lambda s, who: catalog.kpis(s)),
        ("/templates", "templates", "templates:read", m.TemplateList, lambda s, who: catalog.templates(s)),
        ("/periods", "periods", "templates:read", m.PeriodList, lambda s, who: catalog.periods(s)),
        ("/scenarios", "scenarios", "templates:read", m.ScenarioList, lambda s, who: catalog.scenarios(s)),
    ]
    for path, key, scope, model, rows in lists:
        view = _catalog_list(scope, key, model, rows)
        view.__name__ = f"list_{key}"
        bp.get(path, tags=[setup], summary=f"the {key} ({scope})", responses=responses(model))(view)

    @bp.get("/plans", tags=[weeks], summary="the week's plans (plans:read)", responses=responses(m.PlansPage))
    def list_plans(query: m.PlansQuery) -> Response:
        def of_employee(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if query.employee is None:
                return rows
            mine = [p for p in rows if p["employee"] == query.employee]
            if not mine:
                with services().sessions() as session:
                    if session.get(Person, query.employee) is None:
                        raise ApiProblem(404, f"no person with id {query.employee!r}")
            return mine

        return _week_page("plans", "plans:read", m.PlansPage, query, of_employee)

    @bp.get(
        "/progress",
        tags=[weeks],
        summary="each planned item's progress (progress:read)",
        responses=responses(m.ProgressPage),
    )
    def list_progress(query: m.WeekQuery) -> Response:
        return _week_page("progress", "progress:read", m.ProgressPage, query)

    @bp.get(
        "/appraisals",
        tags=[weeks],
        summary="the week's appraisals, newest version (appraisals:read)",
        responses=responses(m.AppraisalsPage),
    )
    def list_appraisals(query: m.WeekQuery) -> Response:
        return _week_page("appraisals", "appraisals:read", m.AppraisalsPage, query)
