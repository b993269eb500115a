"""`planloop outbox …`: what the relay left to a person (unknown and dead rows), and the resend."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_outbox_list(args: argparse.Namespace) -> int:
    # imported here, not at the top: the relay loads prometheus_client, which `planloop serve`
    # must not see imported before it sets the multiprocess folder (bot/ops/serve.py)
    from bot.cli.common import open_services, settings_of, tr
    from bot.worker.delivery import outbox_rows

    services = open_services(settings_of(args))
    with services.sessions() as session:
        rows = outbox_rows(session, limit=args.limit)
    for row in rows:
        title = str((row.card or {}).get("title", ""))
        print(
            f"{row.id}  {row.status:<7}  {row.bot_id} {row.channel}:{row.target}  {title}  {row.last_error[:120]}"
        )
    if not rows:
        print(tr(args)("outbox_empty"))
    return 0


def cmd_outbox_resend(args: argparse.Namespace) -> int:
    from bot.cli.common import open_services, settings_of, tr
    from bot.worker.delivery import RESENDABLE, resend

    services = open_services(settings_of(args))
    say = tr(args)
    was = resend(services, args.id)
    if was is None:
        print(say("outbox_no_message", id=args.id), file=sys.stderr)
        return 2
    if was not in RESENDABLE:
        print(say("outbox_not_resendable", id=args.id, was=was), file=sys.stderr)
        return 1
    print(say("outbox_requeued", id=args.id, was=was))
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("outbox", help="messages left to an admin: list them, resend one")
    osub = p.add_subparsers(dest="outbox_command", required=True)
    ls = osub.add_parser("list", help="unknown (maybe delivered) and dead messages")
    ls.add_argument("--limit", type=int, default=50, help="at most this many rows")
    ls.set_defaults(func=cmd_outbox_list)
    rs = osub.add_parser("resend", help="send an unknown or dead message again (an admin's decision)")
    rs.add_argument("id", help="the outbox message id (in the admins' notice)")
    rs.set_defaults(func=cmd_outbox_resend)
