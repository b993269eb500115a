"""The console's pages (team, appraisals, templates, delivery) and their actions.

Every action reuses what chat and the CLI use: ``switch_template`` / ``cancel_switch`` (audited),
``set_scenario`` (audited), ``delivery.resend`` (``planloop outbox resend``), and the appeal
decision through the router (the same handler as the card's form), as the signed-in person.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from flask import Blueprint, redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bot.console import data
from bot.console.render import page
from bot.console.texts import texts
from bot.console.web import Current, Refusal, back_to, check_post, current, field, nav, shown_error, to_login
from bot.services import Services
from bot.worker.streams import stream_bots
from handlers.appraisals import AppraisalError
from handlers.inbound import Inbound
from handlers.pages import latest_appraised_week, previous_weeks
from handlers.scenarios import ScenarioError, all_scenarios, set_scenario
from handlers.template_switches import cancel_switch, switch_template
from handlers.workdays import parse_week
from storage.db import transaction
from storage.models import Appeal, Appraisal, AuditLog, Person, Team

BANNERS = {
    "switched": "模板已切换，下一次考核按新模板计算。",
    "undone": "已撤销手动切换，恢复按规则选择模板。",
    "scenario": "场景已更新。",
    "resent": "已重新排队，worker 会重新发送。",
    "decided": "申诉已处理。",
    "template_saved": "模板已保存为新版本，之后的考核按它计算。",
}


def add_routes(bp: Blueprint, services: Services) -> None:
    from bot.console import template_edit

    template_edit.add_routes(bp, services)
    locale = services.settings.locale
    t = texts(locale)

    def show(name: str, found: Current, here: str, title: str, **values: Any) -> Response:
        banner = BANNERS.get(request.args.get("done", ""), "")
        error = shown_error(found)
        return page(
            name, locale=locale, title=title, here=here, viewer=found.viewer, csrf=found.signed.csrf,
            banner=error or banner, banner_error=bool(error), **nav(found.viewer), **values,
        )  # fmt: skip

    def opened(session: Session, page_name: str) -> Current | Response:
        found = current(services, session)
        if found is None:
            return to_login()
        if not found.viewer.may_open(page_name):
            raise Refusal(403, "page_denied")
        return found

    def chosen_teams(session: Session, found: Current) -> tuple[list[Team], str]:
        teams = data.visible_teams(session, found.viewer)
        wanted = request.args.get("team", "")
        return ([x for x in teams if x.id == wanted] or teams if wanted else teams), wanted

    @bp.get("/")
    def team() -> Response:
        with services.sessions() as session:
            found = opened(session, "team")
            if isinstance(found, Response):
                return found
            shown, wanted = chosen_teams(session, found)
            blocks = data.team_page(session, found.viewer, shown, services.clock())
            teams = data.visible_teams(session, found.viewer)
            return show("team.html", found, "team", t["team"], blocks=blocks, teams=teams, chosen=wanted)

    @bp.get("/appraisals")
    def appraisals() -> Response:
        with services.sessions() as session:
            found = opened(session, "appraisals")
            if isinstance(found, Response):
                return found
            teams, _ = chosen_teams(session, found)
            week = request.args.get("week", "")
            try:
                parse_week(week)
            except ValueError:
                week = latest_appraised_week(session, found.viewer.person_id) or ""
                if not week and teams:
                    week = previous_weeks(data.week_in(teams[0], services.clock()), 2)[0]
            blocks = data.appraisal_page(session, found.viewer, teams, week, locale)
            appeals = data.open_appeals(session, found.viewer, teams)
            return show(
                "appraisals.html",
                found,
                "appraisals",
                t["appraisals"],
                blocks=blocks,
                week=week,
                appeals=appeals,
            )

    @bp.get("/templates")
    def templates() -> Response:
        with services.sessions() as session:
            found = opened(session, "templates")
            if isinstance(found, Response):
                return found
            teams, _ = chosen_teams(session, found)
            blocks = data.templates_page(session, found.viewer, teams, services.clock())
            week = blocks[0].week if blocks else ""
            scenarios = all_scenarios(session)
            return show(
                "templates.html", found, "templates", t["templates"], blocks=blocks, week=week, scenarios=scenarios,
                can_scenarios=found.viewer.may("scenario"), can_edit=found.viewer.may(template_edit.ACTION),
            )  # fmt: skip

    @bp.get("/delivery")
    def delivery() -> Response:
        from bot.worker.delivery import depth

        with services.sessions() as session:
            found = opened(session, "delivery")
            if isinstance(found, Response):
                return found
            lists = data.outbox_lists(session, services.settings.tz)
            streams = data.stream_states(session, stream_bots(services.settings.bots), t)
        counts = depth(services).by_status
        return show(
            "delivery.html", found, "delivery", t["delivery"], lists=lists, streams=streams, counts=counts
        )

    def done(endpoint: str, what: str) -> Response:
        return redirect(url_for(endpoint, done=what), code=303)

    def failed(found: Current, endpoint: str, error: str) -> Response:
        return back_to(endpoint, found, error=error)

    def allowed(found: Current, action: str, team_id: str | None = None) -> None:
        if not found.viewer.may(action, team_id):
            raise Refusal(403, "action_denied")

    @bp.post("/templates/switch")
    def switch() -> Response:
        now = services.clock()
        with transaction(services.sessions) as session:
            found = check_post(services, session)
            team_id = field("team")
            allowed(found, "switch", team_id)
            until_text = field("until")
            try:
                until = date.fromisoformat(until_text) if until_text else None
            except ValueError:
                return failed(found, "console.templates", f"截止日期“{until_text}”看不懂，请写成 2026-12-31")
            try:
                switch_template(
                    session, team_id, field("template"), by=found.viewer.person_id, now=now, until=until,
                    reason=field("reason")[:200],
                )  # fmt: skip
            except AppraisalError as exc:
                session.rollback()
                return failed(found, "console.templates", str(exc))
        return done("console.templates", "switched")

    @bp.post("/templates/undo")
    def undo() -> Response:
        with transaction(services.sessions) as session:
            found = check_post(services, session)
            team_id = field("team")
            allowed(found, "undo", team_id)
            try:
                cancel_switch(session, team_id, by=found.viewer.person_id, now=services.clock())
            except AppraisalError as exc:
                session.rollback()
                return failed(found, "console.templates", str(exc))
        return done("console.templates", "undone")

    @bp.post("/scenarios")
    def scenario() -> Response:
        with transaction(services.sessions) as session:
            found = check_post(services, session)
            allowed(found, "scenario")
            try:
                set_scenario(
                    session,
                    field("scenario"),
                    field("active") == "1",
                    by=found.viewer.person_id,
                    now=services.clock(),
                )
            except ScenarioError as exc:
                session.rollback()
                return failed(found, "console.templates", str(exc))
        return done("console.templates", "scenario")

    @bp.post("/delivery/resend")
    def resend() -> Response:
        from bot.worker.delivery import RESENDABLE
        from bot.worker.delivery import resend as resend_row

        outbox_id = field("id")
        with transaction(services.sessions) as session:
            found = check_post(services, session)
            allowed(found, "resend")
        was = resend_row(services, outbox_id[:36])
        if was is None:
            return failed(found, "console.delivery", f"没有编号为 {outbox_id[:36]} 的消息")
        if was not in RESENDABLE:
            return failed(found, "console.delivery", f"这条消息的状态是 {was}，不需要重发")
        with transaction(services.sessions) as session:
            session.add(
                AuditLog(
                    at=services.clock(), actor=found.viewer.person_id, action="outbox.resend",
                    subject=f"outbox {outbox_id[:36]}", detail={"was": was},
                )
            )  # fmt: skip
        return done("console.delivery", "resent")

    @bp.post("/appraisals/decide")
    def decide() -> Response:
        with transaction(services.sessions) as session:
            found = check_post(services, session)
            allowed(found, "decide")  # the role first: a member learns nothing about appeal ids
            raw = field("appeal")
            appeal = session.get(Appeal, int(raw)) if raw.isdigit() and len(raw) < 12 else None
            row = session.get(Appraisal, appeal.appraisal_id) if appeal is not None else None
            if appeal is None or row is None:
                return failed(found, "console.appraisals", "没有这条申诉")
            allowed(found, "decide", row.team_id)
            person = session.get(Person, found.viewer.person_id)
            values = {
                "appeal": str(appeal.id),
                "decision": field("decision"),
                "reply": field("reply"),
                "value": field("value"),
            }
            card = _as_person(services, session, person, "appraisal.appeal.decide", values)
            if card is None or card.form is not None or card.theme == "red":
                session.rollback()
                message = (card.form.error if card is not None and card.form is not None else "") or (
                    (card.toast or card.title) if card is not None else "未能处理"
                )
                return failed(found, "console.appraisals", str(message)[:300])
        return done("console.appraisals", "decided")


def _as_person(
    services: Services, session: Session, person: Person | None, action: str, values: dict[str, str]
) -> Any:
    """A form submit by ``person`` through the router, as the /p/ pages do (bot/web/pages.py)."""
    from bot.web.pages import WEB
    from storage.people import person_target

    if person is None:
        return None
    target = person_target(session, person, services.platforms.keys())
    actor = target.target if target else person.id
    inbound = Inbound(
        platform=WEB, bot_id=target.bot_id if target else WEB, event_id=f"console-{uuid.uuid4().hex}", kind="form",
        actor=actor, chat=actor, chat_type="dm", text="", action=action, values=values, received_at=services.clock(),
    )  # fmt: skip
    ctx = services.context(session, inbound.bot_id)
    ctx.person = person
    return services.router.dispatch(inbound, ctx)
