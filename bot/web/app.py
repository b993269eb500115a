"""create_app(settings) -> Flask: webhooks, health, the simulator and pages. No I/O at creation."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, request

from bot.config import PLATFORMS, Settings
from bot.dispatch import process
from bot.ops import metrics
from bot.platforms.base import (
    BadRequest,
    CaseInsensitiveDict,
    LimitExceeded,
    SignatureError,
    WebRequest,
    WebResponse,
)
from bot.services import Services, build_services
from bot.web.responses import error, to_flask

log = logging.getLogger("planloop.web")

MAX_BODY = 1024 * 1024  # 1 MiB: far above any platform event; larger is refused before parsing


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

    @app.route("/webhooks/<platform>/<bot_id>", methods=["GET", "POST"])
    @app.route("/webhooks/<platform>/<bot_id>/<sub>", methods=["GET", "POST"])
    def webhook(platform: str, bot_id: str, sub: str = "") -> Response:
        adapter = services.platforms.get(bot_id)
        if adapter is None or adapter.name != platform or platform == "simulator":
            # Counted too (a misconfigured callback URL shows up as 404s), with a bounded label.
            metrics.observe_webhook(platform if platform in PLATFORMS else "other", 404, 0.0)
            return error(404, f"no {platform} bot named {bot_id!r}")
        return handle(adapter, sub)

    def handle(adapter: Any, sub: str) -> Response:
        started = time.perf_counter()
        response = answer(adapter, sub)
        metrics.observe_webhook(adapter.name, response.status_code, time.perf_counter() - started)
        return response

    def answer(adapter: Any, sub: str) -> Response:
        body = request.get_data(cache=False)
        web = WebRequest(
            method=request.method,
            path=sub,
            args={k: v for k, v in request.args.items()},
            headers=CaseInsensitiveDict(dict(request.headers)),
            body=body,
        )
        try:
            parsed = adapter.parse(web, services.clock())
            if isinstance(parsed, WebResponse):
                return to_flask(parsed)
            return to_flask(process(services, adapter, parsed))
        except SignatureError as exc:
            log.info("rejected signature on %s: %s", adapter.bot_id, exc)
            return error(401, f"signature check failed: {exc}")
        except LimitExceeded as exc:
            log.warning("refused body on %s: %s", adapter.bot_id, exc)
            return error(400, str(exc))
        except BadRequest as exc:
            return error(400, str(exc))
        except Exception:
            # Nothing committed (one transaction); the platform's retry will try again.
            log.exception("inbound failed on %s", adapter.bot_id)
            return to_flask(
                WebResponse(
                    503, {"error": "temporarily unavailable, retry later"}, headers={"Retry-After": "5"}
                )
            )

    app.extensions["planloop.handle"] = handle

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

        app.register_blueprint(blueprint(services, handle))

    return app
