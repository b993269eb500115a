"""``planloop doctor [--bot ID] [--fix]``: every configured bot's checklist, exit 0 when all pass.

Prints one block per bot: a header, then one line per check (✓ passed, ✗ failed, – not
applicable here, ? cannot be checked from here). Exit code 1 when any line failed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from bot.config import Settings
from bot.doctor import dingtalk, feishu, wecom
from bot.doctor.common import STREAM_TIMEOUT, Context, collect
from bot.doctor.model import Line, Status
from bot.doctor.team import load
from bot.doctor.texts import texts
from bot.services import Services

CHECKS: dict[str, Callable[[Context], Iterator[Line]]] = {
    "feishu": feishu.check,
    "dingtalk": dingtalk.check,
    "wecom": wecom.check,
}


def run(
    settings: Settings,
    services: Services,
    *,
    bot_id: str | None = None,
    fix: bool = False,
    out: TextIO | None = None,
    stream_timeout: float = STREAM_TIMEOUT,
) -> int:
    out = out or sys.stdout
    tr = texts(settings.locale)
    bots = [b for b in settings.bots if b.platform in CHECKS]
    if bot_id is not None:
        chosen = settings.bot(bot_id)
        if chosen is None or chosen.platform not in CHECKS:
            known = ", ".join(b.id for b in bots) or "-"
            print(tr("unknown_bot", bot=bot_id, known=known), file=out)
            return 2
        bots = [chosen]
    if not bots:
        print(tr("no_bots"), file=out)
        return 0
    counts = dict.fromkeys(Status, 0)
    sep = tr("sep")
    for n, bot in enumerate(bots):
        with services.sessions() as session:
            team = load(session, bot.id)
        ctx = Context(bot, settings, services, tr, team, fix=fix, stream_timeout=stream_timeout)
        lines = collect(ctx, CHECKS[bot.platform](ctx))
        if n:
            print(file=out)
        connection = tr(f"conn.{bot.get('connection', 'webhook')}")
        print(
            tr("header", bot=bot.id, platform=tr(f"platform.{bot.platform}"), connection=connection), file=out
        )
        for line in lines:
            print(f"  {line.render(sep)}", file=out)
            counts[line.status] += 1
    failed = counts[Status.FAIL]
    print(file=out)
    summary = tr(
        "summary",
        ok=counts[Status.OK],
        failed=failed,
        skipped=counts[Status.SKIP],
        unknown=counts[Status.UNKNOWN],
    )
    print(summary, file=out)
    return 1 if failed else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from bot.cli.common import open_services, settings_of

    settings = settings_of(args)
    return run(
        settings, open_services(settings), bot_id=args.bot, fix=args.fix, stream_timeout=args.stream_timeout
    )


def add_command(sub: Any) -> None:
    p = sub.add_parser(
        "doctor", help="check each bot's setup on its real tenant: credentials, permissions, groups, people"
    )
    p.add_argument("--bot", help="check only this bot id")
    p.add_argument(
        "--fix",
        action="store_true",
        help="register what can be registered (the DingTalk card callback route)",
    )
    p.add_argument(
        "--stream-timeout",
        type=float,
        default=STREAM_TIMEOUT,
        help=f"seconds to wait for a long connection to open (default {STREAM_TIMEOUT:g})",
    )
    p.set_defaults(func=cmd_doctor)
