"""Services: what the web app, the worker and the CLI share, built from Settings by one factory."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.config import BotConfig, Settings
from bot.links import LinkSigner
from bot.platforms import Deps, build
from bot.platforms.base import Platform
from handlers.events_out import SESSION_HOOKS
from handlers.registered import default_router
from handlers.router import Context, Router
from storage.db import make_engine, make_sessionmaker
from storage.transcript import SimTranscript

SIM_BOT = BotConfig("sim", "simulator", {}, {})


CLOCK_FILE_ENV = "PLANLOOP_CLOCK_FILE"


def utcnow() -> datetime:
    return datetime.now(UTC)


def file_clock(path: str) -> Callable[[], datetime]:
    """FOR TESTS ONLY: a clock that reads an ISO datetime (with its offset) from ``path`` on
    every call, so a test can move the time of processes it started (serve, worker). A naive
    datetime is taken as UTC. Write the file atomically (write a temporary file, rename it);
    a read that fails keeps the last time read (the real time before the first good read)."""
    file = Path(path)
    last: list[datetime] = []

    def now() -> datetime:
        try:
            at = datetime.fromisoformat(file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return last[0] if last else utcnow()
        at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        last[:] = [at]
        return at

    return now


def default_clock() -> Callable[[], datetime]:
    """The real UTC clock, unless the test-only ``PLANLOOP_CLOCK_FILE`` is set (see file_clock)."""
    path = os.environ.get(CLOCK_FILE_ENV)
    return file_clock(path) if path else utcnow


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    router: Router
    clock: Callable[[], datetime]
    http: requests.Session
    links: LinkSigner | None
    platforms: dict[str, Platform] = field(default_factory=dict)

    def context(self, session: Session, bot_id: str = "", connection: Connection | None = None) -> Context:
        def make_link(person_id: str, page: str, week: str = "", **extra: str) -> str:
            if self.links is None or not self.settings.public_url_set:  # a dead /p/ link is worse than none
                return ""
            return self.links.url(person_id, page, week, self.clock(), **extra)

        return Context(
            session=session,
            now=self.clock(),
            tz=self.settings.tz,
            locale=self.settings.locale,
            links=make_link,
            bot_id=bot_id,
            bots=frozenset(self.platforms),
            extra={"guide_url": self.settings.extra.get("guide_url", "")},
            _connection=connection,
        )


def build_services(
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
    http: requests.Session | None = None,
    engine: Engine | None = None,
) -> Services:
    """Wire everything from settings. Makes no connection: SQLAlchemy engines connect lazily."""
    clock = clock or default_clock()
    engine = engine or make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    # every session knows the configured outgoing webhooks: handlers.events_out.emit reads them
    sessions.configure(info={SESSION_HOOKS: settings.webhooks})
    http = http or requests.Session()
    links = LinkSigner(settings.secret_keys, settings.public_url) if settings.secret_keys else None
    services = Services(settings, engine, sessions, default_router(), clock, http, links)
    deps = Deps(
        http=http,
        clock=clock,
        sessions=sessions,
        public_url=settings.public_url,
        transcript=SimTranscript(sessions),
    )
    bots = list(settings.bots)
    if settings.simulator and not any(b.platform == "simulator" for b in bots):
        bots.append(SIM_BOT)
    for bot in bots:
        services.platforms[bot.id] = build(bot, deps)
    return services
