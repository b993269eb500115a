"""Shared request plumbing of the console: the signed-in viewer, CSRF and origin checks, refusals."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from flask import redirect, request, url_for
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bot.console import sessions
from bot.console.render import page
from bot.console.roles import PAGES, Viewer, admins_of, viewer_for
from bot.console.texts import refusal
from bot.services import Services
from bot.web.origin import cross_site_reason
from storage.models import Person

COOKIE = "planloop_console"
OAUTH_COOKIE = "planloop_console_oauth"
MAX_FIELD = 2000


class Refusal(Exception):
    """Answered with a friendly page in the service's locale (bot/console/texts.REFUSALS) and no data."""

    def __init__(self, status: int, key: str, *, back: bool = False, **values: str):
        super().__init__(key)
        self.status, self.key, self.back, self.values = status, key, back, values


@dataclass
class Current:
    viewer: Viewer
    signed: sessions.Signed


def secure(services: Services) -> bool:
    return services.settings.public_url.lower().startswith("https://")


def set_cookie(resp: Response, services: Services, name: str, token: str, max_age: int) -> None:
    resp.set_cookie(
        name, token, max_age=max_age, path="/console", httponly=True, samesite="Lax", secure=secure(services)
    )


def clear_cookie(resp: Response, services: Services, name: str) -> None:
    resp.delete_cookie(name, path="/console", httponly=True, samesite="Lax", secure=secure(services))


def current(services: Services, session: Session) -> Current | None:
    signed = sessions.lookup(session, request.cookies.get(COOKIE, ""), services.clock())
    if signed is None:
        return None
    person = session.get(Person, signed.person_id)
    assert person is not None  # noqa: S101 - lookup checked it
    return Current(viewer_for(session, person, admins_of(services.settings.extra)), signed)


def back_to(endpoint: str, found: Current, *, done: str = "", error: str = "") -> Response:
    """Back to a page after a POST: ``done`` names its banner; ``error`` is the reason, signed with
    the session's CSRF token, so a link made elsewhere cannot put its own words into the banner."""
    if error:
        error = error[:300]
        return redirect(url_for(endpoint, error=error, check=_banner_mark(found, error)), code=303)
    return redirect(url_for(endpoint, done=done), code=303)


def shown_error(found: Current) -> str:
    """The reason ``back_to`` put in this request's address, if this session's console wrote it."""
    error = request.args.get("error", "")[:300]
    if error and hmac.compare_digest(_banner_mark(found, error), request.args.get("check", "")):
        return error
    return ""


def _banner_mark(found: Current, error: str) -> str:
    mac = hmac.new(found.signed.csrf.encode(), b"banner\x00" + error.encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


def to_login() -> Response:
    return redirect(url_for("console.login"), code=302)


def check_post(services: Services, session: Session) -> Current:
    """A POST: same origin, a live session, and the session's CSRF token in ``_csrf``."""
    if cross_site_reason(request.headers, services.settings.public_url):
        raise Refusal(403, "cross_site")
    found = current(services, session)
    if found is None:
        raise Refusal(401, "signed_out", back=True)
    if not sessions.csrf_ok(found.signed, request.form.get("_csrf", "")):
        raise Refusal(403, "csrf")
    return found


def field(name: str) -> str:
    value = request.form.get(name, "")
    if len(value) > MAX_FIELD:
        raise Refusal(400, "too_long", limit=str(MAX_FIELD))
    return value.strip()


def nav(viewer: Viewer) -> dict[str, Any]:
    pages = [p for p in PAGES if viewer.may_open(p)]
    urls = {
        "team": url_for("console.team"),
        "appraisals": url_for("console.appraisals"),
        "templates": url_for("console.templates"),
        "delivery": url_for("console.delivery"),
        "data": url_for("console.data"),
        "people": url_for("console.people"),
        "people_pull": url_for("console.directory_pull"),
        "people_add": url_for("console.add"),
        "people_deactivate": url_for("console.deactivate_person"),
        "people_team": url_for("console.save_team"),
        "people_catalogue": url_for("console.catalogue"),
        "people_person": url_for("console.save_person"),
        "people_kpi": url_for("console.save_kpi"),
        "people_period": url_for("console.save_period"),
        "people_scenario": url_for("console.save_scenario"),
        "people_calendar": url_for("console.save_calendar"),
        "data_pull": url_for("console.pull"),
        "data_upload": url_for("console.upload"),
        "data_confirm": url_for("console.confirm"),
        "logout": url_for("console.logout"),
        "switch": url_for("console.switch"),
        "undo": url_for("console.undo"),
        "scenario": url_for("console.scenario"),
        "resend": url_for("console.resend"),
        "decide": url_for("console.decide"),
    }
    return {"pages": pages, "urls": urls}


def refusal_page(services: Services, exc: Refusal) -> Response:
    locale = services.settings.locale
    title, text, hint = refusal(exc.key, locale, exc.values)
    back = url_for("console.login") if exc.back else ""
    return page(
        "message.html",
        locale=locale,
        status=exc.status,
        title=title,
        text=text,
        hint=hint,
        back=back,
        viewer=None,
    )
