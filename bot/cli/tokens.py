"""`planloop token create | list | revoke`: tokens of the open API (bot/api/tokens.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def cmd_token_create(args: argparse.Namespace) -> int:
    from bot.api.tokens import DEFAULT_RATE, TokenError, create_token, parse_expiry, parse_scopes
    from bot.cli.common import open_services, settings_of, tr
    from storage.db import transaction

    services = open_services(settings_of(args))
    say = tr(args)
    now = services.clock()
    try:
        scopes = parse_scopes(args.scopes)
        expires = parse_expiry(args.expires, now) if args.expires else None
        with transaction(services.sessions) as session:
            made = create_token(
                session,
                name=args.name,
                scopes=scopes,
                now=now,
                team=args.team,
                expires_at=expires,
                rate_per_minute=args.rate or DEFAULT_RATE,
            )
            token_id = made.row.id
    except TokenError as exc:
        print(say("token_problem", reason=exc), file=sys.stderr)
        return 2
    team = say("token_team", team=args.team) if args.team else ""
    print(say("token_created", id=token_id, name=args.name, scopes=say("list_sep").join(scopes)) + team)
    if expires is not None:
        print(say("token_expires", at=expires.isoformat(timespec="seconds")))
    print(say("token_secret_once"))
    print(made.secret)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    from bot.api.tokens import list_tokens, state
    from bot.cli.common import open_services, settings_of, tr

    services = open_services(settings_of(args))
    say = tr(args)
    now = services.clock()
    never = say("token_never")
    with services.sessions() as session:
        rows = list_tokens(session)
        for row in rows:
            used = row.last_used_at.isoformat(timespec="seconds") if row.last_used_at else never
            expires = row.expires_at.isoformat(timespec="seconds") if row.expires_at else never
            print(
                say(
                    "token_row",
                    id=row.id,
                    prefix=row.prefix,
                    name=row.name,
                    state=state(row, now),
                    scopes=",".join(row.scopes),
                    team=row.team_id or "*",
                    expires=expires,
                    used=used,
                )
            )
    if not rows:
        print(say("token_none"))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from bot.api.tokens import revoke_token
    from bot.cli.common import open_services, settings_of, tr
    from storage.db import transaction

    services = open_services(settings_of(args))
    say = tr(args)
    with transaction(services.sessions) as session:
        row = revoke_token(session, args.id, now=services.clock())
        if row is None:
            print(say("token_no_such", id=args.id), file=sys.stderr)
            return 1
    print(say("token_revoked", id=args.id))
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("token", help="tokens of the open API (/api/v1): create, list, revoke")
    tsub = p.add_subparsers(dest="token_command", required=True)
    cr = tsub.add_parser("create", help="make a token and print it once (only its hash is stored)")
    cr.add_argument("--name", required=True, help="who uses it, e.g. erp")
    cr.add_argument(
        "--scopes", required=True, help="comma-separated, e.g. plans:read,metrics:write (admin: all)"
    )
    cr.add_argument("--team", help="limit the token to one team's people")
    cr.add_argument("--expires", help="lifetime such as 90d, 12h or 2w (default: no expiry)")
    cr.add_argument("--rate", type=int, help="requests a minute (default 600)")
    cr.set_defaults(func=cmd_token_create)
    ls = tsub.add_parser("list", help="every token: id, prefix, scopes, team, state, last use")
    ls.set_defaults(func=cmd_token_list)
    rv = tsub.add_parser("revoke", help="refuse a token from now on")
    rv.add_argument("id", type=int, help="the token id (planloop token list)")
    rv.set_defaults(func=cmd_token_revoke)
