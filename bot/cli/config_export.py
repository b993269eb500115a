"""`planloop config export [-o FILE]`: the current configuration as a team file (issue 22)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_config_export(args: argparse.Namespace) -> int:
    from bot.cli.common import Failure, open_services, settings_of, tr
    from handlers.config_export import export, render

    say = tr(args)
    services = open_services(settings_of(args))
    now = services.clock().astimezone(services.settings.tz)
    with services.sessions() as session:
        exported = export(session)
    header = [say("config_export_header", at=now.strftime("%Y-%m-%d %H:%M")), say("config_export_apply")]
    header += [say("config_export_env", name=name) for name in exported.needed_env]
    text = render(exported, header)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise Failure(say("cannot_write", path=args.output, reason=exc.strerror)) from None
        counts = {
            table: len(exported.data.get(table, [])) for table in ("teams", "people", "kpis", "templates")
        }
        print(say("config_exported", path=args.output, **counts), file=sys.stderr)
    for name in exported.needed_env:
        print(say("config_export_env", name=name), file=sys.stderr)
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("config", help="the configuration the database holds")
    csub = p.add_subparsers(dest="config_command", required=True)
    ex = csub.add_parser("export", help="write the current configuration as a team file")
    ex.add_argument("-o", "--output", help="the file to write (default: standard output)")
    ex.set_defaults(func=cmd_config_export)
