"""The /p/<token> web pages opened from cards: the plan form, plan detail and appraisal detail.

The signed link (bot/links.py) is the only credential: it names the viewer, the page and the
week, expires (7 days by default) and is checked in constant time. A tampered, malformed or
foreign link gets a friendly page and never data (403; an expired one 410). A person sees their
own pages; a team's leader sees the team's (``?person=<id>``, or a row link of the team table,
which is a fresh link naming the leader with ``of=<id>``).

The plan form posts back to its own link and goes through the same handler as the chat card
(``plan.submit``), in one transaction with event-id dedupe on a per-form nonce, so a double POST
stores one plan; the receipt card is queued to the person's chat through the outbox.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, request, url_for
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from bot.links import BadLink, Claims
from bot.services import Services
from bot.web.origin import cross_site_reason
from cards.model import Card
from cards.render import page as pages
from handlers.inbound import Inbound, Kind
from handlers.pages import (
    appraisal_view,
    form_kpis,
    form_previews,
    latest_appraised_week,
    led_teams,
    mark_uncounted,
    plan_view,
    subject_for,
    team_tables,
)
from handlers.plan_template import week_template
from handlers.plans import current_plan, receipt_for
from handlers.router import PermissionDenied
from handlers.workdays import iso_week, parse_week
from storage import events, outbox
from storage.db import transaction
from storage.models import Person
from storage.outbox import Target
from storage.people import person_target

log = logging.getLogger("planloop.pages")


@dataclass(frozen=True)
class Opener:
    """How a form page gets its form: the chat event that shows that form, run through the router,
    so the page is always the handler's own form (fields, hidden values, action)."""

    kind: Kind
    action: str = ""
    text: str = ""
    claims: tuple[str, ...] = ()  # link claims passed on as the event's values
    fresh: bool = False  # the opener is the submit itself: show its form without the validation message


FORMS: dict[str, Opener] = {
    "plan-form": Opener("action", "plan.form"),
    "appeal-form": Opener("action", "appraisal.appeal", claims=("appraisal", "kpi")),
    "appeal-review": Opener("form", "appraisal.appeal.decide", claims=("appeal",), fresh=True),
    "rating-form": Opener("text", text="评分"),
    "progress-note": Opener("action", "progress.note", claims=("item",)),
}
PAGES = (*FORMS, "plan", "appraisal")
WEB = "web"  # the bot id of a web submission by someone no configured bot knows
MAX_TOKEN = 2048
MAX_VALUE = 4000
MAX_FIELDS = 300
_NONCE = re.compile(r"^[0-9a-f]{32}$")
_FIELD = re.compile(r"^(week|item\d{1,3}_(section|text|kpi|target|scope|causes))$")

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


class Refusal(Exception):
    """A request the page answers with a friendly message and no data."""

    def __init__(self, status: int, title: str, text: str, hint: str = ""):
        super().__init__(title)
        self.status, self.title, self.text, self.hint = status, title, text, hint


class _NotStored(Exception):
    """The form came back with problems: roll back (the nonce stays usable) and show the page."""

    def __init__(self, body: str, script_nonce: str):
        super().__init__("not stored")
        self.body, self.script_nonce = body, script_nonce


REOPEN = "请回到聊天里重新打开：发送“写计划”，或点卡片上的按钮。"


def html(body: str, status: int = 200, script_nonce: str = "") -> Response:
    csp = CSP + (f"; script-src 'nonce-{script_nonce}'" if script_nonce else "")
    return Response(
        body,
        status=status,
        content_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": csp,
            # the link is the credential: never send it on in a Referer, never cache the page
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "X-Robots-Tag": "noindex, nofollow",
        },
    )


def week_now(person: Person, now: datetime) -> str:
    return iso_week(now.astimezone(ZoneInfo(person.team.timezone)).date())


def blueprint(services: Services) -> Blueprint:
    bp = Blueprint("pages", __name__, url_prefix="/p")

    def claims_of(token: str, page: str | None = None) -> Claims:
        if services.links is None:
            raise Refusal(
                503, "链接暂不可用", "服务还没有配置签名密钥（server.secret_key），网页链接无法使用。"
            )
        if len(token) > MAX_TOKEN:
            raise Refusal(403, "链接无效", "这个链接不完整或被改动过。", REOPEN)
        try:
            claims = services.links.verify(token, services.clock(), page=page)
            if claims.week:
                parse_week(claims.week)  # only this server signs, but never trust a week blindly
            return claims
        except ValueError:
            raise Refusal(403, "链接无效", "这个链接不完整或被改动过。", REOPEN) from None
        except BadLink as exc:
            reason = str(exc)
            if reason == "expired":
                raise Refusal(410, "链接已过期", "这个链接已超过有效期。", REOPEN) from None
            if reason == "wrong page":
                raise Refusal(403, "链接不能用于这里", "这个链接是为另一个页面签发的。", REOPEN) from None
            raise Refusal(403, "链接无效", "这个链接不完整或被改动过。", REOPEN) from None

    def viewer_of(session: Session, claims: Claims) -> Person:
        person = session.get(Person, claims.person)
        if person is None or not person.active:
            raise Refusal(403, "没有权限", "这个链接的主人不在任何团队中，链接已失效。")
        return person

    def subject_of(session: Session, viewer: Person, claims: Claims) -> Person:
        requested = claims.extra.get("of") or request.args.get("person", "")
        try:
            return subject_for(session, viewer, requested)
        except PermissionDenied as exc:
            raise Refusal(403, "没有权限", str(exc)) from None

    def link(person: str, page: str, week: str, **extra: str) -> str:
        assert services.links is not None  # noqa: S101 - claims_of refused every request without keys
        return url_for(
            "pages.show", token=services.links.token(person, page, week, services.clock(), **extra)
        )

    @bp.errorhandler(Refusal)
    def refused(exc: Refusal) -> Response:
        return html(pages.message_page(exc.title, exc.text, hint=exc.hint), exc.status)

    @bp.errorhandler(Exception)
    def failed(exc: Exception) -> Response | HTTPException:
        if isinstance(exc, HTTPException):
            return exc
        log.exception("page failed")
        return html(pages.message_page("暂时打不开", "服务暂时不可用，请稍后再试。"), 503)

    @bp.get("/<token>")
    def show(token: str) -> Response:
        claims = claims_of(token)
        if claims.page not in PAGES:
            raise Refusal(404, "页面不存在", "这个链接指向的页面不存在。", REOPEN)
        with services.sessions() as session:
            viewer = viewer_of(session, claims)
            subject = subject_of(session, viewer, claims)
            if claims.page in FORMS:
                if subject.id != viewer.id:
                    raise Refusal(403, "没有权限", "表单只能由本人填写。")
                card = open_form(session, claims, viewer)
                if card.form is None:  # the handler said why not (already decided, not a leader …)
                    return html(pages.card_page(card))
                body, script_nonce = render_form(session, token, claims, viewer, card, uuid.uuid4().hex)
                session.rollback()  # opening a form never changes anything
                return html(body, script_nonce=script_nonce)
            if claims.page == "plan":
                return html(plan_page(session, claims, viewer, subject))
            return html(appraisal_page(session, claims, viewer, subject))

    def chat_event(
        session: Session,
        person: Person,
        event_id: str,
        kind: Kind,
        *,
        action: str = "",
        text: str = "",
        values: dict[str, str] | None = None,
    ) -> tuple[Inbound, Target | None]:
        """An event as if ``person`` acted in their direct chat with their bot (the simulator's id
        where that is the only bot that knows them); ``WEB`` when no configured bot does."""
        target = person_target(session, person, services.platforms.keys())
        actor = target.target if target else person.id
        inbound = Inbound(
            platform=WEB,
            bot_id=target.bot_id if target else WEB,
            event_id=event_id,
            kind=kind,
            actor=actor,
            chat=actor,
            chat_type="dm",
            text=text,
            action=action,
            values=values or {},
            received_at=services.clock(),
        )
        return inbound, target

    def dispatch(session: Session, person: Person, inbound: Inbound) -> Card | None:
        ctx = services.context(session, inbound.bot_id)
        ctx.person = person
        return services.router.dispatch(inbound, ctx)

    def open_form(session: Session, claims: Claims, person: Person) -> Card:
        opener = FORMS[claims.page]
        values = {k: claims.extra[k] for k in opener.claims if k in claims.extra}
        inbound, _ = chat_event(
            session, person, f"web-open-{uuid.uuid4().hex}", opener.kind,
            action=opener.action, text=opener.text, values=values,
        )  # fmt: skip
        card = dispatch(session, person, inbound)
        if card is None:
            raise Refusal(404, "页面不存在", "这个表单已不可用。", REOPEN)
        if opener.fresh and card.form is not None:
            clean = tuple(replace(i, error="") for i in card.form.inputs)
            card = replace(card, form=replace(card.form, error="", inputs=clean))
        return card

    def render_form(
        session: Session, token: str, claims: Claims, person: Person, card: Card, nonce: str
    ) -> tuple[str, str]:
        post_url = url_for("pages.submit", token=token)
        if claims.page != "plan-form":
            return pages.form_page(card, post_url=post_url, nonce=nonce), ""
        now = services.clock()
        week = week_now(person, now)
        kpis = form_kpis(session, person, now.astimezone(ZoneInfo(person.team.timezone)).date())
        template = week_template(session, person, week)
        counted = template.counted if template else None
        kpis = mark_uncounted(kpis, counted)
        notice = ""
        if claims.week and claims.week != week:
            notice = f"这个链接是为 {claims.week} 发的；现在填写的是本周（{week}）的计划。"
        script_nonce = secrets.token_urlsafe(16)
        body = pages.plan_form_page(
            card,
            post_url=post_url,
            nonce=nonce,
            kpis=kpis,
            previews=form_previews(card, kpis, counted),
            script_nonce=script_nonce,
            notice=notice,
        )
        return body, script_nonce

    def plan_page(session: Session, claims: Claims, viewer: Person, subject: Person) -> str:
        now = services.clock()
        week = claims.week or week_now(subject, now)
        own_current = viewer.id == subject.id and week == week_now(subject, now)
        links = [("修改计划", link(viewer.id, "plan-form", week))] if own_current else []
        view = plan_view(session, subject, week, now, links=links)
        if view is None:
            return pages.empty_page(
                f"计划详情 · {week}",
                f"{subject.name} 在 {week} 还没有提交计划。",
                subtitle=subject.name,
                links=[("现在填写", link(viewer.id, "plan-form", week))] if own_current else [],
            )
        return pages.plan_page(view)

    def appraisal_page(session: Session, claims: Claims, viewer: Person, subject: Person) -> str:
        week = (
            claims.week or latest_appraised_week(session, subject.id) or week_now(subject, services.clock())
        )
        view = appraisal_view(session, subject, week)
        tables: list[pages.TeamTable] = []
        links: list[tuple[str, str]] = []
        if subject.id == viewer.id and led_teams(session, viewer):
            sort = request.args.get("sort", "score")
            descending = request.args.get("dir", "desc") != "asc"
            tables = team_tables(
                session,
                viewer,
                week,
                sort=sort,
                descending=descending,
                member_url=lambda mid: link(
                    viewer.id, "appraisal", week, **({} if mid == viewer.id else {"of": mid})
                ),
                sort_url=lambda key, desc: f"?sort={key}&dir={'desc' if desc else 'asc'}",
            )
        elif subject.id != viewer.id:
            links.append(("返回团队", link(viewer.id, "appraisal", week)))
        return pages.appraisal_page(view, person_name=subject.name, week=week, tables=tables, links=links)

    @bp.post("/<token>")
    def submit(token: str) -> Response:
        # the origin the form's page was served from: the base every signed link is made with
        base = services.links.public_url if services.links is not None else services.settings.public_url
        cross_site = cross_site_reason(request.headers, base)
        if cross_site:
            log.warning("refused a cross-site form post: %s", cross_site)
            raise Refusal(403, "请在原页面提交", "这份表单只能在 planloop 自己的页面里提交。", REOPEN)
        claims = claims_of(token)
        if claims.page not in FORMS:
            raise Refusal(403, "链接不能用于这里", "这个链接是为另一个页面签发的。", REOPEN)
        requested = claims.extra.get("of") or request.args.get("person", "")
        if requested and requested != claims.person:
            raise Refusal(403, "没有权限", "表单只能由本人填写。")
        nonce = request.form.get("_nonce", "")
        if not _NONCE.match(nonce):
            raise Refusal(400, "表单已失效", "这份表单缺少校验信息，请重新打开后再提交。", REOPEN)
        posted: dict[str, str] = {}
        for key in request.form:
            value = request.form.get(key, "")
            if len(value) > MAX_VALUE:
                raise Refusal(400, "内容太长", f"单个输入最多 {MAX_VALUE} 字，请精简后再提交。")
            if key != "_nonce":
                posted[key] = value
        if len(posted) > MAX_FIELDS:
            raise Refusal(400, "内容太多", "这份表单的输入项太多，请重新打开表单填写。")
        try:
            body = store(token, claims, nonce, posted)
        except _NotStored as shown:
            return html(shown.body, script_nonce=shown.script_nonce)
        except IntegrityError:
            # the same nonce committed by a concurrent request (a double POST racing itself)
            with services.sessions() as session:
                body = already_page(session, claims, viewer_of(session, claims))
        return html(body)

    def store(token: str, claims: Claims, nonce: str, posted: dict[str, str]) -> str:
        """The form's action through the router in one transaction, as bot/dispatch.py process()
        does: event-id dedupe on the nonce, the handler, the receipt queued to the person's chat."""
        now = services.clock()
        with transaction(services.sessions) as session:
            person = viewer_of(session, claims)
            if claims.page == "plan-form":
                # the rows on the page may differ from a fresh form (a plan filed meanwhile): take every row
                action, values = "plan.submit", {k: v for k, v in posted.items() if _FIELD.match(k)}
            else:
                form_card = open_form(session, claims, person)  # the handler's own form decides
                if form_card.form is None:
                    return pages.card_page(form_card)
                names = {i.name for i in form_card.form.inputs}
                action = form_card.form.action
                values = {k: v for k, v in posted.items() if k in names} | dict(form_card.form.values)
            inbound, target = chat_event(
                session, person, f"web-{nonce}", "form", action=action, values=values
            )
            if not events.first_time(session, f"{inbound.bot_id}:web-{nonce}", now):
                return already_page(session, claims, person)
            week = week_now(person, now)
            before = current_plan(session, person.id, week)
            before_id = before.id if before else None
            card = dispatch(session, person, inbound)
            if card is None or card.form is not None:
                # not stored: roll back (the nonce stays usable) and show the messages in the form
                shown = card if card is not None else open_form(session, claims, person)
                raise _NotStored(*render_form(session, token, claims, person, shown, nonce))
            if claims.page == "plan-form":
                after = current_plan(session, person.id, week)
                done = after is not None and after.id != before_id
            else:
                done = card.theme != "red"  # error cards are red; a refusal is not a receipt
            banner = ""
            if done:
                banner = "计划已保存。" if claims.page == "plan-form" else "已提交。"
                if target is not None:
                    outbox.enqueue(
                        session, target, card, dedupe_key=f"web-receipt:{inbound.bot_id}:{nonce}", now=now
                    )
                    banner += "回执已发送到你的聊天。"
            links = []
            if claims.page == "plan-form":
                links = [
                    ("查看计划详情", link(person.id, "plan", week)),
                    ("修改计划", url_for("pages.show", token=token)),
                ]
            return pages.receipt_page(card, banner=banner, links=links)

    def already_page(session: Session, claims: Claims, person: Person) -> str:
        if claims.page != "plan-form":
            return pages.message_page("已提交", "这份表单已经提交过了，没有重复保存。")
        week = week_now(person, services.clock())
        plan = current_plan(session, person.id, week)
        if plan is None:
            return pages.message_page("已提交", "这份表单已经提交过了。")
        ctx = services.context(session, WEB)
        ctx.person = person
        card = receipt_for(ctx, person, plan, note="这份表单已经提交过了，没有重复保存。")
        return pages.receipt_page(card, banner="", links=[("查看计划详情", link(person.id, "plan", week))])

    return bp
