"""What every platform's checklist shares: the context, the stream connection check, the webhook
address line and the sentence for a platform that did not answer."""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.config import BotConfig, Settings
from bot.doctor.http import Unreachable
from bot.doctor.model import Line, fail, ok, skip, unknown
from bot.doctor.team import TeamData
from bot.doctor.texts import Texts
from bot.services import Services

log = logging.getLogger("planloop.doctor")

STREAM_TIMEOUT = 15.0  # seconds to wait for a long connection to open
CLOSE_TIMEOUT = 5.0  # seconds to let it close again


@dataclass
class Context:
    bot: BotConfig
    settings: Settings
    services: Services
    tr: Texts
    team: TeamData
    fix: bool = False
    stream_timeout: float = STREAM_TIMEOUT

    @property
    def timeout(self) -> float:
        return float(self.bot.get("timeout", 10))

    @property
    def stream(self) -> bool:
        return self.bot.get("connection", "webhook") == "stream"


def unreachable(tr: Texts, platform: str, host: str, exc: Unreachable) -> str:
    """One sentence for a call that got no answer to judge (timeout, refused, 429, 5xx, not JSON)."""
    wait = tr("unreachable.wait", seconds=exc.retry_after) if exc.retry_after else ""
    return tr(
        f"unreachable.{exc.reason}",
        platform=tr(f"platform.{platform}"),
        host=host,
        detail=exc.detail,
        wait=wait,
    )


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


# ---------------------------------------------------------------- the webhook address


def _private(host: str) -> bool:
    if host in ("localhost", "") or host.endswith(".local"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified


def webhook_line(ctx: Context, paths: list[tuple[str, str]], where: str) -> Line:
    """The callback address(es) to paste into the console. Whether the platform reaches them from
    outside cannot be checked from inside this network: the line says so instead of guessing.
    ``paths`` are (label, path after /webhooks/<platform>/<bot>) pairs."""
    tr = ctx.tr
    check = tr("check.webhook")
    if ctx.stream:
        return skip(check, tr("webhook.stream"))
    base = f"{ctx.settings.public_url}/webhooks/{ctx.bot.platform}/{ctx.bot.id}"
    urls = tr("list_sep").join(
        f"{label}{tr('label_sep') if label else ''}{base}{'/' + path if path else ''}"
        for label, path in paths
    )
    host = urlsplit(ctx.settings.public_url).hostname or ""
    if _private(host):
        return fail(check, tr("webhook.private", host=host or ctx.settings.public_url), tr("fix.public_url"))
    return unknown(check, tr("webhook.cannot_check", urls=urls), tr("webhook.where", where=where))


# ---------------------------------------------------------------- the long connection


def stream_line(ctx: Context, fix: str) -> Line:
    """Open the bot's long connection (``bot.platforms.stream.build_stream``), close it as soon as
    it is live, and say how long that took, or why it did not open within ``stream_timeout``.

    Anything that arrives in those seconds goes through the normal inbound path, so nothing is
    lost; on WeCom the check briefly takes the connection over (a new one kicks the old), and the
    worker's supervisor reconnects by itself."""
    tr = ctx.tr
    check = tr("check.stream")
    if not ctx.stream:
        return skip(check, tr("stream.webhook"))
    from bot.dispatch import process
    from bot.platforms.stream import StreamAuthError, StreamError, build_stream

    platform = ctx.services.platforms.get(ctx.bot.id)
    if platform is None:
        return fail(check, tr("stream.no_adapter"))
    deps = _deps(ctx)
    try:
        client = build_stream(ctx.bot, deps, platform)
    except ImportError as exc:
        if exc.name == f"bot.platforms.{ctx.bot.platform}_stream":
            return skip(check, tr("stream.unavailable", platform=tr(f"platform.{ctx.bot.platform}")))
        return fail(check, tr("stream.broken", error=f"{type(exc).__name__}: {exc}"))
    except Exception as exc:  # noqa: BLE001 - a client that cannot be built is a finding, not a crash
        return fail(check, tr("stream.broken", error=f"{type(exc).__name__}: {exc}"))

    connected, stop, done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def on_connected() -> None:
        connected.set()
        stop.set()  # the check only needs to see it open: close it right away

    def run() -> None:
        try:
            client.run(lambda inbound: process(ctx.services, platform, inbound), stop, on_connected)
        except BaseException as exc:  # noqa: BLE001 - reported below, in the checklist
            errors.append(exc)
        finally:
            done.set()

    started = time.monotonic()
    thread = threading.Thread(target=run, name=f"doctor-stream-{ctx.bot.id}", daemon=True)
    thread.start()
    while not connected.is_set() and not done.is_set() and time.monotonic() - started < ctx.stream_timeout:
        connected.wait(0.05)
    took = time.monotonic() - started
    opened, ended = connected.is_set(), done.is_set()  # as at the deadline, not after the close
    stop.set()
    thread.join(CLOSE_TIMEOUT)
    if opened:
        return ok(check, tr("stream.ok", seconds=f"{took:.1f}"))
    if ended and errors:
        error = errors[0]
        said = error.code if isinstance(error, StreamError) else ""
        code = f" ({said})" if said and said not in str(error) else ""  # the platform's words, once
        if isinstance(error, StreamAuthError):
            return fail(check, tr("stream.auth", error=f"{error}{code}"), fix)
        if isinstance(error, StreamError):
            return fail(check, tr("stream.failed", error=f"{error}{code}"), fix)
        log.debug("stream client crashed", exc_info=error)
        return fail(check, tr("stream.broken", error=f"{type(error).__name__}: {error}"))
    if ended:
        return fail(check, tr("stream.ended"), fix)
    return fail(check, tr("stream.timeout", seconds=f"{ctx.stream_timeout:g}"), fix)


def _deps(ctx: Context):  # noqa: ANN202 - bot.platforms.Deps
    from bot.platforms import Deps

    return Deps(
        http=ctx.services.http,
        clock=ctx.services.clock,
        sessions=ctx.services.sessions,
        public_url=ctx.settings.public_url,
    )


def collect(ctx: Context, lines: Iterable[Line]) -> list[Line]:
    """Run a platform's checks; a bug in one becomes a last line, not a traceback."""
    out: list[Line] = []
    try:
        for line in lines:
            out.append(line)
    except Exception as exc:  # noqa: BLE001 - the doctor must always print its checklist
        log.debug("doctor check crashed", exc_info=exc)
        out.append(fail(ctx.tr("check.internal"), f"{type(exc).__name__}: {exc}"))
    return out
