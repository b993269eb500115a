"""The neutral WebResponse as bytes, or as a Flask Response: shared by the webhook route, the web
app, the simulator and the pages."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from flask import Response

from bot.platforms.base import WebResponse


def encode(response: WebResponse) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, headers and body bytes of a WebResponse: what the webhook route sends as
    plain WSGI, and what a Flask route sends through ``to_flask``."""
    body: Any = response.body
    if isinstance(body, dict | list):
        body = json.dumps(body, ensure_ascii=False)
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = [("Content-Type", response.content_type), ("Content-Length", str(len(body)))]
    headers += [
        (k, v) for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")
    ]
    return f"{response.status} {HTTPStatus(response.status).phrase}", headers, body


def to_flask(resp: WebResponse) -> Response:
    _status, headers, body = encode(resp)
    return Response(body, status=resp.status, headers=headers)


def error(status: int, message: str) -> Response:
    return to_flask(WebResponse(status, {"error": message}))
