"""The `planloop` command: demo, serve, worker, db upgrade, apply, import, run, export, template, keys.

Exit codes: 0 done, 1 failed (message on stderr), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.cli.common import Failure, database_failure, tr
from bot.cli.common import moment as _now
from bot.cli.common import open_services as _services
from bot.cli.common import say_for as _say
from bot.cli.common import settings_of as _settings
from bot.cli.terminal import shown
from bot.config import ConfigError, Settings

Command = Callable[[argparse.Namespace], int]


# ---------------------------------------------------------------- commands


def cmd_db(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import DBAPIError

    from storage.db import make_engine, migration_status, upgrade

    settings = _settings(args)
    say = tr(args)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        current, _head = migration_status(engine)
    except DBAPIError as exc:
        raise Failure(database_failure(engine, exc, say)) from None
    print(say("db_revision", revision=current))
    return 0


def cmd_db_backup(args: argparse.Namespace) -> int:
    from storage.backup import BackupError, backup, restore

    settings = _settings(args)
    say = tr(args)
    try:
        if args.db_command == "backup":
            done = backup(settings.database_url, Path(args.file))
        else:
            done = restore(settings.database_url, Path(args.file))
    except BackupError as exc:
        raise Failure(say(f"backup.{exc.key}", **exc.values)) from None
    print(say(f"db_{args.db_command}", done=done))
    if args.db_command == "restore":
        print(say("db_restore_next"))
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    import tomllib

    from bot.config import resolve_secret
    from handlers.setup import TeamFileError, apply, parse
    from storage.secrets import Sealer, SecretsUnavailable

    settings = _settings(args)
    say = tr(args)
    path = Path(args.file)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise Failure(say("cannot_read", path=path, reason=exc.strerror)) from None
    except tomllib.TOMLDecodeError as exc:
        print(say("bad_toml", path=path, reason=exc), file=sys.stderr)
        return 2

    def secret(raw: str, where: str) -> str:
        try:
            return resolve_secret(raw, where, os.environ).get()
        except ConfigError as exc:
            raise ValueError(exc.problems[0]) from None

    try:
        spec = parse(data, secret)
    except TeamFileError as exc:
        for line in exc.problems:
            print(say("path_problem", path=path, problem=line), file=sys.stderr)
        return 2
    services = _services(settings)
    try:
        sealer = Sealer([k.get() for k in settings.secret_keys]) if settings.secret_keys else None
    except SecretsUnavailable as exc:
        raise Failure(str(exc)) from None
    with services.sessions() as session:
        session.begin()
        try:
            report = apply(
                session,
                spec,
                now=services.clock(),
                actor="cli",
                seal=sealer.seal if sealer else None,
                open_sealed=sealer.open if sealer else None,
                bots=set(services.platforms),
            )
        except TeamFileError as exc:
            session.rollback()
            for line in exc.problems:
                print(say("path_problem", path=path, problem=line), file=sys.stderr)
            return 2
        if args.dry_run:
            session.rollback()
        else:
            session.commit()
    for line in report.warnings:
        print(say("warning", line=line), file=sys.stderr)
    for line in report.changes:
        print(line)
    verb = "would_change" if args.dry_run else "changed"
    print(say(verb, count=len(report.changes)) if report.changes else say("no_changes"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from handlers import exports
    from handlers.workdays import parse_week

    say = tr(args)
    try:
        parse_week(args.week)
    except ValueError as exc:
        print(say("bad_week", reason=exc), file=sys.stderr)
        return 2
    if args.format == "xlsx" and not args.output and sys.stdout.isatty():
        print(say("xlsx_to_terminal"), file=sys.stderr)
        return 2
    services = _services(_settings(args))
    with services.sessions() as session:
        try:
            data = exports.export(session, args.what, args.week, team=args.team, now=services.clock())
        except exports.ExportError as exc:
            raise Failure(str(exc)) from None
    payload = exports.encode(data, args.what, args.format)
    if args.output:
        Path(args.output).write_bytes(payload)
        print(say("wrote", path=args.output), file=sys.stderr)
    else:
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Recompute every published score of a week from the appraisals export alone (verify/)."""
    from appraisal.verify import load, verify
    from handlers.workdays import parse_week

    say = tr(args)
    try:
        parse_week(args.week)
    except ValueError as exc:
        print(say("bad_week", reason=exc), file=sys.stderr)
        return 2
    if args.file:
        try:
            data = load(Path(args.file).read_text("utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise Failure(say("path_problem", path=args.file, problem=exc)) from None
        if data.get("week") != args.week:
            raise Failure(say("export_of_other_week", file=args.file, found=data.get("week"), week=args.week))
    else:
        from handlers import exports

        services = _services(_settings(args))
        with services.sessions() as session:
            try:
                data = exports.export(session, "appraisals", args.week, team=args.team, now=services.clock())
            except exports.ExportError as exc:
                raise Failure(str(exc)) from None
        data = load(exports.encode(data, "appraisals", "json").decode("utf-8"))  # exactly what a file holds
    report = verify(data, args.team)
    for line in report.lines():
        print(line)
    return 1 if report.discrepancies else 0


def cmd_keys(args: argparse.Namespace) -> int:
    from storage.secrets import Sealer, SecretsUnavailable, rotate_all

    if args.keys_command == "generate":
        from cryptography.fernet import Fernet

        print(Fernet.generate_key().decode())
        return 0
    settings = _settings(args)
    say = tr(args)
    _require_key(settings, "keys rotate")
    services = _services(settings)
    try:
        sealer = Sealer([k.get() for k in settings.secret_keys])
        with services.sessions() as session, session.begin():
            report = rotate_all(session, sealer)
    except SecretsUnavailable as exc:
        raise Failure(say("keys_unreadable", reason=exc)) from None
    for line in report.lines():
        print(line)
    print(say("resealed", count=report.total_resealed))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo.run import run_demo

    return run_demo(Path(args.data_dir), port=args.port, host=args.host, verbose=args.verbose)


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.ops.serve import run_serve

    settings = _settings(args)
    _require_key(settings, "serve")
    return run_serve(settings, host=args.host, port=args.port, workers=args.workers)


def cmd_worker(args: argparse.Namespace) -> int:
    from bot.ops import logs
    from bot.worker.process import main as worker_main

    settings = _settings(args)
    _require_key(settings, "worker")
    logs.configure(settings)  # JSON lines, secrets redacted (serve does the same in run_serve)
    return worker_main(_services(settings))


def cmd_run(args: argparse.Namespace) -> int:
    from bot.worker.jobs import UnknownJob
    from bot.worker.process import run_now

    services = _services(_settings(args))
    say = _say(services)
    at = _now(services, args.at)
    if args.week:
        from bot.worker.jobs import week_moment

        if args.at:
            print(say("run_week_and_at"), file=sys.stderr)
            return 2
        try:
            at = week_moment(services, args.job, args.week)
        except ValueError as exc:
            print(say("run_problem", reason=exc), file=sys.stderr)
            return 2
    from bot.worker.jobs import CURRENT_RULES

    if args.current_rules and args.job != "appraisal":
        print(say("run_current_rules"), file=sys.stderr)
        return 2
    token = CURRENT_RULES.set(bool(args.current_rules))
    try:
        result, sent = run_now(services, args.job, at)
    except UnknownJob as exc:
        print(say("run_problem", reason=exc.args[0]), file=sys.stderr)
        return 2
    finally:
        CURRENT_RULES.reset(token)
    done = {"job": result.job, "period": result.period, "status": result.status, "reason": result.reason}
    print(say("run_result_reason" if result.reason else "run_result", **done))
    print(say("run_messages", queued=result.enqueued, sent=sent.sent, dead=sent.dead))
    return 1 if result.status == "failed" or sent.dead else 0


def _require_key(settings: Settings, what: str) -> None:
    if not settings.secret_keys:
        from bot.cli.texts import texts

        print(texts(settings.locale)("no_secret_key", what=what), file=sys.stderr)
        raise SystemExit(2)


# ---------------------------------------------------------------- parser


CONFIG_HELP = "path to planloop.toml (else $PLANLOOP_CONFIG, else ./planloop.toml)"


class _HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and "default" not in text
        if action.option_strings and shown:
            text += " (default: %(default)s)"
        return text


class _Subcommands(argparse._SubParsersAction):
    """Every subcommand gets its help line as its description, the defaults in its --help, and
    --config after its name as well as before it (``planloop cmd --config X``)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs.setdefault("description", kwargs.get("help"))
        parser = super().add_parser(name, **kwargs)
        parser.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
        return parser


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Subcommands)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="planloop", description="plan → execute → appraise, in work chat")
    parser.add_argument("--config", help=CONFIG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "demo",
        help="everything in one process on SQLite with an example team and its story, simulator on",
    )
    p.add_argument("--port", type=int, default=8000, help="port of the web app and the simulator")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--data-dir", default="planloop-demo", help="where the demo keeps its database and key")
    p.add_argument("--verbose", action="store_true", help="also show the access log and delivery details")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="the web app (production WSGI server)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on")  # noqa: S104 - a server listens on all interfaces in a container
    port = os.environ.get("PORT", "")  # the image's HEALTHCHECK reads the same variable
    p.add_argument(
        "--port", type=int, default=int(port) if port.isdigit() else 8000, help="default $PORT or 8000"
    )
    p.add_argument(
        "--workers", type=int, default=None, help="gunicorn workers (default: [server] workers, else 2)"
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="scheduler + outbox delivery")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("run", help="run a scheduled job now, as if at --at, and deliver its messages")
    p.add_argument("job", help="poll | progress | lag-alerts | monday-summary | appraisal | reminders")
    p.add_argument("--at", help="ISO date-time, e.g. 2026-11-30T09:00 (the service's zone if none given)")
    p.add_argument(
        "--week",
        help="appraisal | monday-summary | reminders: the ISO week (e.g. 2026-W49) instead of a moment",
    )
    p.add_argument(
        "--current-rules",
        action="store_true",
        help="appraisal: use the templates as they are now, not the versions in force that week",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("db", help="database migrations, backup and restore")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply migrations")
    up.set_defaults(func=cmd_db)
    bk = dbsub.add_parser("backup", help="a consistent copy of the whole database, while the service runs")
    bk.add_argument("file", help="where to write it (SQLite: a database file; PostgreSQL: a pg_dump archive)")
    bk.set_defaults(func=cmd_db_backup)
    rs = dbsub.add_parser("restore", help="replace the database with a backup (stop serve and worker first)")
    rs.add_argument("file", help="a file written by planloop db backup")
    rs.set_defaults(func=cmd_db_backup)

    p = sub.add_parser("apply", help="apply a team file (teams, people, KPIs, templates)")
    p.add_argument("file", help="the team file, e.g. examples/team.toml")
    p.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("export", help="export plans, progress or appraisals of a week")
    p.add_argument("what", choices=["plans", "progress", "appraisals"], help="what to export")
    p.add_argument("--week", required=True, help="ISO week, e.g. 2026-W48")
    p.add_argument("--team", help="one team's id (default: every team)")
    p.add_argument("--format", choices=["json", "csv", "xlsx"], default="json", help="file format")
    p.add_argument("-o", "--output", help="write to this file (default: standard output)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "verify", help="recompute published scores from the export alone; exit 1 on any discrepancy"
    )
    vsub = p.add_subparsers(dest="verify_what", required=True)
    v = vsub.add_parser("appraisals", help="every published appraisal of a week")
    v.add_argument("--week", required=True, help="ISO week, e.g. 2026-W48")
    v.add_argument("--team", help="one team's id (default: every team)")
    v.add_argument("--file", help="an `export appraisals` JSON file (else read from the database)")
    v.set_defaults(func=cmd_verify)

    p = sub.add_parser("keys", help="secret keys: generate one, re-seal stored secrets with the newest")
    keysub = p.add_subparsers(dest="keys_command", required=True)
    keysub.add_parser("generate", help="print a new Fernet key").set_defaults(func=cmd_keys)
    keysub.add_parser(
        "rotate", help="re-seal every stored secret with the newest server.secret_key (idempotent)"
    ).set_defaults(func=cmd_keys)

    for hook in EXTRA_COMMANDS:
        hook(sub)
    return parser


# Subcommands contributed by other rooms (import, run, template, keys, sources): each adds its parser.
EXTRA_COMMANDS: list[Callable[[Any], None]] = []


def cmd_template_switch(args: argparse.Namespace) -> int:
    from handlers.appraisals import AppraisalError
    from handlers.dates import DateError, parse_day
    from handlers.template_switches import switch_template
    from storage.models import Team

    services = _services(_settings(args))
    say = _say(services)
    now = services.clock()
    with services.sessions() as session, session.begin():
        team = session.get(Team, args.team)
        if team is None:
            raise Failure(say("no_team", team=repr(args.team)))
        try:
            today = now.astimezone(ZoneInfo(team.timezone)).date()
            until = parse_day(args.until, today) if args.until else None
        except DateError as exc:
            print(say("bad_until", reason=exc), file=sys.stderr)
            return 2
        try:
            row = switch_template(
                session,
                args.team,
                args.to,
                by=args.by,
                now=now,
                until=until,
                reason=(args.reason or "")[:200],
            )
        except AppraisalError as exc:
            raise Failure(str(exc)) from None
        end = say("switched_until", day=row.until.isoformat()) if row.until else say("switched_open")
        print(say("switched", team=args.team, template=row.template_id, start=row.start.isoformat(), end=end))
    return 0


def _template_command(sub: Any) -> None:
    p = sub.add_parser("template", help="appraisal templates: a leader's manual switch")
    tsub = p.add_subparsers(dest="template_command", required=True)
    sw = tsub.add_parser("switch", help="switch a team's template (audited); wins over every rule")
    sw.add_argument("--team", required=True, help="team id")
    sw.add_argument("--to", required=True, help="template id")
    sw.add_argument("--until", help="last day, inclusive: 2026-12-01 or 12-01 (default: until switched back)")
    sw.add_argument("--by", default="admin", help="who switches, for the audit log (default: admin)")
    sw.add_argument("--reason", help="why, kept in the audit log (as the chat's and console's)")
    sw.set_defaults(func=cmd_template_switch)


EXTRA_COMMANDS.append(_template_command)


def _sources_commands(sub: Any) -> None:
    from bot.cli.sources import add_commands

    add_commands(sub)


EXTRA_COMMANDS.append(_sources_commands)  # import, sources check


def _doctor_command(sub: Any) -> None:
    from bot.doctor.runner import add_command

    add_command(sub)


EXTRA_COMMANDS.append(_doctor_command)  # doctor [--bot ID] [--fix] (issue 15)


def _outbox_commands(sub: Any) -> None:
    from bot.cli.outbox import add_commands

    add_commands(sub)


EXTRA_COMMANDS.append(_outbox_commands)  # outbox list, outbox resend


def _token_commands(sub: Any) -> None:
    from bot.cli.tokens import add_commands

    add_commands(sub)


EXTRA_COMMANDS.append(_token_commands)  # token create, list, revoke (issue 21)


def _console_commands(sub: Any) -> None:
    from bot.cli.console import add_commands

    add_commands(sub)


EXTRA_COMMANDS.append(_console_commands)  # console link, console logout --all (issue 22)


def _config_commands(sub: Any) -> None:
    from bot.cli.config_export import add_commands

    add_commands(sub)


EXTRA_COMMANDS.append(_config_commands)  # config export (issue 22)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        say = tr(args)
        for line in exc.problems:
            print(say("config_problem", problem=shown(line)), file=sys.stderr)
        return 2
    except Failure as exc:
        print(tr(args)("failure", reason=shown(exc)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
