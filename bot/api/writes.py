"""POST operations: metric samples (the file import's rules and upsert) and a person's plan (the
chat's validation, versions, deadlines and audit: handlers.plans.submit). Both take
``Idempotency-Key``; every write is audited with the token's id."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, request
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.api import models as m
from bot.api.auth import Caller, caller, services
from bot.api.idempotency import first_answer, remember, request_hash
from bot.api.paging import dump, json_response
from bot.api.problems import PROBLEM_RESPONSE, RATE_LIMITED, ApiProblem, FieldError
from storage.db import transaction
from storage.models import AuditLog, Person

ANSWERS: dict[Any, Any] = {
    400: PROBLEM_RESPONSE,
    401: PROBLEM_RESPONSE,
    403: PROBLEM_RESPONSE,
    404: PROBLEM_RESPONSE,
    409: PROBLEM_RESPONSE,
    422: PROBLEM_RESPONSE,
    429: RATE_LIMITED,
}


def _replayed(who: Caller, key: str | None, digest: str) -> Response | None:
    if key is None:
        return None
    with transaction(services().sessions) as session:
        stored = first_answer(session, who.token_id, key, digest, services().clock())
    if stored is None:
        return None
    status, body = stored
    return json_response(body, status, {"Idempotent-Replayed": "true"})


def write_once(who: Caller, key: str | None, work: Callable[[Session], dict[str, Any]]) -> Response:
    """Run ``work`` in one transaction and answer its data; with an ``Idempotency-Key`` the answer
    is kept in that transaction, and a retry gets it without running ``work`` again."""
    digest = request_hash(request.path, request.get_json(silent=True))
    replay = _replayed(who, key, digest)
    if replay is not None:
        return replay
    svc = services()
    try:
        with transaction(svc.sessions) as session:
            data = work(session)
            if key is not None:
                remember(session, who.token_id, key, digest, 200, data, svc.clock())
    except IntegrityError:  # the same key's first call committed meanwhile: its answer stands
        replay = _replayed(who, key, digest)
        if replay is not None:
            return replay
        raise
    return json_response(data)


def _rejected(body: m.MetricsIn, result: Any) -> list[m.Rejected]:
    """Row errors (line n is sample n - 2) and whole-series refusals (line 0: a % metric about 100×
    off its history drops that metric and scope, ``result.detail["misscaled"]``)."""
    by_index: dict[int, list[str]] = defaultdict(list)
    misscaled = set(result.detail.get("misscaled", ()))
    for error in result.errors:
        text = f"{error.column}: {error.reason}" if error.column else error.reason
        if error.line >= 2:
            by_index[error.line - 2].append(text)
        elif error.line == 0:
            for n, s in enumerate(body.samples):
                if s.metric == error.column and f"{s.metric}@{s.scope or 'shop'}" in misscaled:
                    by_index[n].append(text)
    return [m.Rejected(index=n, error="; ".join(texts)) for n, texts in sorted(by_index.items())]


def post_metrics(header: m.WriteHeaders, body: m.MetricsIn) -> Response:
    from bot.worker.polling import import_samples

    who = caller("metrics:write")
    if who.team is not None:
        raise ApiProblem(403, "metrics are shop-wide: a token limited to one team may not write them")
    svc = services()
    key = header.idempotency_key
    digest = request_hash(request.path, request.get_json(silent=True))
    replay = _replayed(who, key, digest)
    if replay is not None:
        return replay
    rows = [(s.date, s.metric, s.value, s.scope) for s in body.samples]
    result, upserted = import_samples(
        svc, rows, source_id="api", label=f"api {who.actor}", actor=f"api:{who.actor}"
    )
    out = m.MetricsOut(
        inserted=upserted.inserted,
        updated=upserted.updated,
        unchanged=upserted.unchanged,
        rejected=_rejected(body, result),
    )
    data = dump(out)
    now = svc.clock()
    try:
        with transaction(svc.sessions) as session:
            session.add(
                AuditLog(
                    at=now,
                    actor=who.actor,
                    action="api.metrics",
                    subject=f"{len(body.samples)} samples",
                    detail={k: data[k] for k in ("inserted", "updated", "unchanged")}
                    | {"rejected": len(out.rejected), "idempotency_key": key},
                )
            )
            if key is not None:
                remember(session, who.token_id, key, digest, 200, data, now)
    except IntegrityError:  # the same key's first call finished meanwhile: its answer stands
        replay = _replayed(who, key, digest)
        if replay is not None:
            return replay
        raise
    return json_response(data)


def _problems(problems: dict[str, dict[str, str]]) -> list[FieldError]:
    """handlers.plans' problems per item and field; "plan" (no item, too many) is the items list."""
    return [
        FieldError(field=f"{where}/{field}" if where.startswith("items/") else "items", message=message)
        for where, fields in problems.items()
        for field, message in fields.items()
    ]


def post_plan(header: m.WriteHeaders, body: m.PlanIn) -> Response:
    who = caller("plans:write")
    return write_once(who, header.idempotency_key, lambda session: _file_plan(session, who, body, header))


def _file_plan(session: Session, who: Caller, body: m.PlanIn, header: m.WriteHeaders) -> dict[str, Any]:
    from handlers import exports
    from handlers.plans import Draft, current_plan, submit
    from handlers.workdays import iso_week

    person = session.get(Person, body.employee)
    if person is None or not person.active:
        raise ApiProblem(
            422,
            f"no active person with id {body.employee!r}",
            errors=[FieldError(field="employee", message="unknown or deactivated")],
        )
    who.check_team(person.team_id)
    ctx = services().context(session)
    ctx.person = person
    ctx.tz = ZoneInfo(person.team.timezone)
    week = iso_week(ctx.now.astimezone(ctx.tz).date())
    if body.week is not None and body.week != week:
        raise ApiProblem(
            422,
            f"plans are filed for the current week ({week}), as in chat",
            errors=[FieldError(field="week", message=f"only {week} is open")],
        )
    drafts = [
        Draft(f"items/{n}", item.text, item.kpi, item.target, item.scope or "")
        for n, item in enumerate(body.items)
    ]
    before = current_plan(session, person.id, week)
    plan, problems, message = submit(ctx, person, drafts, via=f"api:{who.actor}")
    if problems:
        raise ApiProblem(422, "the plan was not saved: every item must be valid", errors=_problems(problems))
    if plan is None:
        raise ApiProblem(409, message)
    created = before is None or plan.id != before.id
    entry = next(
        p
        for p in exports.export_plans(session, week, team=person.team_id, now=ctx.now)["plans"]
        if p["employee"] == person.id
    )
    session.add(
        AuditLog(
            at=ctx.now,
            actor=who.actor,
            action="api.plans",
            subject=f"{person.id}/{week}",
            detail={"version": plan.version, "created": created, "idempotency_key": header.idempotency_key},
        )
    )
    return dump(m.PlanSaved(week=week, created=created, note=message, plan=m.PlanOut.model_validate(entry)))


def register(bp: APIBlueprint) -> None:
    """Add the write operations to the API's blueprint."""
    tag = Tag(name="writes", description="numbers and plans from other systems")
    bp.post(
        "/metrics",
        tags=[tag],
        summary="push metric samples (metrics:write); a file import's rules, idempotent",
        responses={200: m.MetricsOut, **ANSWERS},
    )(post_metrics)
    bp.post(
        "/plans",
        tags=[tag],
        summary="file a person's plan for this week (plans:write), as in chat",
        responses={200: m.PlanSaved, **ANSWERS},
    )(post_plan)
