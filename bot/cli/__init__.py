"""The `planloop` command: commands.py builds the parser; each module adds its subcommands."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """`planloop`: the console script (bot.cli:main). The parser and commands are in bot.cli.commands,
    imported when the command runs."""
    from bot.cli.commands import main as run

    return run(argv)
