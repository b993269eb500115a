"""The face of a long connection: a bot with ``connection = "stream"`` dials out to its platform
instead of waiting for webhooks, so it needs no public URL.

One client per bot (``build_stream``). The worker's supervisor (``bot/worker/streams.py``) holds at most
one live connection per bot across every worker and replica, calls ``run`` again after a failure
with jittered backoff, and reports each bot's ``StreamState`` on the health port and ``/metrics``.

Everything that arrives goes through the one inbound path: the client turns a frame into an
``Inbound`` with its adapter and calls ``handle`` (``bot.dispatch.process``: the same dedupe,
handlers, audit and outbox as a webhook). ``handle`` returns after the transaction committed;
only then does the client acknowledge the frame, carrying ``WebResponse.body`` as the
synchronous answer where the platform takes one there (a card callback's update), so a crash
before the commit means the platform redelivers and the dedupe absorbs it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.config import BotConfig
from bot.platforms.base import Deps, Platform, WebResponse
from handlers.inbound import Inbound

Handle = Callable[[Inbound], WebResponse]


class StreamError(Exception):
    """The connection could not be opened or was lost; the supervisor retries with backoff.

    ``code`` carries the platform's own error (e.g. a gateway's HTTP status and body) for the log."""

    def __init__(self, message: str, *, code: str = ""):
        super().__init__(message)
        self.code = code


class StreamAuthError(StreamError):
    """The platform refused the credentials: retrying will not help; the message says what to fix."""


@dataclass
class StreamState:
    """What the health port and /metrics show of one stream bot."""

    bot_id: str
    platform: str
    connected: bool = False
    since: datetime | None = None
    reconnects: int = 0
    last_error: str = ""
    holder: bool = False  # this process holds the bot's lease


class StreamClient(Protocol):
    bot_id: str
    platform: str

    def run(self, handle: Handle, stop: threading.Event, on_connected: Callable[[], None]) -> None:
        """Open the connection, call ``on_connected`` once it is live, serve frames until ``stop``
        is set (then close cleanly after acknowledging in-flight frames and return) or the
        connection ends (raise StreamError; StreamAuthError when the credentials are refused)."""
        ...


def build_stream(bot: BotConfig, deps: Deps, platform: Platform) -> StreamClient:
    """The long-connection client of a ``connection = "stream"`` bot; ``platform`` is its adapter,
    which parses what arrives and sends what goes out over HTTP.

    Each platform's client lives beside its adapter as ``bot/platforms/<platform>_stream.py``
    with a ``build(bot, deps, platform)`` of this signature."""
    module = importlib.import_module(f"bot.platforms.{bot.platform}_stream")
    client: StreamClient = module.build(bot, deps, platform)
    return client
