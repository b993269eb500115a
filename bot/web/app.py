"""create_app(settings) -> Flask: health, the simulator, pages, console and API, with the webhook
route in front of it (bot/web/webhooks.py). No I/O at creation."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request

from bot.config import Settings
from bot.ops import metrics
from bot.platforms.base import WebResponse
from bot.services import Services, build_services
from bot.web.responses import error, to_flask
from bot.web.webhooks import MAX_BODY, WebhookFront

log = logging.getLogger("planloop.web")


def create_app(settings: Settings, services: Services | None = None) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    services = services or build_services(settings)
    app.extensions["planloop"] = services

    @app.get("/healthz")
    def healthz() -> Response:
        return to_flask(WebResponse(200, {"status": "ok"}))

    @app.get("/readyz")
    def readyz() -> Response:
        from storage.db import NotMigrated, migration_status

        try:
            current, head = migration_status(services.engine)
        except Exception as exc:  # the database does not answer; the driver's text may hold the URL
            log.warning("readyz: database unavailable: %s", type(exc).__name__)
            reason = f"database unavailable ({type(exc).__name__})"
            return to_flask(WebResponse(503, {"status": "unavailable", "reason": reason, "error": reason}))
        if current != head:
            reason = str(NotMigrated.between(current, head))
            return to_flask(
                WebResponse(
                    503,
                    {
                        "status": "not migrated",
                        "reason": reason,
                        "error": reason,
                        "database": current,
                        "code": head,
                    },
                )
            )
        return to_flask(WebResponse(200, {"status": "ready"}))

    metrics_token = metrics.metrics_token(settings.extra)

    @app.get("/metrics")
    def prometheus() -> Response:
        if not metrics.authorized(request.headers.get("Authorization"), metrics_token):
            return error(401, "metrics token required (Authorization: Bearer …)")
        return Response(
            metrics.exposition(services.engine, services.clock), content_type=metrics.CONTENT_TYPE
        )

    @app.errorhandler(404)
    def not_found(_e: Any) -> Response:
        return error(404, "not found")

    @app.errorhandler(405)
    def not_allowed(_e: Any) -> Response:
        return error(405, "method not allowed")

    @app.errorhandler(413)
    def too_large(_e: Any) -> Response:
        return error(413, f"body larger than {MAX_BODY} bytes")

    @app.errorhandler(500)
    def internal(_e: Any) -> Response:
        return error(503, "temporarily unavailable, retry later")

    from bot.web.pages import blueprint as pages_blueprint

    app.register_blueprint(pages_blueprint(services))

    from bot.api import mount as mount_api

    mount_api(app, services)  # /api/v1: the open API (bot/api/)

    from bot.console import blueprint as console_blueprint

    app.register_blueprint(console_blueprint(services))

    if settings.simulator or "sim" in services.platforms:
        from bot.web.sim import blueprint

        app.register_blueprint(blueprint(services))

    app.wsgi_app = WebhookFront(services, app.wsgi_app)  # type: ignore[method-assign]
    return app
