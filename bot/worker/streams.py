"""The stream supervisor: holds the long connection of every ``connection = "stream"`` bot.

``planloop worker`` (and ``planloop demo``, through ``run_worker``) starts one ``Supervisor``;
it runs one thread per stream bot:

- **One live connection per bot across every worker and replica.** A bot's thread connects
  only while it holds the bot's lease, ``leader.elect(engine, f"stream:{bot_id}")``: a
  PostgreSQL advisory lock on a connection of its own, released by the server the moment the
  holder's process dies, so another worker's next poll (``lease_poll``, 2 s) takes over, well
  inside 30 s. On SQLite there is only one worker per database (``bot/worker/leader.py``), so that
  worker holds every bot. A holder that loses its lease (its database link broke) closes the
  connection at once.
- **Reconnects** after a failure with jittered exponential backoff (``base`` doubling, capped at
  60 s; reset once a connection stayed up for a minute), logging the platform's own error each
  time. ``StreamAuthError`` (credentials refused) stops the bot after ``auth_tries`` tries with
  what to fix; the other bots keep running.
- **Stops cleanly**: when the worker's ``stop`` is set (SIGTERM), each client finishes and
  acknowledges the frame in hand, closes its connection, and the lease is given up.
- ``states()`` is what the worker's health port and ``/metrics`` show (``health`` and
  ``metrics_text``).

Every frame goes through the one inbound path: ``handle = dispatch.process(services, platform,
inbound)``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from bot.config import BotConfig
from bot.dispatch import process
from bot.platforms import Deps
from bot.platforms.base import WebResponse
from bot.platforms.stream import StreamAuthError, StreamClient, StreamError, StreamState, build_stream
from bot.services import Services
from bot.worker import leader
from handlers.inbound import Inbound

log = logging.getLogger("planloop.streams")

BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
STABLE_SECONDS = 60.0  # a connection up this long resets the backoff
AUTH_TRIES = 3


def stream_bots(bots: tuple[BotConfig, ...] | list[BotConfig]) -> list[BotConfig]:
    return [b for b in bots if b.get("connection", "webhook") == "stream"]


def backoff(
    failures: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP, rng: Any = random
) -> float:
    """Seconds to wait after the ``failures``-th failure in a row: full jitter over an
    exponentially growing window, never more than ``cap``."""
    window = min(cap, base * (2 ** max(0, failures - 1)))
    return float(window * (0.5 + 0.5 * rng.random()))


class _OnlyWorker:
    """The lease on SQLite: the worker's own file lock already makes it the only worker."""

    is_leader = True

    def try_acquire(self) -> bool:
        return True

    def check(self) -> bool:
        return True

    def release(self) -> None:
        return None


def lease_for(engine: Any, bot_id: str) -> leader.LeaderElection:
    if engine.dialect.name == "sqlite":
        return _OnlyWorker()
    return leader.elect(engine, f"stream:{bot_id}")


class Supervisor:
    def __init__(
        self,
        services: Services,
        *,
        lease_poll: float = leader.POLL_SECONDS,
        base: float = BACKOFF_BASE,
        cap: float = BACKOFF_CAP,
        auth_tries: int = AUTH_TRIES,
        build: Callable[[BotConfig, Deps, Any], StreamClient] = build_stream,
        lease: Callable[[Any, str], leader.LeaderElection] = lease_for,
    ):
        self.services = services
        self.lease_poll = lease_poll
        self.base, self.cap, self.auth_tries = base, cap, auth_tries
        self.bots = stream_bots(services.settings.bots)
        self._build = build
        self._lease = lease
        self._states = {b.id: StreamState(b.id, b.platform) for b in self.bots}
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def states(self) -> list[StreamState]:
        with self._lock:
            return [StreamState(**asdict(s)) for s in self._states.values()]

    def _update(self, bot_id: str, **changes: Any) -> None:
        with self._lock:
            state = self._states[bot_id]
            for key, value in changes.items():
                setattr(state, key, value)

    def start(self, stop: threading.Event) -> list[threading.Thread]:
        for bot in self.bots:
            thread = threading.Thread(
                target=self.supervise, args=(bot, stop), name=f"planloop-stream-{bot.id}", daemon=True
            )
            thread.start()
            self.threads.append(thread)
        if self.bots:
            log.info("stream supervisor: %d bot(s): %s", len(self.bots), ", ".join(b.id for b in self.bots))
        return self.threads

    def join(self, timeout: float = 30.0) -> None:
        for thread in self.threads:
            thread.join(timeout)

    # ------------------------------------------------------------ one bot

    def supervise(self, bot: BotConfig, stop: threading.Event) -> None:
        platform = self.services.platforms[bot.id]
        deps = Deps(
            http=self.services.http,
            clock=self.services.clock,
            sessions=self.services.sessions,
            public_url=self.services.settings.public_url,
        )
        client = self._build(bot, deps, platform)

        def handle(inbound: Inbound) -> WebResponse:
            return process(self.services, platform, inbound)

        lease = self._lease(self.services.engine, bot.id)
        failures = auth_failures = 0
        try:
            while not stop.is_set():
                if not _acquire(lease):
                    self._update(bot.id, holder=False)
                    stop.wait(self.lease_poll)
                    continue
                self._update(bot.id, holder=True)
                started = time.monotonic()
                error = self._connect_once(bot, client, handle, lease, stop)
                if error is None:
                    continue  # stopped, or the lease was lost: the loop decides
                if time.monotonic() - started > STABLE_SECONDS:
                    failures = 0
                failures += 1
                said = error.code if isinstance(error, StreamError) else ""
                code = f" [{said}]" if said and said not in str(error) else ""  # the platform's own words
                self._update(bot.id, last_error=f"{error}{code}"[:300])
                if isinstance(error, StreamAuthError):
                    auth_failures += 1
                    if auth_failures >= self.auth_tries:
                        log.error(
                            "stream %s (%s) stopped after %d refused tries: %s%s",
                            bot.id,
                            bot.platform,
                            auth_failures,
                            error,
                            code,
                        )
                        return
                else:
                    auth_failures = 0
                delay = backoff(failures, base=self.base, cap=self.cap)
                log.warning(
                    "stream %s (%s) failed: %s%s; reconnecting in %.1f s",
                    bot.id,
                    bot.platform,
                    error,
                    code,
                    delay,
                )
                self._update(bot.id, reconnects=self._states[bot.id].reconnects + 1)
                stop.wait(delay)
        finally:
            self._update(bot.id, connected=False, holder=False)
            lease.release()

    def _connect_once(
        self,
        bot: BotConfig,
        client: StreamClient,
        handle: Callable[[Inbound], WebResponse],
        lease: leader.LeaderElection,
        stop: threading.Event,
    ) -> Exception | None:
        """Run the client until it fails, ``stop`` is set or the lease is lost; the error or None."""
        conn_stop = threading.Event()
        outcome: list[Exception] = []

        def connected() -> None:
            self._update(bot.id, connected=True, since=self.services.clock())

        def run() -> None:
            try:
                client.run(handle, conn_stop, connected)
            except Exception as exc:  # noqa: BLE001 - reported by the supervisor with backoff
                outcome.append(exc)

        thread = threading.Thread(target=run, name=f"planloop-stream-{bot.id}-conn", daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(self.lease_poll)
            if conn_stop.is_set():
                continue
            if stop.is_set():
                conn_stop.set()
            elif not _check(lease):
                log.warning("stream %s: lease lost; closing the connection for the new holder", bot.id)
                conn_stop.set()
        self._update(bot.id, connected=False)
        if outcome:
            return outcome[0]
        if not conn_stop.is_set():  # a client must not return on its own: count it as a failure
            return StreamError("the connection ended without an error", code="ended")
        return None


def _acquire(lease: leader.LeaderElection) -> bool:
    try:
        return lease.try_acquire()
    except Exception:  # noqa: BLE001 - an election that cannot tell does not hold the lease
        log.exception("stream lease check failed")
        return False


def _check(lease: leader.LeaderElection) -> bool:
    try:
        return lease.check()
    except Exception:  # noqa: BLE001
        return False


# ---------------------------------------------------------------- what the worker's port shows


def health(states: list[StreamState]) -> list[dict[str, Any]]:
    return [
        {
            "bot": s.bot_id,
            "platform": s.platform,
            "connected": s.connected,
            "holder": s.holder,
            "since": s.since.isoformat() if isinstance(s.since, datetime) else None,
            "reconnects": s.reconnects,
            "last_error": s.last_error,
        }
        for s in states
    ]


def metrics_text(states: list[StreamState], now: datetime) -> bytes:
    """Prometheus text for each stream bot (read at scrape time, like the outbox gauges)."""
    if not states:
        return b""
    lines = [
        "# HELP planloop_stream_connected 1 while this worker holds a live long connection for the bot",
        "# TYPE planloop_stream_connected gauge",
    ]
    lines += [f"planloop_stream_connected{_labels(s)} {int(s.connected)}" for s in states]
    lines += [
        "# HELP planloop_stream_holder 1 while this worker holds the bot's lease",
        "# TYPE planloop_stream_holder gauge",
    ]
    lines += [f"planloop_stream_holder{_labels(s)} {int(s.holder)}" for s in states]
    lines += [
        "# HELP planloop_stream_connected_seconds Seconds the current connection has been up (0 when down)",
        "# TYPE planloop_stream_connected_seconds gauge",
    ]
    for s in states:
        up = (now - s.since).total_seconds() if s.connected and s.since is not None else 0.0
        lines.append(f"planloop_stream_connected_seconds{_labels(s)} {max(0.0, up):.1f}")
    lines += [
        "# HELP planloop_stream_reconnects_total Failed or lost connections since this worker started",
        "# TYPE planloop_stream_reconnects_total counter",
    ]
    lines += [f"planloop_stream_reconnects_total{_labels(s)} {s.reconnects}" for s in states]
    return ("\n".join(lines) + "\n").encode()


def _labels(state: StreamState) -> str:
    bot = state.bot_id.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{bot="{bot}",platform="{state.platform}"}}'
