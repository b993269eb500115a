"""The open API as its own small Flask app (flask-openapi3), mounted at ``/api/v1`` of the web app.

Its OpenAPI 3.1 document is generated from ``bot.api.models`` — the same pydantic models that
validate the requests and shape the answers — and served at ``/api/v1/openapi.json``; the Swagger
UI page comes from the flask-openapi3-swagger package (its files ship in the wheel: no CDN).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, Response, redirect
from flask_openapi3 import APIBlueprint, Info, OpenAPI
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from bot.api import problems
from bot.api.problems import ApiProblem, Problem
from bot.services import Services

log = logging.getLogger("planloop.api")

PREFIX = "/api/v1"
MAX_BODY = 8 * 1024 * 1024  # 10,000 samples with long scopes stay far below this


def create_api(services: Services) -> OpenAPI:
    api = OpenAPI(
        __name__,
        info=Info(
            title="planloop API",
            version="1",
            description="Plans, progress, appraisals and metrics for the team's other systems. "
            "Authorization: Bearer <token> (planloop token create).",
        ),
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        servers=[{"url": PREFIX}],  # type: ignore[list-item]
        validation_error_status=422,
        validation_error_model=Problem,
        validation_error_callback=problems.from_validation,
        doc_prefix="/docs",
        doc_url="/openapi.json",
    )
    api.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    api.extensions["planloop"] = services

    from bot.api import reads, setup_writes, switches, webhooks, writes

    # one blueprint: the document keys operations by path, and GET and POST /plans share one
    operations = APIBlueprint("api", __name__, abp_security=[{"bearer": []}])
    reads.register(operations)
    writes.register(operations)
    switches.register(operations)
    webhooks.register(operations)
    setup_writes.register(operations)
    api.register_api(operations)

    @api.get("/openapi.json", doc_ui=False)
    def document() -> dict[str, Any]:
        return api.api_doc

    @api.get("/docs", doc_ui=False)
    def docs() -> Any:
        return redirect("docs/swagger", code=302)

    @api.errorhandler(ApiProblem)
    def on_problem(exc: ApiProblem) -> Response:
        return problems.from_exception(exc)

    @api.errorhandler(ValidationError)
    def on_validation(exc: ValidationError) -> Response:
        return problems.from_validation(exc)

    @api.errorhandler(HTTPException)
    def on_http(exc: HTTPException) -> Response:
        if exc.response is not None:  # flask-openapi3's validation answer, already made
            return exc.response  # type: ignore[return-value]
        code = exc.code or 400
        return problems.problem_response(code if code != 500 else 503, exc.description or exc.name)

    @api.errorhandler(Exception)
    def on_error(exc: Exception) -> Response:
        log.exception("api request failed")
        return problems.problem_response(
            503, "temporarily unavailable, retry later", headers={"Retry-After": "5"}
        )

    return api


class LazyApi:
    """The API app, built on its first request: building it (its pydantic models, the document)
    costs about 150 ms, which a process that never serves ``/api/v1`` (the demo, most tests, a
    worker recycled before its first API call) need not pay."""

    def __init__(self, services: Services):
        self._services = services
        self._api: OpenAPI | None = None
        self._lock = threading.Lock()

    def get(self) -> OpenAPI:
        if self._api is None:
            with self._lock:
                if self._api is None:
                    self._api = create_api(self._services)
        return self._api

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.get()(environ, start_response)


def mount(app: Flask, services: Services) -> None:
    """Serve the API under ``/api/v1`` of ``app`` (its own error pages: problem+json); built on the
    first request there (``app.extensions["planloop.api"].get()`` builds it now)."""
    api = LazyApi(services)
    app.extensions["planloop.api"] = api
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {PREFIX: api})  # type: ignore[method-assign]
