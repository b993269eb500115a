"""What every `planloop` subcommand module shares: loading the settings, opening the services, the
user-facing Failure, the command's sentences in the config's locale. Below bot/cli/commands.py and its
command modules, so they import it downwards."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.cli.texts import for_config, texts
from bot.config import Settings, find_config, load
from cards.i18n import Catalogue


class Failure(Exception):
    """A command failed for a reason the user can act on; printed to stderr, exit 1."""


def settings_of(args: argparse.Namespace) -> Settings:
    return load(find_config(args.config))


def tr(args: argparse.Namespace) -> Catalogue:
    """The command's sentences in its config's ``[server] locale`` (bot/cli/texts.py)."""
    return for_config(getattr(args, "config", None))


def say_for(services: Any) -> Catalogue:
    """The command's sentences in the locale of services already opened."""
    return texts(services.settings.locale)


def require_database(settings: Settings, say: Catalogue) -> None:
    """A command that reads or writes data against a SQLite file that is not there is pointed
    at its config instead of leaving an empty planloop.db behind (``db upgrade`` creates it)."""
    from sqlalchemy.engine import make_url

    from storage.db import is_sqlite

    if not is_sqlite(settings.database_url):
        return
    name = make_url(settings.database_url).database
    if name and name != ":memory:" and not Path(name).exists():
        raise Failure(say("no_database", path=Path(name).resolve()))


def open_services(settings: Settings, *, migrate_check: bool = True):  # noqa: ANN202
    from bot.services import build_services
    from storage.db import NotMigrated, require_current

    require_database(settings, texts(settings.locale))
    services = build_services(settings)
    if migrate_check:
        try:
            require_current(services.engine)
        except NotMigrated as exc:
            raise Failure(str(exc)) from None
    return services


def moment(services, at: str | None) -> datetime:  # noqa: ANN001
    if not at:
        return services.clock()
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise Failure(say_for(services)("bad_at", value=repr(at))) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=services.settings.tz)  # a wall time in the service's zone
    return moment


def database_failure(engine: Any, exc: Any, say: Catalogue) -> str:
    """One line: which database (password hidden) and the driver's reason, first line only."""
    where = engine.url.render_as_string(hide_password=True)
    reason = " ".join(str(exc.orig).split()) if exc.orig is not None else type(exc).__name__
    if engine.dialect.name == "sqlite" and engine.url.database:
        folder = Path(engine.url.database).expanduser().parent
        if not folder.is_dir():
            reason += say("db_no_folder", folder=folder)
    return say("db_open", where=where, reason=reason)
