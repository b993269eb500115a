"""Structured logs: one JSON object per line (time, level, logger, message, event_id/bot/outbox_id),
with every known secret and every credential-looking URL parameter redacted.

``configure(settings)`` is called once by `planloop serve`, `worker` and `demo`; it registers
the configured secrets for redaction. Code that opens a sealed value at run time (a team's
webhook URL, a cached token) calls ``add_secret(value)`` so a later error message that
happens to contain it (``requests`` puts the URL in its exceptions) is redacted too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.config import Secret, Settings

# Context fields a log call may pass with ``extra={...}``; they become top-level JSON keys.
CONTEXT_FIELDS = ("event_id", "bot", "outbox_id", "job", "period", "platform", "team", "source")
REDACTED = "***"
# Values shorter than this are not registered: redacting "1" everywhere would wreck every line.
MIN_SECRET_LEN = 6

# Credentials that travel in URLs: DingTalk robot ?access_token=, WeCom robot ?key=, OAuth
# ?access_token=/refresh_token=, TOP/JOS ?session= and &sign=; Feishu robot /hook/<uuid>.
_URL_SECRET = re.compile(
    r"(?i)([?&](?:access_token|refresh_token|key|secret|sign|signature|session|corpsecret|appsecret|"
    r"app_secret|client_secret|password|token)=)[^&#\s'\"]+"
)
_HOOK_PATH = re.compile(r"(/open-apis/bot/v2/hook/)[A-Za-z0-9-]+")
_DB_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+(@)")

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()


def add_secret(value: str | Secret | None) -> None:
    """Redact ``value`` from every log line from now on (process-wide)."""
    global _pattern
    raw = value.get() if isinstance(value, Secret) else value
    if not raw or len(raw) < MIN_SECRET_LEN or raw in _secrets:
        return
    with _lock:
        _secrets.add(raw)
        # Longest first so a secret that contains another is redacted whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def add_secrets(values: Iterable[str | Secret | None]) -> None:
    for value in values:
        add_secret(value)


def settings_secrets(settings: Settings) -> list[Secret]:
    """Every secret value the configuration holds: keys, bot and source secrets."""
    found: list[Secret] = list(settings.secret_keys)
    for bot in settings.bots:
        found.extend(bot.secrets.values())
    for source in settings.sources:
        found.extend(source.secrets.values())
    return found


def redact(text: str) -> str:
    """Replace registered secrets, credential URL parameters and DB URL passwords with ***."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    # Each pattern needs a character most lines lack; `in` is far cheaper than a regex pass,
    # and every access line runs this on each of its fields.
    if "=" in text:
        text = _URL_SECRET.sub(lambda m: m.group(1) + REDACTED, text)
    if "/hook/" in text:
        text = _HOOK_PATH.sub(lambda m: m.group(1) + REDACTED, text)
    if "@" in text:
        text = _DB_PASSWORD.sub(lambda m: m.group(1) + REDACTED + m.group(2), text)
    return text


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, context, exc."""

    # Attributes every LogRecord has; anything else came from ``extra=`` and is kept.
    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        extras = record.__dict__.keys() - self._STANDARD  # found at C speed; kept in their order
        if extras:
            for key, value in record.__dict__.items():
                if key in extras and not key.startswith("_") and key not in out:
                    out[key] = _clean(value)
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc"] = redact(record.exc_text)
        if record.stack_info:
            out["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """For a person at a terminal (PLANLOOP_LOG_FORMAT=text); still redacted."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if hasattr(record, k))
        return redact(f"{line} [{context}]" if context else line)


class ConsoleFormatter(logging.Formatter):
    """`planloop demo`'s console: one short line per thing that happens, in local time."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s  %(message)s", datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if record.levelno >= logging.WARNING:
            line = f"{line}  [{record.levelname.lower()}]"
        return redact(line)


# What the demo's console shows by default: the jobs that ran, the cards the simulator got,
# and every warning. The scheduler's bookkeeping, each delivery's outbox id and the web
# server's access log (the simulator page polls every 2 s) only with --verbose.
DEMO_QUIET = ("apscheduler", "werkzeug", "planloop.delivery", "planloop.worker", "planloop.inbound")


def configure_console(*, verbose: bool = False, stream: TextIO | None = None) -> logging.Handler:
    """Logging for a person watching `planloop demo`: ConsoleFormatter, quiet unless ``verbose``."""
    handler = configure(
        level="DEBUG" if os.environ.get("PLANLOOP_LOG_LEVEL") == "DEBUG" else "INFO", stream=stream
    )
    if not os.environ.get("PLANLOOP_LOG_FORMAT"):
        handler.setFormatter(ConsoleFormatter())
    for name in DEMO_QUIET:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    return handler


def formatter(fmt: str | None = None) -> logging.Formatter:
    fmt = (fmt or os.environ.get("PLANLOOP_LOG_FORMAT") or "json").lower()
    return TextFormatter() if fmt == "text" else JsonFormatter()


def configure(
    settings: Settings | None = None,
    *,
    level: str | int | None = None,
    fmt: str | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) through the JSON formatter; register secrets.

    Level from ``level``, else $PLANLOOP_LOG_LEVEL, else INFO. Replaces the root handlers, so
    calling it twice does not double the lines.
    """
    if settings is not None:
        add_secrets(settings_secrets(settings))
    chosen = level or os.environ.get("PLANLOOP_LOG_LEVEL") or "INFO"
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen.upper() if isinstance(chosen, str) else chosen)
    # Libraries that log request URLs (with tokens in the query) at INFO/DEBUG: keep them quiet.
    # alembic: /readyz reads the revision on every probe and each read logs "Context impl …".
    for noisy in ("urllib3", "requests", "apscheduler.executors.default", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return handler
