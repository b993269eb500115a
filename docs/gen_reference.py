"""Write the generated reference pages: the CLI from the argument parsers.

Run `python docs/gen_reference.py` after changing a command; `tests/test_docs.py` fails while a
committed page differs from what this writes, so the reference never goes stale.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((name, sub))
    return found


def _walk(
    parser: argparse.ArgumentParser, path: list[str]
) -> list[tuple[list[str], argparse.ArgumentParser]]:
    out = [(path, parser)]
    for name, sub in _subcommands(parser):
        out.extend(_walk(sub, [*path, name]))
    return out


def cli_page() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal: fix it for a stable page
    from bot.cli import build_parser

    lines = [
        "# CLI reference",
        "",
        "Generated from the argument parsers by `python docs/gen_reference.py`; do not edit by hand.",
        "Exit codes: 0 done, 1 failed (message on stderr), 2 usage or configuration error.",
        "",
    ]
    for path, parser in _walk(build_parser(), ["planloop"]):
        if len(path) > 1:
            lines += [f"## `{' '.join(path)}`", ""]
        lines += ["```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


PAGES = {HERE / "reference" / "cli.md": cli_page}


def main() -> int:
    for path, make in PAGES.items():
        path.write_text(make())
        print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
