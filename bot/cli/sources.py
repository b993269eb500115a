"""`planloop import FILE [--source NAME]` and `planloop sources check`, with a terminal progress bar."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import IO, Any

from bot.cli.terminal import shown

MAX_LISTED = 200  # refused rows printed; the rest are counted
BAR_MIN_BYTES = 1 << 20  # files smaller than this load before a bar would be worth drawing


class TerminalProgress:
    """A one-line progress bar on a terminal (stderr); silent when stderr is not a terminal."""

    def __init__(self, label: str, stream: IO[str] | None = None, width: int = 30, every: float = 0.1):
        self.label, self.stream, self.width, self.every = label, stream or sys.stderr, width, every
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if total <= 0 or (now - self._last < self.every and done < total):
            return
        self._last = now
        share = min(done / total, 1.0)
        filled = int(share * self.width)
        bar = "█" * filled + "░" * (self.width - filled)
        self.stream.write(f"\r{self.label} {bar} {share:6.1%}")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()


def cmd_import(args: argparse.Namespace) -> int:
    from bot.cli import common as cli
    from bot.worker.polling import import_file_report

    say = cli.tr(args)
    path = Path(args.file)
    if not path.is_file():
        raise cli.Failure(say("import_missing", path=path))
    services = cli.open_services(cli.settings_of(args))
    progress = None
    if sys.stderr.isatty() and path.stat().st_size >= BAR_MIN_BYTES:
        progress = TerminalProgress(shown(path.name))
    try:
        report = import_file_report(services, path, args.source, progress=progress)
    except KeyError as exc:
        print(say("import_problem", reason=shown(exc.args[0])), file=sys.stderr)
        return 2
    finally:
        if progress:
            progress.close()
    detail = report.detail
    how = [detail.get("format", "")]
    if detail.get("encoding_label"):
        how.append(say("import_encoding", label=detail["encoding_label"]))
    if detail.get("header_line"):
        how.append(say("import_header", line=detail["header_line"]))
    print(say("import_how", name=shown(path.name), how=say("list_sep").join(h for h in how if h)))
    counts = {"read": report.rows_read, "loaded": report.loaded, "refused": report.refused}
    counts |= {"skipped": report.skipped, "inserted": report.inserted, "updated": report.updated}
    print(say("import_counts", unchanged=report.unchanged, **counts))
    if detail.get("not_imported"):
        print(say("import_not_imported", columns=shown(say("name_sep").join(detail["not_imported"]))))
    if detail.get("unmapped_reasons"):
        listed = say("name_sep").join(f"{reason} ×{count}" for reason, count in detail["unmapped_reasons"])
        print(shown(say("import_unmapped", reasons=listed)))
    for error in report.errors[:MAX_LISTED]:
        print(shown(error), file=sys.stderr)
    hidden = len(report.errors) - MAX_LISTED + int(detail.get("errors_not_listed", 0))
    if hidden > 0:
        print(say("import_more_errors", count=hidden), file=sys.stderr)
    return 1 if report.errors else 0


def cmd_sources_check(args: argparse.Namespace) -> int:
    from bot.cli import common as cli
    from bot.worker.polling import sources_check

    services = cli.open_services(cli.settings_of(args))
    say = cli.tr(args)
    if not services.settings.sources:
        print(say("sources_none"))
        return 0
    results = sources_check(services)
    for r in results:
        mark = "✓" if r.ok else "✗"
        print(f"{mark} {r.source_id} ({r.kind})")
        if r.error:
            print(f"    {shown(r.error)}")
            continue
        days = f"{r.first_day} … {r.last_day}" if r.first_day else say("sources_no_dates")
        print(
            say("sources_would_load", samples=r.samples, days=days, read=r.rows_read, refused=r.rows_refused)
        )
        for metric, n in sorted(r.metrics.items()):
            print(f"      {metric}: {n}")
        for error in r.errors[:10]:
            print(f"    {shown(error)}")
    return 0 if all(r.ok for r in results) else 1


def add_commands(sub: Any) -> None:
    p = sub.add_parser("import", help="load a metric report file (CSV/XLSX/XLS)")
    p.add_argument("file")
    p.add_argument("--source", help="a [[sources]] id whose preset and columns to use (default: generic)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("sources", help="metric sources")
    ssub = p.add_subparsers(dest="sources_command", required=True)
    c = ssub.add_parser("check", help="try each source once; show what it would load, write nothing")
    c.set_defaults(func=cmd_sources_check)
