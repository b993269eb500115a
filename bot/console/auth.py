"""Sign-in routes: the chat platforms' OAuth (bot/platforms/signin.py), one-time links, sign-out."""

from __future__ import annotations

import logging

from flask import Blueprint, redirect, request, url_for
from werkzeug.wrappers import Response

from bot.console import sessions
from bot.console.render import page
from bot.console.texts import PLATFORM_NAMES
from bot.console.web import COOKIE, OAUTH_COOKIE, Refusal, check_post, clear_cookie, current, set_cookie
from bot.platforms.signin import SignIn, SignInError, build_signin
from bot.services import Services
from bot.web.origin import cross_site_reason
from handlers.router import resolve_person
from storage.db import transaction
from storage.models import AuditLog, Person

log = logging.getLogger("planloop.console")


def signins(services: Services) -> dict[str, SignIn]:
    out = {}
    for bot in services.settings.bots:
        found = build_signin(bot, services.http, services.platforms.get(bot.id))
        if found is not None:
            out[bot.id] = found
    return out


def add_routes(bp: Blueprint, services: Services) -> None:
    by_bot = signins(services)
    locale = services.settings.locale
    names = PLATFORM_NAMES.get(locale, PLATFORM_NAMES["zh-CN"])
    session_age = int(sessions.SESSION_TTL.total_seconds())

    def redirect_uri(bot_id: str) -> str:
        return f"{services.settings.public_url.rstrip('/')}/console/oauth/{bot_id}"

    def signed_in(person_id: str, via: str) -> Response:
        now = services.clock()
        with transaction(services.sessions) as session:
            token = sessions.open_session(session, person_id, now, via)
            session.add(
                AuditLog(
                    at=now, actor=person_id, action="console.sign_in", subject=person_id, detail={"via": via}
                )
            )
        resp = redirect(url_for("console.team"), code=303)
        set_cookie(resp, services, COOKIE, token, session_age)
        clear_cookie(resp, services, OAUTH_COOKIE)
        return resp

    @bp.get("/login")
    def login() -> Response:
        bots = [
            {"name": names.get(s.platform, s.platform), "url": url_for("console.oauth_start", bot_id=bot_id)}
            for bot_id, s in by_bot.items()
        ]
        return page(
            "login.html",
            locale=locale,
            title="登录" if locale != "en-US" else "Sign in",
            bots=bots,
            viewer=None,
        )

    @bp.get("/login/<bot_id>")
    def oauth_start(bot_id: str) -> Response:
        signin = by_bot.get(bot_id)
        if signin is None:
            raise Refusal(404, "no_bot", back=True, bot=repr(bot_id))
        with transaction(services.sessions) as session:
            token, state = sessions.start_oauth(session, bot_id, services.clock())
        # WeCom's in-app browser says "wxwork": its OAuth is silent there; elsewhere a QR web login
        in_app = "wxwork" in request.headers.get("User-Agent", "").lower()
        resp = redirect(signin.authorize_url(state, redirect_uri(bot_id), in_app=in_app), code=302)
        set_cookie(resp, services, OAUTH_COOKIE, token, int(sessions.OAUTH_TTL.total_seconds()))
        return resp

    @bp.get("/oauth/<bot_id>")
    def oauth_callback(bot_id: str) -> Response:
        signin = by_bot.get(bot_id)
        if signin is None:
            raise Refusal(404, "no_bot", back=True, bot=repr(bot_id))
        state = request.args.get("state", "")
        with transaction(services.sessions) as session:
            ok = sessions.finish_oauth(
                session, request.cookies.get(OAUTH_COOKIE, ""), bot_id, state, services.clock()
            )
        if not ok:
            raise Refusal(403, "state", back=True)
        try:
            external = signin.identify(request.args, redirect_uri(bot_id))
        except SignInError as exc:
            log.info("sign-in with %s failed: %s", bot_id, exc)
            raise Refusal(403, "platform", back=True, reason=exc.text) from None
        with services.sessions() as session:
            person = resolve_person(session, bot_id, external)
            person_id = person.id if person is not None and person.active else ""
        if not person_id:
            platform = names.get(signin.platform, signin.platform)
            raise Refusal(403, "unknown_person", back=True, platform=platform, external=external, bot=bot_id)
        return signed_in(person_id, bot_id)

    @bp.get("/link/<token>")
    def link(token: str) -> Response:
        # A GET only shows a button: chat apps open links to preview them, which must not spend it.
        with services.sessions() as session:
            row_person = _link_person(session, token, services)
        return page(
            "link.html", locale=locale, title="一次性登录链接" if locale != "en-US" else "One-time sign-in link",
            name=row_person.name, action=url_for("console.link_redeem", token=token), viewer=None,
        )  # fmt: skip

    @bp.post("/link/<token>")
    def link_redeem(token: str) -> Response:
        if cross_site_reason(request.headers, services.settings.public_url):
            raise Refusal(403, "cross_site")
        with transaction(services.sessions) as session:
            person_id = sessions.redeem_link(session, token, services.clock())
        if person_id is None:
            raise _spent()
        return signed_in(person_id, "link")

    @bp.post("/logout")
    def logout() -> Response:
        with transaction(services.sessions) as session:
            found = current(services, session)
            if found is not None:
                check_post(services, session)
                sessions.revoke(session, found.signed.session_id, services.clock())
        resp = redirect(url_for("console.login"), code=303)
        clear_cookie(resp, services, COOKIE)
        return resp


def _spent() -> Refusal:
    return Refusal(410, "link_spent", back=True)


def _link_person(session, token: str, services: Services) -> Person:  # noqa: ANN001
    from storage.models import ConsoleSession

    row = (
        session.get(ConsoleSession, sessions.digest(token)) if token.isascii() and len(token) <= 200 else None
    )
    now = services.clock()
    if (
        row is None
        or row.kind != "link"
        or row.used_at is not None
        or row.revoked_at is not None
        or row.expires_at <= now
    ):
        raise _spent()
    person = session.get(Person, row.person_id)
    if person is None or not person.active:
        raise _spent()
    return person
