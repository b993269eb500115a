"""The console's HTML: Jinja2 templates inside this package (autoescaped), served with the pages' strict CSP."""

from __future__ import annotations

import secrets
from functools import cache
from typing import Any

from flask import Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from bot.console.texts import texts
from bot.web.pages import html


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bot.console", "templates"),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["svg"] = lambda text: Markup(text)  # noqa: S704 - charts are built by cards/charts.py, which escapes
    return env


def page(template: str, /, *, locale: str, status: int = 200, **values: Any) -> Response:
    """Render ``name`` with the locale's words; a nonce lets the one small inline script run."""
    nonce = secrets.token_urlsafe(16)
    body = (
        environment()
        .get_template(template)
        .render(t=texts(locale), locale=locale, script_nonce=nonce, **values)
    )
    return html(body, status=status, script_nonce=nonce)
