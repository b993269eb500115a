"""The one-click switch, for other systems: a team's template switch (POST, DELETE) and a scenario on
or off (PATCH); handlers.template_switches.switch_template / cancel_switch and handlers.scenarios do the work
and the audit, as the chat and ``planloop template switch`` do."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy.orm import Session

from bot.api import models as m
from bot.api.auth import Caller, caller, services
from bot.api.paging import dump
from bot.api.problems import ApiProblem, FieldError
from bot.api.writes import ANSWERS, write_once
from storage.models import TemplateSwitch


def _switch_out(row: TemplateSwitch) -> dict[str, Any]:
    return dump(
        m.SwitchOut(
            id=row.id,
            team=row.team_id,
            template=row.template_id,
            start=row.start.isoformat(),
            until=row.until.isoformat() if row.until else None,
            by=row.by,
            cancelled=row.cancelled,
        )
    )


def post_switch(header: m.WriteHeaders, body: m.SwitchIn) -> Response:
    who = caller("switches:write")
    who.check_team(body.team)
    return write_once(who, header.idempotency_key, lambda session: _switch(session, who, body))


def _switch(session: Session, who: Caller, body: m.SwitchIn) -> dict[str, Any]:
    from handlers.appraisals import AppraisalError
    from handlers.dates import DateError, parse_day
    from handlers.template_switches import switch_template
    from storage.models import Team

    team = session.get(Team, body.team)
    if team is None:
        raise ApiProblem(422, f"no team {body.team!r}", errors=[FieldError(field="team", message="unknown")])
    now = services().clock()
    today = now.astimezone(ZoneInfo(team.timezone)).date()
    try:
        until = parse_day(body.until, today) if body.until else None
        if until is not None and until < today:
            raise DateError(f"截止日期 {until:%Y-%m-%d} 早于开始日期 {today:%Y-%m-%d}")
    except DateError as exc:
        raise ApiProblem(422, str(exc), errors=[FieldError(field="until", message=str(exc))]) from None
    try:
        row = switch_template(
            session, body.team, body.to, by=who.actor, now=now, until=until, reason=body.reason or ""
        )
    except AppraisalError as exc:
        raise ApiProblem(422, str(exc), errors=[FieldError(field="to", message=str(exc))]) from None
    return _switch_out(row)


def delete_switch(path: m.SwitchPath, header: m.WriteHeaders) -> Response:
    who = caller("switches:write")
    return write_once(who, header.idempotency_key, lambda session: _cancel(session, who, path.switch_id))


def _cancel(session: Session, who: Caller, switch_id: int) -> dict[str, Any]:
    from handlers.template_switches import cancel_switch

    row = session.get(TemplateSwitch, switch_id)
    if row is None:
        raise ApiProblem(404, f"no template switch {switch_id}")
    who.check_team(row.team_id)
    if not row.cancelled:
        cancel_switch(session, row.team_id, by=who.actor, now=services().clock())
        session.flush()
        session.refresh(row)
    return _switch_out(row)


def patch_scenario(path: m.ScenarioPath, header: m.WriteHeaders, body: m.ScenarioPatch) -> Response:
    who = caller("scenarios:write")
    if who.team is not None:
        raise ApiProblem(
            403, "a scenario applies to every team: a token limited to one team may not switch it"
        )
    return write_once(who, header.idempotency_key, lambda session: _scenario(session, who, path, body))


def _scenario(session: Session, who: Caller, path: m.ScenarioPath, body: m.ScenarioPatch) -> dict[str, Any]:
    from handlers.scenarios import ScenarioError, set_scenario

    try:
        row = set_scenario(session, path.scenario_id, body.active, by=who.actor, now=services().clock())
    except ScenarioError as exc:
        raise ApiProblem(404, f"no scenario {path.scenario_id!r}") from exc
    return dump(m.ScenarioOut(id=row.id, name=row.name, active=row.active))


def register(bp: APIBlueprint) -> None:
    """Add the switch operations to the API's blueprint."""
    tag = Tag(name="switches", description="template switches and scenarios, one click from other systems")
    bp.post(
        "/template-switches",
        tags=[tag],
        summary="switch a team's template (switches:write); wins over every rule",
        responses={200: m.SwitchOut, **ANSWERS},
    )(post_switch)
    bp.delete(
        "/template-switches/<int:switch_id>",
        tags=[tag],
        summary="end a switch from today: back to the rules (switches:write)",
        responses={200: m.SwitchOut, **ANSWERS},
    )(delete_switch)
    bp.patch(
        "/scenarios/<scenario_id>",
        tags=[tag],
        summary="turn a scenario on or off (scenarios:write)",
        responses={200: m.ScenarioOut, **ANSWERS},
    )(patch_scenario)
