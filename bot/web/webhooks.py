"""The platforms' webhook route as plain WSGI, in front of Flask.

Every inbound event of every platform comes through ``/webhooks/<platform>/<bot_id>[/<sub>]``:
it is the busiest route by far, and what it does is fixed — read the body, let the adapter
verify and parse it, run it through ``bot.dispatch``, answer. Flask's request context, URL map
and Response object cost about as much as the adapter's signature check and decryption, so
this route is answered here and everything else is passed on to the Flask app unchanged.
The simulator's say/act routes call the same ``handle``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from bot.config import PLATFORMS
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
from bot.services import Services
from bot.web.responses import encode

log = logging.getLogger("planloop.web")

MAX_BODY = 1024 * 1024  # 1 MiB: far above any platform event; larger is refused before parsing
PATH = re.compile(r"/webhooks/([^/]+)/([^/]+)(?:/([^/]+))?\Z")
PATHS = ("/webhooks/<platform>/<bot_id>", "/webhooks/<platform>/<bot_id>/<sub>")  # what PATH matches
RETRY_LATER = WebResponse(
    503, {"error": "temporarily unavailable, retry later"}, headers={"Retry-After": "5"}
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _utf8(text: str) -> str:
    """A path or query string as sent: PEP 3333 hands it over as latin-1, and its bytes are
    UTF-8 on every platform."""
    return text if text.isascii() else text.encode("latin-1", "replace").decode("utf-8", "replace")


def error(status: int, message: str) -> WebResponse:
    return WebResponse(status, {"error": message})


def incoming(environ: dict[str, Any], sub: str) -> WebRequest | WebResponse:
    """What the adapter sees of this request, or the answer to a body it cannot have: over
    ``MAX_BODY`` (413; refused before it is read when its length is declared, read to one byte
    past the limit when chunked) or unreadable (400)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return error(400, "Content-Length is not a number")
    stream = environ["wsgi.input"]
    if length > MAX_BODY:
        return error(413, f"body larger than {MAX_BODY} bytes")
    try:
        if length > 0:
            body = stream.read(length)
        elif environ.get("wsgi.input_terminated"):  # chunked: read to one byte past the limit
            body = stream.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                return error(413, f"body larger than {MAX_BODY} bytes")
        else:
            body = b""
    except Exception as exc:  # a client that hung up mid-body, a broken chunk
        log.info("could not read a webhook body: %s", type(exc).__name__)
        return error(400, "the request body could not be read")
    headers = CaseInsensitiveDict(
        {key[5:].replace("_", "-"): value for key, value in environ.items() if key.startswith("HTTP_")}
    )
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    query = _utf8(environ.get("QUERY_STRING", ""))
    args: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        args.setdefault(key, value)  # the first of a repeated key, as Flask's request.args.get
    return WebRequest(method=environ["REQUEST_METHOD"], path=sub, args=args, headers=headers, body=body)


def handle(
    services: Services, adapter: Any, request: WebRequest | WebResponse, started: float | None = None
) -> WebResponse:
    """One webhook request answered and counted (its time from ``started``, before the body was
    read): never a 500 (a failure rolls everything back and asks the platform to retry)."""
    started = time.perf_counter() if started is None else started
    response = request if isinstance(request, WebResponse) else _answer(services, adapter, request)
    metrics.observe_webhook(adapter.name, response.status, time.perf_counter() - started)
    return response


def _answer(services: Services, adapter: Any, request: WebRequest) -> WebResponse:
    try:
        parsed = adapter.parse(request, services.clock())
        if isinstance(parsed, WebResponse):
            return parsed
        return process(services, adapter, parsed)
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
        return RETRY_LATER


class WebhookFront:
    """A WSGI app answering the webhook route itself and passing every other request on."""

    def __init__(self, services: Services, app: WsgiApp):
        self.services = services
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = _utf8(environ.get("PATH_INFO", ""))
        match = PATH.match(path)
        if match is None:
            return self.app(environ, start_response)
        try:
            status, headers, body = encode(self._route(environ, *match.groups()))
        except Exception:  # never a 500: whatever failed, the platform is asked to retry
            log.exception("webhook route failed on %s", path)
            status, headers, body = encode(RETRY_LATER)
        start_response(status, headers)
        return [body]

    def _route(self, environ: dict[str, Any], platform: str, bot_id: str, sub: str | None) -> WebResponse:
        adapter = self.services.platforms.get(bot_id)
        if adapter is None or adapter.name != platform or platform == "simulator":
            # Counted too (a misconfigured callback URL shows up as 404s), with a bounded label.
            metrics.observe_webhook(platform if platform in PLATFORMS else "other", 404, 0.0)
            return error(404, f"no {platform} bot named {bot_id!r}")
        if environ["REQUEST_METHOD"] not in ("GET", "POST"):
            return error(405, "method not allowed")
        started = time.perf_counter()
        return handle(self.services, adapter, incoming(environ, sub or ""), started)
