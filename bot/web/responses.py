"""The neutral WebResponse as a Flask Response: shared by the web app, the simulator and the pages."""

from __future__ import annotations

import json
from typing import Any

from flask import Response

from bot.platforms.base import WebResponse


def to_flask(resp: WebResponse) -> Response:
    body: Any = resp.body
    if isinstance(body, dict | list):
        body = json.dumps(body, ensure_ascii=False)
    return Response(body, status=resp.status, content_type=resp.content_type, headers=dict(resp.headers))


def error(status: int, message: str) -> Response:
    return to_flask(WebResponse(status, {"error": message}))
