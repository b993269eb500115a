"""`planloop console …`: a one-time sign-in link for a person, and signing everyone out."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

MAX_MINUTES = 24 * 60


def cmd_console_link(args: argparse.Namespace) -> int:
    from bot.cli.common import open_services, settings_of, tr
    from bot.console.sessions import create_link
    from storage.db import transaction
    from storage.models import AuditLog, Person

    say = tr(args)
    if not 1 <= args.minutes <= MAX_MINUTES:
        print(say("console_bad_minutes", most=MAX_MINUTES), file=sys.stderr)
        return 2
    services = open_services(settings_of(args))
    now = services.clock()
    with transaction(services.sessions) as session:
        person = session.get(Person, args.person)
        if person is None and args.name:
            person = _first_admin(services, session, args, say)
            if person is None:
                return 1
        if person is None or not person.active:
            print(say("console_no_person", person=repr(args.person)), file=sys.stderr)
            return 1
        token = create_link(session, person.id, now, timedelta(minutes=args.minutes))
        session.add(
            AuditLog(
                at=now,
                actor="cli",
                action="console.link",
                subject=person.id,
                detail={"minutes": args.minutes},
            )
        )
    base = services.settings.public_url.rstrip("/")
    print(f"{base}/console/link/{token}")
    print(say("console_link_note", minutes=args.minutes, name=person.name, id=person.id), file=sys.stderr)
    return 0


def _first_admin(services: Any, session: Any, args: argparse.Namespace, say: Any) -> Any:
    """An admin of ``[server] admins`` made on the spot (an empty database, no team file): the
    person, and their team when it does not exist yet. The console's People page takes it from there."""
    from bot.console.roles import admins_of
    from handlers.setup import ID_PATTERN
    from handlers.team_edits import new_person, save_team
    from storage.models import AuditLog, Team

    if args.person not in admins_of(services.settings.extra):
        print(say("console_not_admin", person=args.person), file=sys.stderr)
        return None
    team_id = args.team or "default"
    if not ID_PATTERN.match(args.person) or not ID_PATTERN.match(team_id):
        print(say("console_bad_id"), file=sys.stderr)
        return None
    now = services.clock()
    if session.get(Team, team_id) is None:
        save_team(session, {"id": team_id, "name": args.team_name or team_id}, by="cli", now=now)
    person = new_person(
        session, args.person, args.name, team_id, "operations", "veteran", added_from="console"
    )
    session.add(
        AuditLog(at=now, actor="cli", action="person.add", subject=args.person, detail={"team": team_id})
    )
    session.flush()
    return person


def cmd_console_logout(args: argparse.Namespace) -> int:
    from bot.cli.common import open_services, settings_of, tr
    from bot.console.sessions import revoke_all
    from storage.db import transaction
    from storage.models import AuditLog

    services = open_services(settings_of(args))
    now = services.clock()
    with transaction(services.sessions) as session:
        count = revoke_all(session, now, None if args.all else args.person)
        session.add(
            AuditLog(
                at=now,
                actor="cli",
                action="console.logout",
                subject=args.person or "all",
                detail={"revoked": count},
            )
        )
    say = tr(args)
    who = say("console_everyone") if args.all else args.person
    print(say("console_signed_out", who=who, count=count))
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser("console", help="the web console: sign-in links, sign everyone out")
    csub = p.add_subparsers(dest="console_command", required=True)
    ln = csub.add_parser("link", help="print a one-time sign-in URL for a person (bootstrap, offline use)")
    ln.add_argument("--person", required=True, help="the person id (as in the team file)")
    ln.add_argument("--minutes", type=int, default=10, help="the link works this long (default 10)")
    ln.add_argument(
        "--name",
        help="on a database without this person: create them (an admin of [server] admins) with this name",
    )
    ln.add_argument("--team", help="with --name: their team's id (created when missing; default: default)")
    ln.add_argument("--team-name", help="with --name: the new team's name (default: its id)")
    ln.set_defaults(func=cmd_console_link)
    lo = csub.add_parser("logout", help="revoke console sessions")
    who = lo.add_mutually_exclusive_group(required=True)
    who.add_argument("--all", action="store_true", help="everyone's sessions and unused links")
    who.add_argument("--person", help="one person's sessions and unused links")
    lo.set_defaults(func=cmd_console_logout)
