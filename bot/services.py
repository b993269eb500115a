"""Services: what the web app, the worker and the CLI share, built from Settings by one factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.config import BotConfig, Settings
from bot.links import LinkSigner
from bot.platforms import Deps, build
from bot.platforms.base import Platform
from handlers.router import Context, Router, default_router
from storage.db import make_engine, make_sessionmaker

SIM_BOT = BotConfig("sim", "simulator", {}, {})


def utcnow() -> datetime:
    return datetime.now(UTC)


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

    def context(self, session: Session, bot_id: str = "") -> Context:
        def make_link(person_id: str, page: str, week: str = "", **extra: str) -> str:
            if self.links is None:
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
        )


def build_services(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    http: requests.Session | None = None,
    engine: Engine | None = None,
) -> Services:
    """Wire everything from settings. Makes no connection: SQLAlchemy engines connect lazily."""
    engine = engine or make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    http = http or requests.Session()
    links = LinkSigner(settings.secret_keys, settings.public_url) if settings.secret_keys else None
    services = Services(settings, engine, sessions, default_router(), clock, http, links)
    deps = Deps(http=http, clock=clock, sessions=sessions, public_url=settings.public_url)
    bots = list(settings.bots)
    if settings.simulator and not any(b.platform == "simulator" for b in bots):
        bots.append(SIM_BOT)
    for bot in bots:
        services.platforms[bot.id] = build(bot, deps)
    return services
