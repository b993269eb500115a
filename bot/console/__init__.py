"""The web console at /console/ for leaders and admins (issue 22).

- ``sessions``: server-side credentials (one-time links, OAuth states, sessions), hashed at rest.
- ``roles``: admin / leader / member and the permission table.
- ``auth``: sign-in with the chat platform (bot/platforms/signin.py), links, sign-out.
- ``views``: the team, appraisals, templates and delivery pages and their actions.
- ``data``: each page's data, read through handlers/*.
- ``data_page``, ``uploads``: the Data page (sources' freshness, pull now, report upload with preview).
- ``render``, ``texts``, ``templates/``: Jinja2 pages (zh-CN, en-US) under the pages' strict CSP.
"""

from __future__ import annotations

import logging

from flask import Blueprint
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from bot.services import Services

log = logging.getLogger("planloop.console")


def blueprint(services: Services) -> Blueprint:
    from bot.console import auth, data_page, people_page, views
    from bot.console.web import Refusal, refusal_page

    bp = Blueprint("console", __name__, url_prefix="/console")

    @bp.errorhandler(Refusal)
    def refused(exc: Refusal) -> Response:
        return refusal_page(services, exc)

    @bp.errorhandler(Exception)
    def failed(exc: Exception) -> Response | HTTPException:
        if isinstance(exc, HTTPException):
            return exc
        log.exception("console page failed")
        return refusal_page(services, Refusal(503, "unavailable"))

    auth.add_routes(bp, services)
    views.add_routes(bp, services)
    data_page.add_routes(bp, services)
    people_page.add_routes(bp, services)
    return bp
